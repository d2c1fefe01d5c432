using System.Collections.Immutable;
using FsmGateway.Configuration;
using FsmGateway.Resources;
using FsmGateway.Routing.Incremental;

namespace FsmGateway.Routing;

/// <summary>
/// Every Gateway's dependency closure (<see cref="GatewayClosure"/>) at hand across snapshots, for a controller that
/// streams config to many data planes: one index of the latest snapshot (routes by the Gateways they name,
/// EndpointSlices by Service, ReferenceGrants by namespace, policies and filters by what they name), brought up to date
/// from each snapshot's changed keys. <see cref="Advance"/> tells which Gateways a change can reach, so the streams of
/// all others need not wake, and <see cref="Of"/> computes a closure from what the index holds for that Gateway
/// (O(closure), not O(cluster)), equal to <see cref="GatewayClosure.Of(ConfigSnapshot, ResourceKey, string?, string)"/>
/// of the same snapshot. Pure and not thread-safe: one owner calls it.
/// </summary>
/// <param name="implicitGatewayClassName">As for <see cref="GatewayClosure.Of(ConfigSnapshot, ResourceKey, string?, string)"/>.</param>
/// <param name="controllerName">As for <see cref="GatewayClosure.Of(ConfigSnapshot, ResourceKey, string?, string)"/>.</param>
public sealed class GatewayClosureTracker(string? implicitGatewayClassName, string controllerName)
{
    private DependencyIndex? _index;

    /// <summary>The snapshot last given to <see cref="Advance"/>, or null before the first.</summary>
    public ConfigSnapshot? Snapshot { get; private set; }

    /// <summary>Moves to <paramref name="snapshot"/>.</summary>
    /// <param name="snapshot">The newer snapshot (normally a descendant of <see cref="Snapshot"/>).</param>
    /// <returns>
    /// The Gateways whose closure may differ from the one of <see cref="Snapshot"/> before the call (a superset: empty
    /// when no closure can have changed); null when any may have: the first snapshot, one not known to descend from the
    /// previous one, or a change to a GatewayClass, Namespace or an object of a kind the closure does not follow by
    /// reference. A ReferenceGrant reaches the Gateways of the routes that refer into its namespace from another and of
    /// the routes using a Service there that a policy from another namespace targets (whose closure it can let in or
    /// out).
    /// </returns>
    public IReadOnlySet<ResourceKey>? Advance(ConfigSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var before = Snapshot;
        Snapshot = snapshot;
        if (before is null || _index is null || !snapshot.TryGetChangedKeys(before, out var changed))
        {
            _index = DependencyIndex.Of(snapshot);
            return null;
        }

        // What each changed object reached before the change, with the index as it was, and what it reaches after.
        var affected = new HashSet<ResourceKey>();
        var known = true;
        foreach (var key in changed)
        {
            known &= Reach(key, before, affected);
        }

        _index.Update(before, snapshot, changed);
        foreach (var key in changed)
        {
            known &= Reach(key, snapshot, affected);
        }

        return known ? affected : null;
    }

    /// <summary>The closure of <paramref name="gateway"/> in <see cref="Snapshot"/>; empty when that Gateway does not exist.</summary>
    /// <param name="gateway">The Gateway's key.</param>
    /// <returns>The objects its data plane needs, by key.</returns>
    /// <exception cref="InvalidOperationException">Before the first <see cref="Advance"/>.</exception>
    public ImmutableSortedDictionary<ResourceKey, Resource> Of(ResourceKey gateway)
    {
        if (Snapshot is null || _index is null)
        {
            throw new InvalidOperationException("No snapshot yet: call Advance first.");
        }

        return GatewayClosure.Of(Snapshot, _index, gateway, implicitGatewayClassName, controllerName);
    }

    /// <summary>
    /// Adds the Gateways whose closure in <paramref name="snapshot"/> can hold the object under <paramref name="key"/>
    /// (as <see cref="_index"/> stands for that snapshot); false when that is not followed here (any Gateway).
    /// </summary>
    private bool Reach(ResourceKey key, ConfigSnapshot snapshot, HashSet<ResourceKey> affected)
    {
        var index = _index!;
        var resource = snapshot.Resources.GetValueOrDefault(key);
        switch (key.Kind)
        {
            case ResourceKind.Gateway:
                affected.Add(key);
                return true;
            case ResourceKind.TcpRoute:
                if (resource is TcpRoute route)
                {
                    affected.UnionWith(DependencyIndex.Parents(route));
                }

                return true;
            case ResourceKind.Service:
                ServiceUsers(key.Namespace, key.Name, snapshot, affected);
                return true;
            case ResourceKind.EndpointSlice:
                if (resource is EndpointSlice { ServiceName: { } service })
                {
                    ServiceUsers(key.Namespace, service, snapshot, affected);
                }

                return true;
            case ResourceKind.ReferenceGrant:
                GrantUsers(key.Namespace, snapshot, affected);
                return true;
            case ResourceKind.Filter:
                // A Filter is in the closures holding a RouteRuleFilterPolicy that uses it.
                return index.DependentsOf(key).All(dependent => Reach(dependent, snapshot, affected));
            case ResourceKind.ConcurrencyLimit or ResourceKind.IPRestriction:
                // A config is in the closures holding a ListenerFilter or Filter naming it, by name under either kind.
                return index.DependentsOf(new ResourceKey(ResourceKind.ConcurrencyLimit, key.Namespace, key.Name))
                    .Concat(index.DependentsOf(new ResourceKey(ResourceKind.IPRestriction, key.Namespace, key.Name)))
                    .All(dependent => Reach(dependent, snapshot, affected));
            case var kind when DependencyIndex.IsPolicyOrFilter(kind):
                // A policy is in the closures of the Gateways it names, of the Gateways of the routes it names, and of the
                // Gateways whose routes use the Services it names (its Filters and configs follow it there).
                foreach (var reference in resource is null ? [] : DependencyIndex.References(resource))
                {
                    switch (reference.Kind)
                    {
                        case ResourceKind.Gateway:
                            affected.Add(reference);
                            break;
                        case ResourceKind.TcpRoute when snapshot.Resources.GetValueOrDefault(reference) is TcpRoute target:
                            affected.UnionWith(DependencyIndex.Parents(target));
                            break;
                        case ResourceKind.Service:
                            ServiceUsers(reference.Namespace, reference.Name, snapshot, affected);
                            break;
                    }
                }

                return true;
            default:
                return false;
        }
    }

    /// <summary>
    /// The Gateways whose closure a ReferenceGrant in <paramref name="ns"/> can change: those the routes referring into
    /// <paramref name="ns"/> from another namespace name (the grant decides whether their Services, slices, the policies
    /// of those and the grant itself are in), and those whose routes use a Service there that a HealthCheckPolicy or
    /// BackendLBPolicy from another namespace targets (the grant is in where it permits that).
    /// </summary>
    private void GrantUsers(string ns, ConfigSnapshot snapshot, HashSet<ResourceKey> affected)
    {
        var index = _index!;
        foreach (var routeKey in index.RoutesReferringInto(ns))
        {
            if (snapshot.Resources.GetValueOrDefault(routeKey) is TcpRoute route)
            {
                affected.UnionWith(DependencyIndex.Parents(route));
            }
        }

        foreach (var policyKey in index.PoliciesReferringInto(ns))
        {
            if (snapshot.Resources.GetValueOrDefault(policyKey) is { } policy)
            {
                foreach (var target in DependencyIndex.References(policy))
                {
                    if (target.Kind == ResourceKind.Service && target.Namespace == ns)
                    {
                        ServiceUsers(ns, target.Name, snapshot, affected);
                    }
                }
            }
        }
    }

    /// <summary>The Gateways named by the routes that use the Service.</summary>
    private void ServiceUsers(string ns, string service, ConfigSnapshot snapshot, HashSet<ResourceKey> affected)
    {
        foreach (var routeKey in _index!.RoutesUsing(ns, service))
        {
            if (snapshot.Resources.GetValueOrDefault(routeKey) is TcpRoute route)
            {
                affected.UnionWith(DependencyIndex.Parents(route));
            }
        }
    }
}
