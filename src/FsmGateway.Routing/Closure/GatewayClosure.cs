using System.Collections.Immutable;
using FsmGateway.Configuration;
using FsmGateway.Resources;

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
        else if (implicitGatewayClassName == root.GatewayClassName && !snapshot.OfType<GatewayClass>().Any())
        {
            closure.Add(classKey, new GatewayClass(new ObjectMeta(string.Empty, implicitGatewayClassName), controllerName));
        }

        var namespaces = new HashSet<string>(StringComparer.Ordinal) { root.Metadata.Namespace };
        var routes = new HashSet<(string Namespace, string Name)>();
        var services = new HashSet<(string Namespace, string Name)>();
        foreach (var route in snapshot.OfType<TcpRoute>())
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
        foreach (var (key, resource) in all)
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
    /// Brings a closure computed earlier up to date with <paramref name="snapshot"/> when the only objects that changed
    /// since (<paramref name="changed"/>, as <see cref="ConfigSnapshot.TryGetChangedKeys"/> gives them) are Services and
    /// EndpointSlices, which the closure takes or leaves by the Services its routes name, and other Gateways or routes
    /// that neither name this Gateway nor are in its closure: O(changes), not O(objects), and equal to <see cref="Of"/>
    /// for the new snapshot. False for any other change (this Gateway, a route of it, any other kind): then call
    /// <see cref="Of"/>.
    /// </summary>
    /// <param name="closure">The Gateway's closure of the earlier snapshot.</param>
    /// <param name="snapshot">The new snapshot.</param>
    /// <param name="changed">The keys that may have changed since the earlier snapshot.</param>
    /// <param name="updated">The closure of the new snapshot (the same instance when nothing in it changed).</param>
    /// <returns>Whether <paramref name="updated"/> could be derived.</returns>
    public static bool TryUpdate(
        ImmutableSortedDictionary<ResourceKey, Resource> closure,
        ConfigSnapshot snapshot,
        IReadOnlyCollection<ResourceKey> changed,
        out ImmutableSortedDictionary<ResourceKey, Resource> updated)
    {
        ArgumentNullException.ThrowIfNull(closure);
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(changed);
        updated = closure;
        if (changed.Any(static k => k.Kind is not (ResourceKind.Service or ResourceKind.EndpointSlice or ResourceKind.TcpRoute or ResourceKind.Gateway)))
        {
            return false;
        }

        // A Gateway or route change matters only to the closure of that Gateway, or of a Gateway the route names (or
        // named, when the closure holds it); an empty closure (no such Gateway yet) cannot tell which Gateway it is for.
        var root = closure.IsEmpty ? null : closure.Values.OfType<Gateway>().First();
        foreach (var key in changed)
        {
            switch (key.Kind)
            {
                case ResourceKind.Gateway when root is null || key == root.Key:
                    return false;
                case ResourceKind.TcpRoute when root is not null
                    && (closure.ContainsKey(key) || snapshot.Resources.GetValueOrDefault(key) is TcpRoute route && route.ParentRefs.Any(p => NamesGateway(p, route.Metadata.Namespace, root))):
                    return false;
            }
        }

        if (closure.IsEmpty || changed.Count == 0)
        {
            return true;
        }

        // The Services the closure's routes name, as Of collects them.
        var services = new HashSet<(string Namespace, string Name)>();
        foreach (var resource in closure.Values)
        {
            if (resource is TcpRoute route)
            {
                foreach (var backend in route.Rules.SelectMany(static r => r.BackendRefs))
                {
                    if (backend.Group is null or GatewayApi.CoreGroup && backend.Kind is null or "Service")
                    {
                        services.Add((backend.Namespace ?? route.Metadata.Namespace, backend.Name));
                    }
                }
            }
        }

        ImmutableSortedDictionary<ResourceKey, Resource>.Builder? builder = null;
        foreach (var key in changed)
        {
            var now = snapshot.Resources.GetValueOrDefault(key);
            var belongs = now switch
            {
                Service => services.Contains((key.Namespace, key.Name)),
                EndpointSlice { ServiceName: { } service } => services.Contains((key.Namespace, service)),
                _ => false,
            };
            if (belongs)
            {
                if (!closure.TryGetValue(key, out var held) || !ReferenceEquals(held, now))
                {
                    (builder ??= closure.ToBuilder())[key] = now!;
                }
            }
            else if (closure.ContainsKey(key))
            {
                (builder ??= closure.ToBuilder()).Remove(key);
            }
        }

        updated = builder?.ToImmutable() ?? closure;
        return true;
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
