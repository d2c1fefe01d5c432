using System.Collections.Immutable;
using FsmGateway.Resources;

namespace FsmGateway.Status;

/// <summary>The <c>status</c> of a GatewayClass.</summary>
/// <param name="Conditions">Its conditions.</param>
public sealed record GatewayClassStatus(EquatableArray<Condition> Conditions);

/// <summary>The <c>status</c> of a Gateway.</summary>
/// <param name="Addresses">Where the Gateway can be reached; filled by whoever knows (the provisioner), empty from the compiler.</param>
/// <param name="Conditions">The Gateway's conditions.</param>
/// <param name="Listeners">One entry per listener, in spec order.</param>
public sealed record GatewayStatus(EquatableArray<GatewayAddress> Addresses, EquatableArray<Condition> Conditions, EquatableArray<ListenerStatus> Listeners);

/// <summary>The status of one listener.</summary>
/// <param name="Name">The listener's name.</param>
/// <param name="SupportedKinds">The route kinds it serves.</param>
/// <param name="AttachedRoutes">How many routes are accepted on it.</param>
/// <param name="Conditions">Its conditions.</param>
public sealed record ListenerStatus(string Name, EquatableArray<RouteGroupKind> SupportedKinds, int AttachedRoutes, EquatableArray<Condition> Conditions);

/// <summary>The <c>status</c> of a route: one entry per parent per controller.</summary>
/// <param name="Parents">The entries.</param>
public sealed record RouteStatus(EquatableArray<RouteParentStatus> Parents);

/// <summary>One <c>status.parents</c> entry of a route.</summary>
/// <param name="ParentRef">The parentRef echoed, with group, kind and namespace filled in.</param>
/// <param name="ControllerName">The controller that wrote the entry.</param>
/// <param name="Conditions">The conditions for this parent.</param>
public sealed record RouteParentStatus(ParentReference ParentRef, string ControllerName, EquatableArray<Condition> Conditions);

/// <summary>The <c>status</c> of a policy (GEP-713): one entry per Gateway the policy reaches, at most 16.</summary>
/// <param name="Ancestors">Our entries; other controllers' entries are the status writer's to keep.</param>
public sealed record PolicyStatus(EquatableArray<PolicyAncestorStatus> Ancestors)
{
    /// <summary>The most entries <c>status.ancestors</c> may hold.</summary>
    public const int MaxAncestors = 16;
}

/// <summary>One <c>status.ancestors</c> entry of a policy.</summary>
/// <param name="AncestorRef">The Gateway (with a listener's <c>sectionName</c> when the policy targets one), or the target itself when it was not found.</param>
/// <param name="ControllerName">The controller that wrote the entry.</param>
/// <param name="Conditions">The conditions for this ancestor (<c>Accepted</c>, and <c>Overridden</c> when another policy takes precedence).</param>
public sealed record PolicyAncestorStatus(ParentReference AncestorRef, string ControllerName, EquatableArray<Condition> Conditions);

/// <summary>
/// The <c>status</c> of a kind that has only <c>status.conditions</c> and no <c>ancestors</c>: FSM's ListenerFilter,
/// Filter, ConcurrencyLimit, IPRestriction and first-generation RateLimitPolicy. One <c>Accepted</c> condition with
/// FSM's reasons (Accepted, Invalid, TargetNotFound, Conflicted), and <c>Overridden</c> when a policy of ours takes precedence.
/// </summary>
/// <param name="Conditions">Our conditions; conditions of other types are the status writer's to keep.</param>
public sealed record ConditionsStatus(EquatableArray<Condition> Conditions);
