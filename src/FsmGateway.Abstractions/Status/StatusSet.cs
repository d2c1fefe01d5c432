using System.Collections.Immutable;
using FsmGateway.Resources;

namespace FsmGateway.Status;

/// <summary>The statuses of every object that is ours, each keyed by its object, sorted by key.</summary>
/// <param name="GatewayClasses">GatewayClass statuses.</param>
/// <param name="Gateways">Gateway statuses.</param>
/// <param name="Routes">TCPRoute statuses (our entries merged with other controllers').</param>
public sealed record StatusSet(
    ImmutableSortedDictionary<ResourceKey, GatewayClassStatus> GatewayClasses,
    ImmutableSortedDictionary<ResourceKey, GatewayStatus> Gateways,
    ImmutableSortedDictionary<ResourceKey, RouteStatus> Routes)
{
    /// <summary>No statuses.</summary>
    public static StatusSet Empty { get; } = new(
        ImmutableSortedDictionary<ResourceKey, GatewayClassStatus>.Empty,
        ImmutableSortedDictionary<ResourceKey, GatewayStatus>.Empty,
        ImmutableSortedDictionary<ResourceKey, RouteStatus>.Empty);

    /// <summary>Policy statuses (<c>status.ancestors</c>), our entries only.</summary>
    public ImmutableSortedDictionary<ResourceKey, PolicyStatus> Policies { get; init; } = ImmutableSortedDictionary<ResourceKey, PolicyStatus>.Empty;

    /// <summary>Statuses of the kinds with only <c>status.conditions</c> (FSM's filter kinds and RateLimitPolicy), our conditions only.</summary>
    public ImmutableSortedDictionary<ResourceKey, ConditionsStatus> Conditions { get; init; } = ImmutableSortedDictionary<ResourceKey, ConditionsStatus>.Empty;
}
