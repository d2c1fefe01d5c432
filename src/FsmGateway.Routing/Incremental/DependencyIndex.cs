using FsmGateway.Configuration;
using FsmGateway.Resources;

namespace FsmGateway.Routing.Incremental;

/// <summary>
/// Which objects a compilation of some Gateways reads, and which Gateways an object can affect: routes by the Gateways
/// their parentRefs name (whether those exist or not), by the Services their backendRefs name and by the namespaces
/// they refer to across; EndpointSlices by Service; ReferenceGrants by namespace; the GatewayClasses and Namespaces
/// (every compilation reads them all); and every policy and filter object by what it refers to (see
/// <see cref="References"/>: the Gateways, routes and Services its targetRefs name, the Filters and filter configs it
/// uses), with the namespace the compiler resolves each reference in. Built once from a snapshot, then kept up to date
/// from each snapshot's changed keys. Not thread-safe: one compiler owns it.
/// </summary>
internal sealed class DependencyIndex
{
    private readonly Dictionary<ResourceKey, HashSet<ResourceKey>> _routesByParent = [];
    private readonly Dictionary<(string Namespace, string Name), HashSet<ResourceKey>> _routesByService = [];
    private readonly Dictionary<string, HashSet<ResourceKey>> _routesByTargetNamespace = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Namespace, string Service), Dictionary<ResourceKey, EndpointSlice>> _slicesByService = [];
    private readonly Dictionary<string, HashSet<ResourceKey>> _grantsByNamespace = new(StringComparer.Ordinal);
    private readonly HashSet<ResourceKey> _everywhere = [];
    private readonly Dictionary<ResourceKey, HashSet<ResourceKey>> _dependents = [];
    private readonly Dictionary<string, HashSet<ResourceKey>> _policiesByTargetNamespace = new(StringComparer.Ordinal);
    private int _gatewayClasses;

    private DependencyIndex()
    {
    }

    /// <summary>How many TCPRoutes the snapshot holds.</summary>
    public int Routes { get; private set; }

    /// <summary>Whether the snapshot holds a GatewayClass at all.</summary>
    public bool HasGatewayClass => _gatewayClasses > 0;

    /// <summary>The EndpointSlices of each Service (namespace, Service name).</summary>
    public IReadOnlyDictionary<(string Namespace, string Service), Dictionary<ResourceKey, EndpointSlice>> SlicesByService => _slicesByService;

    /// <summary>Indexes every object of <paramref name="snapshot"/>.</summary>
    public static DependencyIndex Of(ConfigSnapshot snapshot)
    {
        var index = new DependencyIndex();
        foreach (var resource in snapshot.Resources.Values)
        {
            index.Add(resource);
        }

        return index;
    }

    /// <summary>Follows the objects under <paramref name="changed"/> from <paramref name="before"/> to <paramref name="after"/>.</summary>
    public void Update(ConfigSnapshot before, ConfigSnapshot after, IReadOnlyCollection<ResourceKey> changed)
    {
        foreach (var key in changed)
        {
            var old = before.Resources.GetValueOrDefault(key);
            var now = after.Resources.GetValueOrDefault(key);
            if (ReferenceEquals(old, now))
            {
                continue;
            }

            if (old is not null)
            {
                Remove(old);
            }

            if (now is not null)
            {
                Add(now);
            }
        }
    }

    /// <summary>The routes whose parentRefs name <paramref name="gateway"/>.</summary>
    public IReadOnlyCollection<ResourceKey> RoutesOf(ResourceKey gateway) => _routesByParent.TryGetValue(gateway, out var routes) ? routes : [];

    /// <summary>The routes whose backendRefs name the Service.</summary>
    public IReadOnlyCollection<ResourceKey> RoutesUsing(string ns, string service) => _routesByService.TryGetValue((ns, service), out var routes) ? routes : [];

    /// <summary>The routes with a backendRef into <paramref name="ns"/> from another namespace (what a ReferenceGrant there can change).</summary>
    public IReadOnlyCollection<ResourceKey> RoutesReferringInto(string ns) => _routesByTargetNamespace.TryGetValue(ns, out var routes) ? routes : [];

    /// <summary>The ReferenceGrants in <paramref name="ns"/>.</summary>
    public IReadOnlyCollection<ResourceKey> GrantsIn(string ns) => _grantsByNamespace.TryGetValue(ns, out var grants) ? grants : [];

    /// <summary>
    /// The policy and filter objects that refer to <paramref name="key"/> (a Gateway, TCPRoute, Service, Filter,
    /// ConcurrencyLimit or IPRestriction), whether it exists or not.
    /// </summary>
    public IReadOnlyCollection<ResourceKey> DependentsOf(ResourceKey key) => _dependents.TryGetValue(key, out var dependents) ? dependents : [];

    /// <summary>The HealthCheckPolicies and BackendLBPolicies with a Service target in <paramref name="ns"/> from another namespace (what a ReferenceGrant there can change).</summary>
    public IReadOnlyCollection<ResourceKey> PoliciesReferringInto(string ns) => _policiesByTargetNamespace.TryGetValue(ns, out var policies) ? policies : [];

    /// <summary>The GatewayClasses and Namespaces: every compilation reads all of them.</summary>
    public IReadOnlyCollection<ResourceKey> ReadEverywhere => _everywhere;

    /// <summary>The keys of the Gateways a route's parentRefs name, as the route attacher resolves them (the route's namespace by default).</summary>
    public static IEnumerable<ResourceKey> Parents(TcpRoute route)
    {
        foreach (var parentRef in route.ParentRefs)
        {
            yield return new ResourceKey(ResourceKind.Gateway, parentRef.Namespace ?? route.Metadata.Namespace, parentRef.Name);
        }
    }

    /// <summary>The Services a route's backendRefs name (namespace, name), in every rule.</summary>
    public static IEnumerable<(string Namespace, string Name)> Services(TcpRoute route)
    {
        foreach (var rule in route.Rules)
        {
            foreach (var reference in rule.BackendRefs)
            {
                yield return (reference.Namespace ?? route.Metadata.Namespace, reference.Name);
            }
        }
    }

    /// <summary>Whether <paramref name="kind"/> is a policy or filter kind (an object with a status of its own that refers to others).</summary>
    public static bool IsPolicyOrFilter(ResourceKind kind) => kind is ResourceKind.HealthCheckPolicy or ResourceKind.BackendLbPolicy
        or ResourceKind.BackendTrafficPolicy or ResourceKind.ClientTrafficPolicy or ResourceKind.RouteRuleFilterPolicy or ResourceKind.RateLimitPolicy
        or ResourceKind.ListenerFilter or ResourceKind.Filter or ResourceKind.ConcurrencyLimit or ResourceKind.IPRestriction;

    /// <summary>
    /// What a policy or filter object refers to, resolved as the compiler resolves it (a targetRef's namespace, or the
    /// object's own when it gives none; a ListenerFilter's Gateways, a Filter or config always in the object's own):
    /// the Gateways, TCPRoutes and Services its targetRefs name (by kind; a group the compiler refuses only makes this
    /// list longer than needed), the Filters a RouteRuleFilterPolicy uses, the ConcurrencyLimit or IPRestriction a
    /// ListenerFilter or Filter takes its settings from. Nothing for other objects.
    /// </summary>
    public static IEnumerable<ResourceKey> References(Resource resource)
    {
        var own = resource.Metadata.Namespace;
        switch (resource)
        {
            case HealthCheckPolicy p:
                return Targets(p.TargetRefs, own);
            case BackendLbPolicy p:
                return Targets(p.TargetRefs, own);
            case BackendTrafficPolicy p:
                return Targets(p.TargetRefs, own);
            case ClientTrafficPolicy p:
                return Targets(p.TargetRefs, own);
            case RouteRuleFilterPolicy p:
                return Targets(p.TargetRefs, own).Concat(p.FilterRefs.Select(r => new ResourceKey(ResourceKind.Filter, own, r.Name)));
            case RateLimitPolicy p:
                return Target(p.TargetRef, own) is { } target ? [target] : [];
            case ListenerFilter f:
                var gateways = f.TargetRefs.Where(static t => t.Kind == "Gateway").Select(t => new ResourceKey(ResourceKind.Gateway, own, t.Name));
                return ConfigKey(f.ConfigRef, own) is { } config ? gateways.Append(config) : gateways;
            case FsmFilter f:
                return ConfigKey(f.ConfigRef, own) is { } filterConfig ? [filterConfig] : [];
            default:
                return [];
        }
    }

    /// <summary>The key of the ConcurrencyLimit or IPRestriction a <c>configRef</c> names (as the compiler reads it: by kind alone), or null.</summary>
    private static ResourceKey? ConfigKey(LocalObjectReference? configRef, string ns) => configRef?.Kind switch
    {
        "ConcurrencyLimit" => new ResourceKey(ResourceKind.ConcurrencyLimit, ns, configRef.Name),
        "IPRestriction" => new ResourceKey(ResourceKind.IPRestriction, ns, configRef.Name),
        _ => null,
    };

    private static IEnumerable<ResourceKey> Targets(EquatableArray<PolicyTargetReference> targets, string own)
    {
        foreach (var target in targets)
        {
            if (Target(target, own) is { } key)
            {
                yield return key;
            }
        }
    }

    private static ResourceKey? Target(PolicyTargetReference target, string own) => target.Kind switch
    {
        "Gateway" => new ResourceKey(ResourceKind.Gateway, target.Namespace ?? own, target.Name),
        "TCPRoute" => new ResourceKey(ResourceKind.TcpRoute, target.Namespace ?? own, target.Name),
        "Service" => new ResourceKey(ResourceKind.Service, target.Namespace ?? own, target.Name),
        _ => null,
    };

    /// <summary>The namespaces other than its own in which a HealthCheckPolicy or BackendLBPolicy names a Service (where a ReferenceGrant decides).</summary>
    private static IEnumerable<string> GrantNamespaces(Resource resource) => resource is HealthCheckPolicy or BackendLbPolicy
        ? References(resource).Where(k => k.Kind == ResourceKind.Service && k.Namespace != resource.Metadata.Namespace).Select(static k => k.Namespace).Distinct(StringComparer.Ordinal)
        : [];

    private void Add(Resource resource)
    {
        switch (resource)
        {
            case TcpRoute route:
                Routes++;
                foreach (var parent in Parents(route))
                {
                    Add(_routesByParent, parent, route.Key);
                }

                foreach (var service in Services(route))
                {
                    Add(_routesByService, service, route.Key);
                    if (service.Namespace != route.Metadata.Namespace)
                    {
                        Add(_routesByTargetNamespace, service.Namespace, route.Key);
                    }
                }

                break;
            case EndpointSlice { ServiceName: { } service } slice:
                if (!_slicesByService.TryGetValue((slice.Metadata.Namespace, service), out var slices))
                {
                    _slicesByService[(slice.Metadata.Namespace, service)] = slices = [];
                }

                slices[slice.Key] = slice;
                break;
            case ReferenceGrant grant:
                Add(_grantsByNamespace, grant.Metadata.Namespace, grant.Key);
                break;
            case GatewayClass or KubernetesNamespace:
                _everywhere.Add(resource.Key);
                _gatewayClasses += resource is GatewayClass ? 1 : 0;
                break;
            case Gateway or Service or EndpointSlice:
                break;
            default:
                foreach (var reference in References(resource))
                {
                    Add(_dependents, reference, resource.Key);
                }

                foreach (var ns in GrantNamespaces(resource))
                {
                    Add(_policiesByTargetNamespace, ns, resource.Key);
                }

                break;
        }
    }

    private void Remove(Resource resource)
    {
        switch (resource)
        {
            case TcpRoute route:
                Routes--;
                foreach (var parent in Parents(route))
                {
                    Remove(_routesByParent, parent, route.Key);
                }

                foreach (var service in Services(route))
                {
                    Remove(_routesByService, service, route.Key);
                    if (service.Namespace != route.Metadata.Namespace)
                    {
                        Remove(_routesByTargetNamespace, service.Namespace, route.Key);
                    }
                }

                break;
            case EndpointSlice { ServiceName: { } service } slice:
                if (_slicesByService.TryGetValue((slice.Metadata.Namespace, service), out var slices) && slices.Remove(slice.Key) && slices.Count == 0)
                {
                    _slicesByService.Remove((slice.Metadata.Namespace, service));
                }

                break;
            case ReferenceGrant grant:
                Remove(_grantsByNamespace, grant.Metadata.Namespace, grant.Key);
                break;
            case GatewayClass or KubernetesNamespace:
                _everywhere.Remove(resource.Key);
                _gatewayClasses -= resource is GatewayClass ? 1 : 0;
                break;
            case Gateway or Service or EndpointSlice:
                break;
            default:
                foreach (var reference in References(resource))
                {
                    Remove(_dependents, reference, resource.Key);
                }

                foreach (var ns in GrantNamespaces(resource))
                {
                    Remove(_policiesByTargetNamespace, ns, resource.Key);
                }

                break;
        }
    }

    private static void Add<TKey>(Dictionary<TKey, HashSet<ResourceKey>> map, TKey key, ResourceKey value)
        where TKey : notnull
    {
        if (!map.TryGetValue(key, out var set))
        {
            map[key] = set = [];
        }

        set.Add(value);
    }

    private static void Remove<TKey>(Dictionary<TKey, HashSet<ResourceKey>> map, TKey key, ResourceKey value)
        where TKey : notnull
    {
        if (map.TryGetValue(key, out var set) && set.Remove(value) && set.Count == 0)
        {
            map.Remove(key);
        }
    }
}
