using FsmGateway.Resources;

namespace FsmGateway.Status;

/// <summary>The statuses of every object that is ours, each keyed by its object, sorted by key.</summary>
/// <param name="GatewayClasses">GatewayClass statuses.</param>
/// <param name="Gateways">Gateway statuses.</param>
/// <param name="Routes">TCPRoute statuses (our entries merged with other controllers').</param>
public sealed record StatusSet(
    ResourceMap<GatewayClassStatus> GatewayClasses,
    ResourceMap<GatewayStatus> Gateways,
    ResourceMap<RouteStatus> Routes)
{
    /// <summary>No statuses.</summary>
    public static StatusSet Empty { get; } = new(ResourceMap<GatewayClassStatus>.Empty, ResourceMap<GatewayStatus>.Empty, ResourceMap<RouteStatus>.Empty);

    /// <summary>Policy statuses (<c>status.ancestors</c>), our entries only.</summary>
    public ResourceMap<PolicyStatus> Policies { get; init; } = ResourceMap<PolicyStatus>.Empty;

    /// <summary>Statuses of the kinds with only <c>status.conditions</c> (FSM's filter kinds and RateLimitPolicy), our conditions only.</summary>
    public ResourceMap<ConditionsStatus> Conditions { get; init; } = ResourceMap<ConditionsStatus>.Empty;
}
