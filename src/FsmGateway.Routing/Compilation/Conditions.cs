using System.Collections.Immutable;
using FsmGateway.Status;

namespace FsmGateway.Routing.Compilation;

/// <summary>Builds condition lists in one fixed order (by type, ordinal), so output never depends on code order.</summary>
internal static class Conditions
{
    public static Condition True(string type, string reason, string message, long generation) =>
        new(type, ConditionStatus.True, reason, message, generation);

    public static Condition False(string type, string reason, string message, long generation) =>
        new(type, ConditionStatus.False, reason, message, generation);

    public static ImmutableArray<Condition> Sorted(params Condition[] conditions) =>
        [.. conditions.OrderBy(static c => c.Type, StringComparer.Ordinal)];
}
