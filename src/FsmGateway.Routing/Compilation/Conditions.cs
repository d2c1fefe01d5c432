using System.Collections.Immutable;
using FsmGateway.Resources;
using FsmGateway.Status;

namespace FsmGateway.Routing.Compilation;

/// <summary>Builds condition lists in one fixed order (by type, ordinal), so output never depends on code order.</summary>
internal static class Conditions
{
    public static Condition True(string type, string reason, string message, long generation) =>
        new(type, ConditionStatus.True, reason, message, generation);

    public static Condition False(string type, string reason, string message, long generation) =>
        new(type, ConditionStatus.False, reason, message, generation);

    public static EquatableArray<Condition> Sorted(params Condition[] conditions)
    {
        Array.Sort(conditions, ByType);

        // The array is ours alone: wrap it rather than copy it.
        return System.Runtime.InteropServices.ImmutableCollectionsMarshal.AsImmutableArray(conditions);
    }

    private static readonly Comparison<Condition> ByType = static (a, b) => string.CompareOrdinal(a.Type, b.Type);
}
