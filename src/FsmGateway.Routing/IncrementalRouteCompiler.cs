using System.Collections.Immutable;
using FsmGateway.Configuration;
using FsmGateway.Resources;
using FsmGateway.Routing.Compilation;
using FsmGateway.Routing.Incremental;
using FsmGateway.Status;

namespace FsmGateway.Routing;

/// <summary>
/// <see cref="RouteCompiler"/> with a memory of its last compilation, for a pipeline that compiles one snapshot after
/// another. What changed since the last snapshot (as <see cref="ConfigSnapshot.TryGetChangedKeys"/> tells), and which
/// listener bindings and data planes differ, decide how much is recompiled:
/// <list type="bullet">
/// <item>Only EndpointSlices changed (same options, bindings and data planes): only the table entries whose backends
/// reach those Services get new endpoints (or, when they are not listed, say anew whether they have a ready one), and
/// their "no ready endpoints" notes are redone. Nothing else in a
/// compilation reads EndpointSlices, so statuses (route status across Gateways included) carry over as they are.</item>
/// <item>Gateways, TCPRoutes, Services, EndpointSlices, ReferenceGrants, policies or filters changed, or data planes
/// reported other bindings or provisioning found something new for some Gateways, and each Gateway has addresses of
/// its own (<see cref="CompilerOptions.GatewaysHaveOwnAddresses"/>, so Gateways never conflict over a port): only the
/// Gateways those changes can affect are compiled again. They are closed over the routes attached to them (a route
/// with parents on several Gateways brings them all, so its status, one entry per parent, is whole) and over policy
/// attachment (a policy or filter on an affected Gateway, listener, route, rule or a Service an affected route uses
/// comes in with every Gateway, route and Service it names and the other policies there, so its
/// <c>status.ancestors</c>, which span Gateways, and the older-wins settling of conflicts are decided whole; a Filter
/// or filter config with every object using it). They are compiled from the objects they depend on alone, and the
/// results replace theirs in the table, the statuses and the diagnostics.</item>
/// <item>Anything else (a GatewayClass or Namespace, other options, a change that reaches too much of the cluster)
/// compiles in full.</item>
/// </list>
/// The result is always equal to <see cref="RouteCompiler.Compile"/>'s for the same input (a property test checks it
/// over random event sequences). Pure like the compiler (no I/O, no clock); not thread-safe: one pipeline calls it.
/// </summary>
public sealed class IncrementalRouteCompiler
{
    private ConfigSnapshot? _snapshot;
    private CompilerOptions? _options;
    private ListenerBindings? _bindings;
    private ProvisionedDataPlanes? _dataPlanes;
    private CompilationResult? _result;

    /// <summary>The table's listener entries by each Service their backends name; rebuilt after every compile that moves entries.</summary>
    private Dictionary<(string Namespace, string Name), List<int>>? _entriesByService;

    /// <summary>Which objects affect which Gateways; built with a full compile, then kept up to date from the changed keys.</summary>
    private DependencyIndex? _index;

    /// <summary>Whether the last <see cref="Compile"/> recomputed only what changed (either way: endpoints, or some Gateways).</summary>
    public bool LastWasIncremental { get; private set; }

    /// <summary>How many Gateways the last <see cref="Compile"/> compiled again on their own; 0 when it compiled in full or only endpoints changed.</summary>
    public int LastRecompiledGateways { get; private set; }

    /// <summary>Whether the last <see cref="Compile"/> compiled only the Gateways its changes reach (see <see cref="LastRecompiledGateways"/>).</summary>
    public bool LastWasPerGateway { get; private set; }

    /// <summary>Compiles <paramref name="snapshot"/>, reusing the previous compilation where the changes allow it.</summary>
    /// <param name="snapshot">Every object the gateway knows.</param>
    /// <param name="options">Which controller we are; <see cref="CompilerOptions.Default"/> when null.</param>
    /// <param name="bindings">What the transport bound; <see cref="ListenerBindings.Pending"/> when null.</param>
    /// <param name="dataPlanes">What the controller provisioned for each Gateway; null when it provisions nothing.</param>
    /// <returns>The same result as <see cref="RouteCompiler.Compile"/>.</returns>
    public CompilationResult Compile(ConfigSnapshot snapshot, CompilerOptions? options = null, ListenerBindings? bindings = null, ProvisionedDataPlanes? dataPlanes = null)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        options ??= CompilerOptions.Default;
        bindings ??= ListenerBindings.Pending;
        LastWasIncremental = false;
        LastWasPerGateway = false;
        LastRecompiledGateways = 0;
        IReadOnlyCollection<ResourceKey>? changed = null;
        if (_snapshot is { } before && snapshot.TryGetChangedKeys(before, out changed))
        {
            _index?.Update(before, snapshot, changed);
        }
        else
        {
            _index = null;
        }

        if (_result is { } previous && _snapshot is { } earlier && changed is not null && options.Equals(_options))
        {
            var sameInputs = bindings.Equals(_bindings) && Equals(dataPlanes, _dataPlanes);
            if (sameInputs && changed.All(static k => k.Kind == ResourceKind.EndpointSlice))
            {
                _result = EndpointsChanged(previous, earlier, snapshot, changed);
                _snapshot = snapshot;
                LastWasIncremental = true;
                return _result;
            }

            if (TryPerGateway(previous, earlier, snapshot, changed, options, bindings, dataPlanes) is { } perGateway)
            {
                _result = perGateway;
                _snapshot = snapshot;
                _bindings = bindings;
                _dataPlanes = dataPlanes;
                _entriesByService = null;
                LastWasIncremental = true;
                LastWasPerGateway = true;
                return _result;
            }
        }

        _result = RouteCompiler.Compile(snapshot, options, bindings, dataPlanes);

        // Indexed once here (then kept up to date from the changed keys), so the first change after start does not pay for it.
        _index ??= DependencyIndex.Of(snapshot);
        _snapshot = snapshot;
        _options = options;
        _bindings = bindings;
        _dataPlanes = dataPlanes;
        _entriesByService = null;
        return _result;
    }

    private CompilationResult EndpointsChanged(CompilationResult previous, ConfigSnapshot before, ConfigSnapshot after, IReadOnlyCollection<ResourceKey> changed)
    {
        var slices = (_index ??= DependencyIndex.Of(after)).SlicesByService;
        var services = new HashSet<(string Namespace, string Name)>();
        foreach (var key in changed)
        {
            if (before.Resources.GetValueOrDefault(key) is EndpointSlice { ServiceName: { } oldService })
            {
                services.Add((key.Namespace, oldService));
            }

            if (after.Resources.GetValueOrDefault(key) is EndpointSlice { ServiceName: { } newService })
            {
                services.Add((key.Namespace, newService));
            }
        }

        var entries = _entriesByService ??= IndexEntries(previous.Table);
        var listEndpoints = _options!.ListEndpoints;
        var listeners = previous.Table.Listeners.Items;
        ImmutableArray<ListenerRoute>.Builder? table = null;
        List<Diagnostic>? notes = null;
        foreach (var service in services)
        {
            if (!entries.TryGetValue(service, out var indexes)
                || after.Resources.GetValueOrDefault(new ResourceKey(ResourceKind.Service, service.Namespace, service.Name)) is not Service resolved)
            {
                continue;
            }

            EndpointSlice[] serviceSlices = slices.TryGetValue(service, out var held) ? [.. held.Values] : [];
            foreach (var index in indexes)
            {
                var entry = table is null ? listeners[index] : table[index];
                ImmutableArray<RouteBackend>.Builder? backends = null;
                for (var i = 0; i < entry.Backends.Length; i++)
                {
                    var backend = entry.Backends[i];
                    if (backend.Namespace != service.Namespace || backend.Name != service.Name || backend.Problem is not null)
                    {
                        continue;
                    }

                    // A backend without a problem names a port the Service has (the resolver checked it).
                    var port = resolved.Ports.First(p => p.Port == backend.Port);
                    var updated = listEndpoints
                        ? backend with { Endpoints = BackendResolver.ReadyEndpoints(serviceSlices, port) }
                        : backend with { ReadyEndpointsOmitted = BackendResolver.HasReadyEndpoint(serviceSlices, port) };

                    // Most changes leave an unlisted backend as it was (it still has a ready endpoint): then so is the table.
                    if (updated != backend)
                    {
                        (backends ??= entry.Backends.Items.ToBuilder())[i] = updated;
                    }
                }

                if (backends is not null)
                {
                    table ??= listeners.ToBuilder();
                    table[index] = entry with { Backends = backends.ToImmutable() };
                }
            }
        }

        if (table is null)
        {
            return previous with { Revision = after.Revision };
        }

        // The "no ready endpoints" notes of the affected Services, as the table builder writes them.
        var prefixes = services.Select(static s => TableBuilder.NoReadyEndpointsPrefix(s.Namespace, s.Name)).ToList();
        foreach (var service in services)
        {
            if (!entries.TryGetValue(service, out var indexes))
            {
                continue;
            }

            foreach (var index in indexes)
            {
                var entry = table[index];
                foreach (var backend in entry.Backends)
                {
                    if (backend.Namespace == service.Namespace && backend.Name == service.Name && TableBuilder.HasNoReadyEndpoints(backend))
                    {
                        (notes ??= []).Add(new Diagnostic(DiagnosticSeverity.Info, entry.Route, TableBuilder.NoReadyEndpoints(backend)));
                    }
                }
            }
        }

        var kept = previous.Diagnostics.Where(d => !IsNoReadyEndpointsNote(d, prefixes)).ToList();
        var diagnostics = kept.Count == previous.Diagnostics.Length && notes is null
            ? previous.Diagnostics
            : CompilationContext.Sorted(notes is null ? kept : kept.Concat(notes));
        return previous with
        {
            Revision = after.Revision,
            Table = new RoutingTable(table.ToImmutable()),
            Diagnostics = diagnostics.SequenceEqual(previous.Diagnostics) ? previous.Diagnostics : diagnostics,
        };
    }

    private static bool IsNoReadyEndpointsNote(Diagnostic diagnostic, List<string> prefixes) =>
        diagnostic.Severity == DiagnosticSeverity.Info
        && diagnostic.Message.Contains(" has no ready endpoints; ", StringComparison.Ordinal)
        && prefixes.Exists(p => diagnostic.Message.StartsWith(p, StringComparison.Ordinal));

    /// <summary>
    /// Compiles again only the Gateways the changes reach (see the class remarks), or returns null when the changes
    /// need a full compile.
    /// </summary>
    private CompilationResult? TryPerGateway(
        CompilationResult previous,
        ConfigSnapshot before,
        ConfigSnapshot after,
        IReadOnlyCollection<ResourceKey> changed,
        CompilerOptions options,
        ListenerBindings bindings,
        ProvisionedDataPlanes? dataPlanes)
    {
        if (!options.GatewaysHaveOwnAddresses)
        {
            // Listeners of different Gateways may conflict over a port: one Gateway's outcome depends on the others.
            return null;
        }

        foreach (var key in changed)
        {
            if (key.Kind is ResourceKind.GatewayClass or ResourceKind.Namespace)
            {
                // Classes and Namespaces are read by every Gateway.
                return null;
            }
        }

        var index = _index ??= DependencyIndex.Of(after);
        var gateways = new HashSet<ResourceKey>();
        if (!BindingsDiffer(_bindings!, bindings, gateways) || !DataPlanesDiffer(_dataPlanes, dataPlanes, gateways))
        {
            return null;
        }

        var closure = new Closure(index, after, gateways);
        foreach (var gateway in gateways.ToList())
        {
            closure.Gateway(gateway);
        }

        // The seeds: what each change touches directly, before and after it.
        foreach (var key in changed)
        {
            var old = before.Resources.GetValueOrDefault(key);
            switch (key.Kind)
            {
                case ResourceKind.Gateway:
                    closure.Gateway(key);
                    break;
                case ResourceKind.TcpRoute:
                    closure.Route(key);
                    if (old is TcpRoute oldRoute)
                    {
                        // The Gateways it left lose its entry in their listeners' attached routes; the policies on
                        // Services it left lose those Gateways from their ancestors.
                        closure.RouteReferences(oldRoute);
                    }

                    break;
                case ResourceKind.Service:
                    closure.Service(key, always: true);
                    break;
                case ResourceKind.EndpointSlice:
                    if (old is EndpointSlice { ServiceName: { } oldService })
                    {
                        closure.Routes(index.RoutesUsing(key.Namespace, oldService));
                    }

                    if (after.Resources.GetValueOrDefault(key) is EndpointSlice { ServiceName: { } newService })
                    {
                        closure.Routes(index.RoutesUsing(key.Namespace, newService));
                    }

                    break;
                case ResourceKind.ReferenceGrant:
                    closure.Routes(index.RoutesReferringInto(key.Namespace));
                    closure.Policies(index.PoliciesReferringInto(key.Namespace));
                    break;
                default:
                    closure.Policy(key);
                    if (old is not null)
                    {
                        // What it referred to before: its old targets lose its effect and its ancestors.
                        closure.PolicyReferences(old);
                    }

                    break;
            }
        }

        // Closed over attachment (every route naming an affected Gateway, every Gateway an affected route names) and
        // over policy attachment (every policy or filter on an affected Gateway, route or a Service it uses; every
        // Gateway, route and Service such a policy names, with the other policies there, which it may conflict with).
        var limit = Math.Max(64, index.Routes / 8);
        if (!closure.Close(limit))
        {
            // So much of the cluster that compiling it whole is as cheap.
            return null;
        }

        var routes = closure.RouteKeys;
        var policies = closure.PolicyKeys;
        LastRecompiledGateways = gateways.Count;
        if (gateways.Count == 0 && routes.Count == 0 && policies.Count == 0)
        {
            return previous with { Revision = after.Revision };
        }

        var part = RouteCompiler.CompileResources(Dependencies(after, index, gateways, routes, policies), after.Revision, options, bindings, dataPlanes);
        return Splice(previous, part, after.Revision, gateways, routes, policies);
    }

    /// <summary>
    /// The Gateways, routes and policy or filter objects a change reaches, closed so that each one's outcome (table
    /// entries, status, diagnostics) is decided by what the closure holds alone.
    /// </summary>
    private sealed class Closure(DependencyIndex index, ConfigSnapshot snapshot, HashSet<ResourceKey> gateways)
    {
        private readonly Queue<ResourceKey> _pending = new();
        private readonly HashSet<ResourceKey> _services = [];
        private readonly HashSet<ResourceKey> _gateways = [];

        public HashSet<ResourceKey> RouteKeys { get; } = [];

        public HashSet<ResourceKey> PolicyKeys { get; } = [];

        public void Gateway(ResourceKey key)
        {
            gateways.Add(key);
            Visit(_gateways, key);
        }

        public void Route(ResourceKey key) => Visit(RouteKeys, key);

        public void Routes(IEnumerable<ResourceKey> keys) => VisitAll(RouteKeys, keys);

        public void Policy(ResourceKey key) => Visit(PolicyKeys, key);

        public void Policies(IEnumerable<ResourceKey> keys) => VisitAll(PolicyKeys, keys);

        /// <summary>
        /// A Service the closure reaches: the policies on it, and (as their ancestors span them) every route using it.
        /// A route's Service with no policy on it needs neither (<paramref name="always"/> false).
        /// </summary>
        public void Service(ResourceKey key, bool always)
        {
            if (always || index.DependentsOf(key).Count > 0)
            {
                Visit(_services, key);
            }
        }

        /// <summary>A route's parents and the Services it uses that policies name.</summary>
        public void RouteReferences(TcpRoute route)
        {
            foreach (var parent in DependencyIndex.Parents(route))
            {
                Gateway(parent);
            }

            foreach (var (ns, name) in DependencyIndex.Services(route))
            {
                Service(new ResourceKey(ResourceKind.Service, ns, name), always: false);
            }
        }

        /// <summary>What a policy or filter object refers to.</summary>
        public void PolicyReferences(Resource resource)
        {
            foreach (var reference in DependencyIndex.References(resource))
            {
                switch (reference.Kind)
                {
                    case ResourceKind.Gateway: Gateway(reference); break;
                    case ResourceKind.TcpRoute: Route(reference); break;
                    case ResourceKind.Service: Service(reference, always: true); break;
                    default: Policy(reference); break;
                }
            }
        }

        /// <summary>Queues <paramref name="key"/> for <see cref="Close"/> the first time <paramref name="seen"/> meets it.</summary>
        private void Visit(HashSet<ResourceKey> seen, ResourceKey key)
        {
            if (seen.Add(key))
            {
                _pending.Enqueue(key);
            }
        }

        private void VisitAll(HashSet<ResourceKey> seen, IEnumerable<ResourceKey> keys)
        {
            foreach (var key in keys)
            {
                Visit(seen, key);
            }
        }

        /// <summary>Follows every pending object's edges; false once the closure holds more than <paramref name="limit"/> Gateways, routes or policies.</summary>
        public bool Close(int limit)
        {
            while (_pending.TryDequeue(out var key))
            {
                Policies(index.DependentsOf(key));
                switch (key.Kind)
                {
                    case ResourceKind.Gateway:
                        Routes(index.RoutesOf(key));
                        break;
                    case ResourceKind.TcpRoute:
                        if (snapshot.Resources.GetValueOrDefault(key) is TcpRoute route)
                        {
                            RouteReferences(route);
                        }

                        break;
                    case ResourceKind.Service:
                        Routes(index.RoutesUsing(key.Namespace, key.Name));
                        break;
                    default:
                        if (snapshot.Resources.GetValueOrDefault(key) is { } resource)
                        {
                            PolicyReferences(resource);
                        }

                        break;
                }

                if (RouteKeys.Count > limit || gateways.Count > limit || PolicyKeys.Count > limit)
                {
                    return false;
                }
            }

            return true;
        }
    }

    /// <summary>The objects a compilation of <paramref name="gateways"/>, <paramref name="routes"/> and <paramref name="policies"/> reads, sorted by key.</summary>
    private static List<Resource> Dependencies(ConfigSnapshot snapshot, DependencyIndex index, HashSet<ResourceKey> gateways, HashSet<ResourceKey> routes, HashSet<ResourceKey> policies)
    {
        var found = new Dictionary<ResourceKey, Resource>();
        void Take(ResourceKey key)
        {
            if (!found.ContainsKey(key) && snapshot.Resources.TryGetValue(key, out var resource))
            {
                found[key] = resource;
            }
        }

        foreach (var key in index.ReadEverywhere)
        {
            Take(key);
        }

        foreach (var key in gateways)
        {
            Take(key);
        }

        foreach (var key in routes)
        {
            if (snapshot.Resources.GetValueOrDefault(key) is not TcpRoute route)
            {
                continue;
            }

            found[key] = route;
            foreach (var (ns, name) in DependencyIndex.Services(route))
            {
                Take(new ResourceKey(ResourceKind.Service, ns, name));
                if (index.SlicesByService.TryGetValue((ns, name), out var slices))
                {
                    foreach (var (sliceKey, slice) in slices)
                    {
                        found[sliceKey] = slice;
                    }
                }

                if (ns != route.Metadata.Namespace)
                {
                    foreach (var grant in index.GrantsIn(ns))
                    {
                        Take(grant);
                    }
                }
            }
        }

        foreach (var key in policies)
        {
            if (snapshot.Resources.GetValueOrDefault(key) is not { } policy)
            {
                continue;
            }

            found[key] = policy;
            foreach (var reference in DependencyIndex.References(policy))
            {
                // Gateways, routes, Filters and configs it names are in the closure already; a Service it names is
                // read for whether it exists, across namespaces with the ReferenceGrants there.
                if (reference.Kind == ResourceKind.Service)
                {
                    Take(reference);
                    if (reference.Namespace != key.Namespace)
                    {
                        foreach (var grant in index.GrantsIn(reference.Namespace))
                        {
                            Take(grant);
                        }
                    }
                }
            }
        }

        var sorted = found.Values.ToList();
        sorted.Sort(static (a, b) => a.Key.CompareTo(b.Key));
        return sorted;
    }

    /// <summary><paramref name="previous"/> with what <paramref name="part"/> says of <paramref name="gateways"/> and <paramref name="routes"/> in place of what it said.</summary>
    private static CompilationResult Splice(CompilationResult previous, CompilationResult part, long revision, HashSet<ResourceKey> gateways, HashSet<ResourceKey> routes, HashSet<ResourceKey> policies)
    {
        // The table: the other Gateways' entries as they were, merged in order with the recompiled ones.
        var old = previous.Table.Listeners.Items;
        var added = part.Table.Listeners.Items;
        var table = ImmutableArray.CreateBuilder<ListenerRoute>(old.Length + added.Length);
        var next = 0;
        foreach (var entry in old)
        {
            if (gateways.Contains(entry.Gateway))
            {
                continue;
            }

            while (next < added.Length && TableBuilder.CompareEntries(added[next], entry) < 0)
            {
                table.Add(added[next++]);
            }

            table.Add(entry);
        }

        while (next < added.Length)
        {
            table.Add(added[next++]);
        }

        var statuses = previous.Statuses with
        {
            Gateways = previous.Statuses.Gateways.SetItems(gateways, part.Statuses.Gateways),
            Routes = previous.Statuses.Routes.SetItems(routes, part.Statuses.Routes),
        };
        if (policies.Count > 0)
        {
            statuses = statuses with
            {
                Policies = previous.Statuses.Policies.SetItems(policies, part.Statuses.Policies),
                Conditions = previous.Statuses.Conditions.SetItems(policies, part.Statuses.Conditions),
            };
        }

        return previous with
        {
            Revision = revision,
            Table = new RoutingTable(table.Count == table.Capacity ? table.MoveToImmutable() : table.ToImmutable()),
            Statuses = statuses,
            Diagnostics = MergeDiagnostics(previous.Diagnostics, part.Diagnostics, gateways, routes, policies),
            RouteApiVersions = previous.RouteApiVersions.SetItems(routes, part.RouteApiVersions),
        };
    }

    /// <summary>
    /// The diagnostics about other objects as they were, and those <paramref name="part"/> has about the recompiled
    /// Gateways, routes and policy or filter objects, in a result's order. (The part's notes about GatewayClasses, or
    /// with no object, are the same as before: classes did not change.)
    /// </summary>
    private static ImmutableArray<Diagnostic> MergeDiagnostics(ImmutableArray<Diagnostic> previous, ImmutableArray<Diagnostic> part, HashSet<ResourceKey> gateways, HashSet<ResourceKey> routes, HashSet<ResourceKey> policies)
    {
        bool Recompiled(Diagnostic d) => d.Object is { } key && (gateways.Contains(key) || routes.Contains(key) || policies.Contains(key));
        var kept = previous.Where(d => !Recompiled(d)).ToList();
        var fresh = part.Where(Recompiled).ToList();
        if (fresh.Count == 0 && kept.Count == previous.Length)
        {
            return previous;
        }

        return CompilationContext.Sorted(kept.Concat(fresh));
    }

    /// <summary>
    /// Adds to <paramref name="gateways"/> each Gateway whose reported bindings differ; false when the bindings differ
    /// in a way that is not per Gateway (one process's own ports).
    /// </summary>
    private static bool BindingsDiffer(ListenerBindings before, ListenerBindings after, HashSet<ResourceKey> gateways)
    {
        if (ReferenceEquals(before, after) || before.Equals(after))
        {
            return true;
        }

        if (before.ByGateway is not { } old || after.ByGateway is not { } now || !before.Unreported.Equals(after.Unreported))
        {
            return false;
        }

        DiffSorted(old, now, static (a, b) => a.Count == b.Count && a.All(p => b.TryGetValue(p.Key, out var o) && p.Value.Equals(o)), gateways);
        return true;
    }

    /// <summary>Adds to <paramref name="gateways"/> each Gateway whose data plane differs; false when one side provisions nothing.</summary>
    private static bool DataPlanesDiffer(ProvisionedDataPlanes? before, ProvisionedDataPlanes? after, HashSet<ResourceKey> gateways)
    {
        if (ReferenceEquals(before, after))
        {
            return true;
        }

        if (before is null || after is null)
        {
            return false;
        }

        DiffSorted(before.ByGateway, after.ByGateway, static (a, b) => a.Equals(b), gateways);
        return true;
    }

    /// <summary>Walks two maps sorted by key side by side, adding each key that is in one only or whose values differ.</summary>
    private static void DiffSorted<T>(ImmutableSortedDictionary<ResourceKey, T> before, ImmutableSortedDictionary<ResourceKey, T> after, Func<T, T, bool> same, HashSet<ResourceKey> keys)
        where T : class
    {
        using var a = before.GetEnumerator();
        using var b = after.GetEnumerator();
        var hasA = a.MoveNext();
        var hasB = b.MoveNext();
        while (hasA || hasB)
        {
            var order = !hasA ? 1 : !hasB ? -1 : a.Current.Key.CompareTo(b.Current.Key);
            if (order < 0)
            {
                keys.Add(a.Current.Key);
                hasA = a.MoveNext();
            }
            else if (order > 0)
            {
                keys.Add(b.Current.Key);
                hasB = b.MoveNext();
            }
            else
            {
                if (!ReferenceEquals(a.Current.Value, b.Current.Value) && !same(a.Current.Value, b.Current.Value))
                {
                    keys.Add(a.Current.Key);
                }

                hasA = a.MoveNext();
                hasB = b.MoveNext();
            }
        }
    }

    private static Dictionary<(string Namespace, string Name), List<int>> IndexEntries(RoutingTable table)
    {
        var index = new Dictionary<(string, string), List<int>>();
        for (var i = 0; i < table.Listeners.Length; i++)
        {
            foreach (var backend in table.Listeners[i].Backends)
            {
                if (!index.TryGetValue((backend.Namespace, backend.Name), out var entries))
                {
                    index[(backend.Namespace, backend.Name)] = entries = [];
                }

                if (entries.Count == 0 || entries[^1] != i)
                {
                    entries.Add(i);
                }
            }
        }

        return index;
    }
}
