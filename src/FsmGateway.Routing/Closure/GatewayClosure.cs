using System.Collections.Immutable;
using FsmGateway.Configuration;
using FsmGateway.Resources;
using FsmGateway.Routing.Compilation;
using FsmGateway.Routing.Incremental;

namespace FsmGateway.Routing;

/// <summary>
/// A Gateway's dependency closure: the objects its data plane needs to compile exactly what the controller compiles
/// for that Gateway, and nothing else. The Gateway and its class; the TCPRoutes whose parentRefs name it; the
/// Namespaces of the Gateway and of those routes (listener namespace selectors read their labels); the Services the
/// routes' backendRefs name and their EndpointSlices, a Service in another namespace than its route's only when a
/// ReferenceGrant there permits that route's reference, and those permitting grants; the policies whose targetRefs
/// name the Gateway, one of the routes or one of those Services, with the Filters and filter configs they refer to
/// (in the policy's own namespace), and the grants that permit a HealthCheckPolicy or BackendLBPolicy to target one of
/// those Services from another namespace. Pure: the same snapshot and Gateway give the same set.
/// </summary>
/// <remarks>
/// <para>
/// Across namespaces an object enters only with its own namespace's consent, since a data plane's pod can read all it
/// is sent: a route or policy by naming the Gateway, one of its routes or one of its Services (its author chose to);
/// another namespace's Service, its EndpointSlices and its policies only through a ReferenceGrant in that namespace
/// that permits the reference (<see cref="Compilation.ReferenceGrants"/>, the compiler's own rule); and of a
/// namespace's grants only those permitting a reference the closure holds. A backendRef no grant permits is refused
/// by the compiler (RefNotPermitted) before its Service is looked up, so the data plane decides alike without it; a
/// grant that permits here permits in the whole config, and every grant that permits a held reference is held, so a
/// reference is permitted in the closure exactly where it is for the controller.
/// </para>
/// <para>
/// Otherwise it errs on the side of including (a policy that targets an included object is included even when it
/// loses to another), since the compiler ignores what does not apply but cannot compile what is missing.
/// </para>
/// </remarks>
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
        var grants = new GrantsByNamespace(snapshot, index);
        var candidateRoutes = index is null
            ? snapshot.OfType<TcpRoute>()
            : index.RoutesOf(gateway).Select(key => all.GetValueOrDefault(key)).OfType<TcpRoute>();
        foreach (var route in candidateRoutes)
        {
            if (!route.ParentRefs.Any(p => NamesGateway(p, route.Metadata.Namespace, root)))
            {
                continue;
            }

            var routeNamespace = route.Metadata.Namespace;
            closure.Add(route.Key, route);
            routes.Add((routeNamespace, route.Metadata.Name));
            namespaces.Add(routeNamespace);
            foreach (var backend in route.Rules.SelectMany(static r => r.BackendRefs))
            {
                // Another namespace's Service only with that namespace's consent, as the compiler decides it: a refused
                // backendRef is RefNotPermitted before its Service is looked up, so the data plane needs neither.
                var ns = backend.Namespace ?? routeNamespace;
                if (backend.Group is null or GatewayApi.CoreGroup && backend.Kind is null or "Service"
                    && (ns == routeNamespace || AddPermitting(closure, grants.In(ns), GatewayApi.Group, "TCPRoute", routeNamespace, ns, backend.Name)))
                {
                    services.Add((ns, backend.Name));
                }
            }
        }

        var filters = new HashSet<(string Namespace, string Name)>();
        var configs = new HashSet<ResourceKey>();
        foreach (var (key, resource) in index is null ? all : Candidates(all, index, root, namespaces, routes, services))
        {
            switch (resource)
            {
                case Service when services.Contains((key.Namespace, key.Name)):
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
                    else if (resource is HealthCheckPolicy or BackendLbPolicy)
                    {
                        AddPolicyGrants(closure, grants, resource, services);
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
    /// Namespaces, and the policy and filter objects naming the Gateway, a route or a Service (a superset: the same
    /// tests then decide). ReferenceGrants are not among them: they are taken where a reference needs one.
    /// </summary>
    private static IEnumerable<KeyValuePair<ResourceKey, Resource>> Candidates(
        ImmutableSortedDictionary<ResourceKey, Resource> all,
        DependencyIndex index,
        Gateway root,
        HashSet<string> namespaces,
        HashSet<(string Namespace, string Name)> routes,
        HashSet<(string Namespace, string Name)> services)
    {
        var keys = new List<ResourceKey>();
        foreach (var ns in namespaces)
        {
            keys.Add(new ResourceKey(ResourceKind.Namespace, string.Empty, ns));
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

    /// <summary>
    /// Adds to <paramref name="closure"/> every grant of <paramref name="grants"/> (those of the Service's namespace)
    /// that permits the reference (<see cref="ReferenceGrants.Permits"/>, the compiler's rule); true when one does.
    /// Every permitting grant, not the first: the set is then the same whatever the order, and the data plane finds a
    /// permit exactly where the controller does (a grant that permits there permits here, and no other is sent).
    /// </summary>
    private static bool AddPermitting(
        ImmutableSortedDictionary<ResourceKey, Resource>.Builder closure,
        IEnumerable<ReferenceGrant> grants,
        string fromGroup,
        string fromKind,
        string fromNamespace,
        string serviceNamespace,
        string serviceName)
    {
        var permitted = false;
        foreach (var grant in grants)
        {
            if (ReferenceGrants.Permits(grant, fromGroup, fromKind, fromNamespace, serviceNamespace, serviceName))
            {
                closure[grant.Key] = grant;
                permitted = true;
            }
        }

        return permitted;
    }

    /// <summary>
    /// The grants that permit a HealthCheckPolicy's or BackendLBPolicy's targetRefs to the Services of the closure in
    /// other namespaces than the policy's (the compiler applies such a policy to a backend only with one); a target the
    /// closure does not hold affects none of its backends, and needs no grant.
    /// </summary>
    private static void AddPolicyGrants(ImmutableSortedDictionary<ResourceKey, Resource>.Builder closure, GrantsByNamespace grants, Resource policy, HashSet<(string Namespace, string Name)> services)
    {
        var own = policy.Metadata.Namespace;
        foreach (var target in TargetRefs(policy))
        {
            var ns = target.Namespace ?? own;
            if (target is { Group: GatewayApi.CoreGroup, Kind: "Service" } && ns != own && services.Contains((ns, target.Name)))
            {
                AddPermitting(closure, grants.In(ns), PolicyApi.FsmGroup, ResourceKey.KindName(policy.Kind), own, ns, target.Name);
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

    /// <summary>The ReferenceGrants of a namespace: from the index when there is one, else from one pass over the snapshot, made when first asked.</summary>
    private sealed class GrantsByNamespace(ConfigSnapshot snapshot, DependencyIndex? index)
    {
        private ILookup<string, ReferenceGrant>? _all;

        public IEnumerable<ReferenceGrant> In(string ns) => index is null
            ? (_all ??= snapshot.OfType<ReferenceGrant>().ToLookup(static g => g.Metadata.Namespace, StringComparer.Ordinal))[ns]
            : index.GrantsIn(ns).Select(key => snapshot.Resources.GetValueOrDefault(key)).OfType<ReferenceGrant>();
    }
}
