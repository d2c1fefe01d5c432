using System.Collections.Immutable;
using FsmGateway.Resources;

namespace FsmGateway.Status;

/// <summary>
/// What a controller that provisions data planes found of them, per Gateway: an input of the compiler (like the
/// listeners' bind outcomes), so that <c>Programmed</c>, the Gateway's addresses and <c>InvalidParameters</c> are
/// decided there and nothing rewrites the compiled status afterwards. A Gateway missing from <see cref="ByGateway"/>
/// has no data plane provisioned yet.
/// </summary>
/// <param name="ByGateway">What was found per Gateway.</param>
public sealed record ProvisionedDataPlanes(ImmutableSortedDictionary<ResourceKey, ProvisionedDataPlane> ByGateway)
{
    /// <summary>Nothing provisioned yet: every Gateway waits for its Deployment.</summary>
    public static ProvisionedDataPlanes None { get; } = new(ImmutableSortedDictionary<ResourceKey, ProvisionedDataPlane>.Empty);

    /// <inheritdoc/>
    public bool Equals(ProvisionedDataPlanes? other) =>
        other is not null && ByGateway.Count == other.ByGateway.Count
        && ByGateway.All(pair => other.ByGateway.TryGetValue(pair.Key, out var theirs) && pair.Value.Equals(theirs));

    /// <inheritdoc/>
    public override int GetHashCode() => ByGateway.Count;
}

/// <summary>What the controller found of the data plane it provisions for one Gateway.</summary>
/// <param name="Deployment">The Deployment (and Service) of the data plane, as <c>namespace/name</c>, for status messages.</param>
/// <param name="AvailableReplicas">The Deployment's available replicas (<c>status.availableReplicas</c>); 0 when it does not exist.</param>
/// <param name="Addresses">
/// The Service's addresses: its load-balancer ingress (IP or hostname) for a LoadBalancer Service, its cluster IPs
/// otherwise; empty until assigned or when there is no Service.
/// </param>
public sealed record ProvisionedDataPlane(string Deployment, int AvailableReplicas, EquatableArray<GatewayAddress> Addresses)
{
    /// <summary>
    /// Why the Gateway's <c>spec.infrastructure.parametersRef</c> cannot be used (naming the object and the field); null
    /// when it can. While set, the data plane is left as it was and the Gateway is not Accepted (<c>InvalidParameters</c>).
    /// </summary>
    public string? ParametersError { get; init; }
}
