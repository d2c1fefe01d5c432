namespace FsmGateway.Status;

/// <summary>
/// A status condition as the compiler decides it. <c>lastTransitionTime</c> is deliberately absent: it is the status
/// writer's to keep, since it changes only when <see cref="Status"/> or <see cref="Reason"/> changes.
/// </summary>
/// <param name="Type">The condition type (Accepted, Programmed, ResolvedRefs, Conflicted).</param>
/// <param name="Status">True, False or Unknown.</param>
/// <param name="Reason">A CamelCase reason from the Gateway API.</param>
/// <param name="Message">A sentence for humans that names the field and object at fault.</param>
/// <param name="ObservedGeneration">The generation of the object the condition was computed from.</param>
public sealed record Condition(string Type, ConditionStatus Status, string Reason, string Message, long ObservedGeneration);

/// <summary>The status of a condition.</summary>
public enum ConditionStatus
{
    /// <summary>The condition holds.</summary>
    True,

    /// <summary>The condition does not hold.</summary>
    False,

    /// <summary>Not known yet.</summary>
    Unknown,
}
