using FsmGateway.Configuration;
using FsmGateway.Resources;

namespace FsmGateway.Routing.Incremental;

/// <summary>
/// Which objects a compilation of some Gateways reads, and which Gateways an object can affect: routes by the Gateways
/// their parentRefs name (whether those exist or not), by the Services their backendRefs name and by the namespaces
/// they refer to across; EndpointSlices by Service; ReferenceGrants by namespace; the GatewayClasses and Namespaces
/// (every compilation reads them all); and how many objects of other kinds (policies, filters) exist. Built once from a
/// snapshot, then kept up to date from each snapshot's changed keys. Not thread-safe: one compiler owns it.
/// </summary>
internal sealed class DependencyIndex
{
    private readonly Dictionary<ResourceKey, HashSet<ResourceKey>> _routesByParent = [];
    private readonly Dictionary<(string Namespace, string Name), HashSet<ResourceKey>> _routesByService = [];
    private readonly Dictionary<string, HashSet<ResourceKey>> _routesByTargetNamespace = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Namespace, string Service), Dictionary<ResourceKey, EndpointSlice>> _slicesByService = [];
    private readonly Dictionary<string, HashSet<ResourceKey>> _grantsByNamespace = new(StringComparer.Ordinal);
    private readonly HashSet<ResourceKey> _everywhere = [];

    private DependencyIndex()
    {
    }

    /// <summary>How many objects of kinds the per-Gateway compile does not follow (policies, filters) the snapshot holds.</summary>
    public int OtherObjects { get; private set; }

    /// <summary>How many TCPRoutes the snapshot holds.</summary>
    public int Routes { get; private set; }

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

    /// <summary>Whether the per-Gateway compile follows objects of <paramref name="kind"/>.</summary>
    public static bool IsFollowed(ResourceKind kind) => kind is ResourceKind.GatewayClass or ResourceKind.Gateway or ResourceKind.TcpRoute
        or ResourceKind.ReferenceGrant or ResourceKind.Service or ResourceKind.EndpointSlice or ResourceKind.Namespace;

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
                break;
            case Gateway or Service or EndpointSlice:
                break;
            default:
                OtherObjects++;
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
                break;
            case Gateway or Service or EndpointSlice:
                break;
            default:
                OtherObjects--;
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
