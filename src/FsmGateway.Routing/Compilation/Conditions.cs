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

    /// <summary>Listener <c>Accepted=True</c>.</summary>
    public static readonly FixedCondition ListenerAccepted = new(ConditionTypes.Accepted, ConditionStatus.True, ConditionReasons.Accepted, "Listener is accepted");

    /// <summary>Listener <c>Conflicted=False</c>.</summary>
    public static readonly FixedCondition NoConflicts = new(ConditionTypes.Conflicted, ConditionStatus.False, ConditionReasons.NoConflicts, "No conflicts");

    /// <summary>Listener or route <c>ResolvedRefs=True</c>.</summary>
    public static readonly FixedCondition AllReferencesResolved = new(ConditionTypes.ResolvedRefs, ConditionStatus.True, ConditionReasons.ResolvedRefs, "All references resolved");
}

/// <summary>
/// A condition whose message is a constant: <see cref="CompilationContext.Fixed"/> makes one <see cref="Condition"/> of it
/// per generation. Compared by reference, so looking one up hashes no strings.
/// </summary>
internal sealed class FixedCondition(string type, ConditionStatus status, string reason, string message)
{
    public Condition For(long generation) => new(type, status, reason, message, generation);
}
