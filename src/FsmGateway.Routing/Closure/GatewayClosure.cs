using System.Collections.Immutable;
using FsmGateway.Configuration;
using FsmGateway.Resources;
using FsmGateway.Routing.Incremental;

namespace FsmGateway.Routing;

/// <summary>
/// A Gateway's dependency closure: the objects its data plane needs to compile exactly what the controller compiles
/// for that Gateway, and nothing else. The Gateway and its class; the TCPRoutes whose parentRefs name it; the
/// Namespaces of the Gateway and of those routes (listener namespace selectors read their labels); the Services the
/// routes' backendRefs name, their EndpointSlices, and the ReferenceGrants of those Services' namespaces; the policies
/// whose targetRefs name the Gateway, one of the routes or one of the Services, with the Filters and filter configs
/// they refer to. Pure: the same snapshot and Gateway give the same set. It errs on the side of including (a policy
/// that targets an included object is included even when it loses to another), since the compiler ignores what does
/// not apply but cannot compile what is missing.
/// </summary>
public static class GatewayClosure
{
    /// <summary>The objects the data plane of <paramref name="gateway"/> needs, by key.</summary>
    /// <param name="snapshot">Everything the controller holds.</param>
    /// <param name="gateway">The Gateway's key.</param>
    /// <param name="implicitGatewayClassName">
    /// The controller's implicit GatewayClass (<see cref="CompilerOptions.ImplicitGatewayClassName"/>): when the snapshot
    /// holds no GatewayClass at all and the Gateway names this one, a GatewayClass of that name with
    /// <paramref name="controllerName"/> is included, so a data plane compiling without an implicit class decides alike.
    /// </param>
    /// <param name="controllerName">The controller name written in such an implicit GatewayClass.</param>
    /// <returns>The closure; empty when the Gateway does not exist.</returns>
    public static ImmutableSortedDictionary<ResourceKey, Resource> Of(ConfigSnapshot snapshot, ResourceKey gateway, string? implicitGatewayClassName, string controllerName)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        return Of(snapshot, index: null, gateway, implicitGatewayClassName, controllerName);
    }

    /// <summary>
    /// <see cref="Of(ConfigSnapshot, ResourceKey, string?, string)"/>, reading the candidates from <paramref name="index"/>
    /// (of <paramref name="snapshot"/>) when given: the routes naming the Gateway, and the objects by what they name,
    /// instead of a pass over the whole snapshot. The same decisions are made on each candidate either way.
    /// </summary>
    internal static ImmutableSortedDictionary<ResourceKey, Resource> Of(ConfigSnapshot snapshot, DependencyIndex? index, ResourceKey gateway, string? implicitGatewayClassName, string controllerName)
    {
        var all = snapshot.Resources;
        var closure = ImmutableSortedDictionary.CreateBuilder<ResourceKey, Resource>();
        if (!all.TryGetValue(gateway, out var found) || found is not Gateway root)
        {
            return closure.ToImmutable();
        }

        closure.Add(root.Key, root);
        var classKey = new ResourceKey(ResourceKind.GatewayClass, string.Empty, root.GatewayClassName);
        if (all.TryGetValue(classKey, out var gatewayClass))
        {
            closure.Add(classKey, gatewayClass);
        }
        else if (implicitGatewayClassName == root.GatewayClassName && !(index?.HasGatewayClass ?? snapshot.OfType<GatewayClass>().Any()))
        {
            closure.Add(classKey, new GatewayClass(new ObjectMeta(string.Empty, implicitGatewayClassName), controllerName));
        }

        var namespaces = new HashSet<string>(StringComparer.Ordinal) { root.Metadata.Namespace };
        var routes = new HashSet<(string Namespace, string Name)>();
        var services = new HashSet<(string Namespace, string Name)>();
        var candidateRoutes = index is null
            ? snapshot.OfType<TcpRoute>()
            : index.RoutesOf(gateway).Select(key => all.GetValueOrDefault(key)).OfType<TcpRoute>();
        foreach (var route in candidateRoutes)
        {
            if (!route.ParentRefs.Any(p => NamesGateway(p, route.Metadata.Namespace, root)))
            {
                continue;
            }

            closure.Add(route.Key, route);
            routes.Add((route.Metadata.Namespace, route.Metadata.Name));
            namespaces.Add(route.Metadata.Namespace);
            foreach (var backend in route.Rules.SelectMany(static r => r.BackendRefs))
            {
                if (backend.Group is null or GatewayApi.CoreGroup && backend.Kind is null or "Service")
                {
                    services.Add((backend.Namespace ?? route.Metadata.Namespace, backend.Name));
                }
            }
        }

        // A policy naming a Service no included route uses has nothing to do here, so only the routes' Services count.
        var serviceNamespaces = new HashSet<string>(services.Select(static s => s.Namespace), StringComparer.Ordinal);
        var filters = new HashSet<(string Namespace, string Name)>();
        var configs = new HashSet<ResourceKey>();
        foreach (var (key, resource) in index is null ? all : Candidates(all, index, root, namespaces, routes, services, serviceNamespaces))
        {
            switch (resource)
            {
                case Service when services.Contains((key.Namespace, key.Name)):
                case ReferenceGrant when serviceNamespaces.Contains(key.Namespace):
                    closure[key] = resource;
                    break;
                case EndpointSlice slice when slice.ServiceName is { } service && services.Contains((key.Namespace, service)):
                    closure[key] = resource;
                    break;
                case KubernetesNamespace when namespaces.Contains(key.Name):
                    closure[key] = resource;
                    break;
                case HealthCheckPolicy or BackendLbPolicy or BackendTrafficPolicy or ClientTrafficPolicy or RouteRuleFilterPolicy
                    when TargetRefs(resource).Any(t => Targets(t, key.Namespace, root, routes, services)):
                    closure[key] = resource;
                    if (resource is RouteRuleFilterPolicy ruleFilters)
                    {
                        filters.UnionWith(ruleFilters.FilterRefs.Select(f => (key.Namespace, f.Name)));
                    }

                    break;
                case RateLimitPolicy rateLimit when Targets(rateLimit.TargetRef, key.Namespace, root, routes, services):
                    closure[key] = resource;
                    break;
                case ListenerFilter listenerFilter when key.Namespace == root.Metadata.Namespace
                    && listenerFilter.TargetRefs.Any(t => t.Kind == "Gateway" && t.Name == root.Metadata.Name):
                    closure[key] = resource;
                    AddConfig(configs, listenerFilter.ConfigRef, key.Namespace);
                    break;
            }
        }

        foreach (var (ns, name) in filters)
        {
            if (all.TryGetValue(new ResourceKey(ResourceKind.Filter, ns, name), out var filter))
            {
                closure[filter.Key] = filter;
                AddConfig(configs, ((FsmFilter)filter).ConfigRef, ns);
            }
        }

        foreach (var config in configs)
        {
            if (all.TryGetValue(config, out var resource))
            {
                closure[config] = resource;
            }
        }

        return closure.ToImmutable();
    }

    /// <summary>
    /// The objects the pass over the whole snapshot in <see cref="Of(ConfigSnapshot, DependencyIndex?, ResourceKey, string?, string)"/>
    /// could take, found through <paramref name="index"/>: the routes' Services and their EndpointSlices, the
    /// ReferenceGrants of those Services' namespaces, the Namespaces, and the policy and filter objects naming the
    /// Gateway, a route or a Service (a superset: the same tests then decide).
    /// </summary>
    private static IEnumerable<KeyValuePair<ResourceKey, Resource>> Candidates(
        ImmutableSortedDictionary<ResourceKey, Resource> all,
        DependencyIndex index,
        Gateway root,
        HashSet<string> namespaces,
        HashSet<(string Namespace, string Name)> routes,
        HashSet<(string Namespace, string Name)> services,
        HashSet<string> serviceNamespaces)
    {
        var keys = new List<ResourceKey>();
        foreach (var ns in namespaces)
        {
            keys.Add(new ResourceKey(ResourceKind.Namespace, string.Empty, ns));
        }

        foreach (var ns in serviceNamespaces)
        {
            keys.AddRange(index.GrantsIn(ns));
        }

        keys.AddRange(index.DependentsOf(root.Key));
        foreach (var (ns, name) in routes)
        {
            keys.AddRange(index.DependentsOf(new ResourceKey(ResourceKind.TcpRoute, ns, name)));
        }

        foreach (var (ns, name) in services)
        {
            var service = new ResourceKey(ResourceKind.Service, ns, name);
            keys.Add(service);
            keys.AddRange(index.DependentsOf(service));
            if (index.SlicesByService.TryGetValue((ns, name), out var slices))
            {
                keys.AddRange(slices.Keys);
            }
        }

        foreach (var key in keys)
        {
            if (all.TryGetValue(key, out var resource))
            {
                yield return new(key, resource);
            }
        }
    }

    private static bool NamesGateway(ParentReference parent, string routeNamespace, Gateway gateway) =>
        parent.Group is null or GatewayApi.Group
        && parent.Kind is null or "Gateway"
        && parent.Name == gateway.Metadata.Name
        && (parent.Namespace ?? routeNamespace) == gateway.Metadata.Namespace;

    private static bool Targets(PolicyTargetReference target, string policyNamespace, Gateway gateway, HashSet<(string, string)> routes, HashSet<(string, string)> services)
    {
        var ns = target.Namespace ?? policyNamespace;
        return target.Kind switch
        {
            "Gateway" => ns == gateway.Metadata.Namespace && target.Name == gateway.Metadata.Name,
            "TCPRoute" => routes.Contains((ns, target.Name)),
            "Service" => services.Contains((ns, target.Name)),
            _ => false,
        };
    }

    private static IEnumerable<PolicyTargetReference> TargetRefs(Resource policy) => policy switch
    {
        HealthCheckPolicy p => p.TargetRefs,
        BackendLbPolicy p => p.TargetRefs,
        BackendTrafficPolicy p => p.TargetRefs,
        ClientTrafficPolicy p => p.TargetRefs,
        RouteRuleFilterPolicy p => p.TargetRefs,
        _ => [],
    };

    private static void AddConfig(HashSet<ResourceKey> configs, LocalObjectReference? reference, string ns)
    {
        if (reference is null)
        {
            return;
        }

        // The config's kind is named by the reference; both kinds are looked up, as the compiler does by key.
        configs.Add(new ResourceKey(ResourceKind.ConcurrencyLimit, ns, reference.Name));
        configs.Add(new ResourceKey(ResourceKind.IPRestriction, ns, reference.Name));
    }
}
