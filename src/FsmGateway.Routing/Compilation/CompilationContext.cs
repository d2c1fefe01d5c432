using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using FsmGateway.Resources;
using FsmGateway.Status;

namespace FsmGateway.Routing.Compilation;

/// <summary>
/// The snapshot indexed for the stages, plus the diagnostics they collect: one per compilation, whose large collections
/// are handed on to the next (<see cref="Release"/>).
/// </summary>
internal sealed class CompilationContext
{
    private static readonly IReadOnlyDictionary<string, string> NoLabels = ImmutableDictionary<string, string>.Empty;
    private readonly List<Diagnostic> _diagnostics = [];

    /// <summary>The buffers the last full compile left for the next (taken by one compile at a time; null while one has them).</summary>
    private static Buffers? _spare;

    /// <summary>This compile's large collections: the spare ones for a full compile, new ones for a part of a snapshot.</summary>
    private readonly Buffers _buffers;

    /// <summary>Whether <see cref="_buffers"/> go back to <see cref="_spare"/> when the compile is done.</summary>
    private readonly bool _keepBuffers;

    /// <summary>
    /// A context over a snapshot's objects, read with the sorted dictionary's own enumerator. A large snapshot is read on
    /// two threads when the options allow it: one files the EndpointSlices, the other everything else.
    /// </summary>
    public CompilationContext(ImmutableSortedDictionary<ResourceKey, Resource> resources, CompilerOptions options, ListenerBindings bindings)
    {
        Options = options;
        Bindings = bindings;
        (_buffers, _keepBuffers) = (Interlocked.Exchange(ref _spare, null) ?? new(), true);
        _buffers.Reserve(resources.Count);
        if (resources.Count < ConcurrentIndexingFrom || options.MaxDegreeOfParallelism == 1)
        {
            AddAll(resources, slices: null);
            return;
        }

        Parallel.Invoke(
            new ParallelOptions { MaxDegreeOfParallelism = options.MaxDegreeOfParallelism },
            () => AddAll(resources, slices: false),
            () => AddAll(resources, slices: true));
    }

    /// <summary>Files the objects of <paramref name="resources"/>: every one (null), only the EndpointSlices (true), or all but them (false).</summary>
    private void AddAll(ImmutableSortedDictionary<ResourceKey, Resource> resources, bool? slices)
    {
        foreach (var (key, resource) in resources)
        {
            if (slices is null || (key.Kind == ResourceKind.EndpointSlice) == slices)
            {
                Add(key, resource);
            }
        }
    }

    /// <summary>
    /// How many objects a snapshot has before <see cref="CompilationContext(ImmutableSortedDictionary{ResourceKey, Resource}, CompilerOptions, ListenerBindings)"/>
    /// reads it on two threads: below that, a second thread costs more than it saves.
    /// </summary>
    private const int ConcurrentIndexingFrom = 4096;

    /// <summary>
    /// A context over <paramref name="resources"/>, which must be sorted by key and hold each key once (a snapshot's
    /// order): the part of a snapshot a per-Gateway recompile reads. Its collections are its own, so the spare ones
    /// keep the room of the last full compile (a small compile in between would shrink them).
    /// </summary>
    public CompilationContext(IEnumerable<Resource> resources, CompilerOptions options, ListenerBindings bindings)
    {
        Options = options;
        Bindings = bindings;
        _buffers = new();
        _buffers.Reserve(resources is IReadOnlyCollection<Resource> { Count: var count } ? count : 0);
        foreach (var resource in resources)
        {
            Add(resource.Key, resource);
        }
    }

    /// <summary>
    /// Files one object by its type; Services by namespace and name, EndpointSlices by namespace and Service name
    /// (read from the key where it can be, not the object's metadata), which a backendRef reads.
    /// </summary>
    private void Add(ResourceKey key, Resource resource)
    {
        switch (resource)
        {
            case EndpointSlice slice when slice.ServiceName is { } service:
                // Most Services have one slice: an array of one, grown in the rare case of more (in the snapshot's order).
                ref var slices = ref CollectionsMarshal.GetValueRefOrAddDefault(_buffers.Slices, (key.Namespace, service), out _);
                slices = slices is null ? [slice] : [.. slices, slice];
                break;
            case Service service: _buffers.Services[(key.Namespace, key.Name)] = service; break;
            case TcpRoute route: Routes.Add(route); break;
            case Gateway gateway: Gateways.Add(gateway); break;
            case GatewayClass gatewayClass: GatewayClasses.Add(gatewayClass); break;
            case ReferenceGrant grant: ReferenceGrants.Add(grant); break;
            case KubernetesNamespace ns: Namespaces[key.Name] = ns; break;
            case HealthCheckPolicy or BackendLbPolicy or BackendTrafficPolicy or ClientTrafficPolicy or RouteRuleFilterPolicy: Policies.Add(resource); break;
            case ListenerFilter filter: ListenerFilters.Add(filter); break;
            case FsmFilter filter: Filters[(key.Namespace, key.Name)] = filter; break;
            case ConcurrencyLimitConfig or IPRestrictionConfig: FilterConfigs[key] = resource; break;
            case RateLimitPolicy policy: RateLimitPolicies.Add(policy); break;
        }
    }

    public CompilerOptions Options { get; }

    public ListenerBindings Bindings { get; }

    /// <summary>What a provisioning controller found of each Gateway's data plane; null when nothing is provisioned.</summary>
    public ProvisionedDataPlanes? DataPlanes { get; init; }

    /// <summary>Every GatewayClass, sorted by key (the snapshot's order).</summary>
    public List<GatewayClass> GatewayClasses { get; } = [];

    public List<Gateway> Gateways { get; } = [];

    /// <summary>Every TCPRoute, sorted by key (the snapshot's order).</summary>
    public List<TcpRoute> Routes => _buffers.Routes;

    public List<ReferenceGrant> ReferenceGrants { get; } = [];

    /// <summary>FSM's ListenerFilters, sorted by key.</summary>
    public List<ListenerFilter> ListenerFilters { get; } = [];

    /// <summary>FSM's Filters by namespace and name.</summary>
    public Dictionary<(string Namespace, string Name), FsmFilter> Filters { get; } = [];

    /// <summary>FSM's ConcurrencyLimit and IPRestriction objects by key.</summary>
    public Dictionary<ResourceKey, Resource> FilterConfigs { get; } = [];

    /// <summary>FSM's first-generation RateLimitPolicies, sorted by key.</summary>
    public List<RateLimitPolicy> RateLimitPolicies { get; } = [];

    /// <summary>Every policy with <c>status.ancestors</c> (HealthCheckPolicy, BackendLBPolicy, BackendTrafficPolicy, ClientTrafficPolicy, RouteRuleFilterPolicy), sorted by key.</summary>
    public List<Resource> Policies { get; } = [];

    /// <summary>The Service <paramref name="ns"/>/<paramref name="name"/> and its EndpointSlices (none when it has none), or false when the snapshot has no such Service.</summary>
    public bool TryGetService(string ns, string name, [NotNullWhen(true)] out Service? service, out EndpointSlice[] slices)
    {
        if (!_buffers.Services.TryGetValue((ns, name), out service))
        {
            slices = [];
            return false;
        }

        slices = _buffers.Slices.GetValueOrDefault((ns, name)) ?? [];
        return true;
    }

    /// <summary>Whether the snapshot has the Service <paramref name="ns"/>/<paramref name="name"/>.</summary>
    public bool HasService(string ns, string name) => _buffers.Services.ContainsKey((ns, name));

    public Dictionary<string, KubernetesNamespace> Namespaces { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// The labels of a namespace. A namespace the snapshot does not hold still has the label Kubernetes puts on
    /// every namespace, <c>kubernetes.io/metadata.name</c>, so selectors on it work in file mode too.
    /// </summary>
    public IReadOnlyDictionary<string, string> NamespaceLabels(string ns)
    {
        if (Namespaces.TryGetValue(ns, out var found))
        {
            return found.Metadata.Labels.ContainsKey(MetadataNameLabel)
                ? found.Metadata.Labels
                : found.Metadata.Labels.SetItem(MetadataNameLabel, ns);
        }

        return ns.Length == 0 ? NoLabels : ImmutableDictionary<string, string>.Empty.Add(MetadataNameLabel, ns);
    }

    /// <summary>
    /// A condition whose message is a constant, shared by every object of one generation that has it (conditions are
    /// immutable): thousands of listeners and routes say "All references resolved", and one object serves them all.
    /// Thread-safe: every caller gets the one object the cache holds.
    /// </summary>
    public Condition Fixed(FixedCondition condition, long generation) =>
        _fixedConditions.GetOrAdd((condition, generation), static key => key.Condition.For(key.Generation));

    private readonly ConcurrentDictionary<(FixedCondition Condition, long Generation), Condition> _fixedConditions = new();

    /// <summary>An array for the status of each of <paramref name="count"/> routes: the first <paramref name="count"/> items are the routes'; it may be longer.</summary>
    public RouteAttacher.RouteStatusEntry[] RouteStatusEntries(int count)
    {
        if (_buffers.Statuses.Length < count)
        {
            _buffers.Statuses = new RouteAttacher.RouteStatusEntry[count];
        }

        return _buffers.Statuses;
    }

    /// <summary>
    /// Leaves a full compile's buffers, emptied, to the next one. Call it last: nothing may read <see cref="Routes"/>,
    /// the Services or the route status entries after it, and nothing the result holds refers to them.
    /// </summary>
    public void Release()
    {
        if (_keepBuffers)
        {
            _buffers.Clear();
            Volatile.Write(ref _spare, _buffers);
        }
    }

    /// <summary>
    /// A full compile's large collections, kept from one full compile to the next: in a cluster of 10,000 routes each is a few
    /// hundred KB, a large object that only a gen2 GC frees, and allocated anew in every compile they set off a full,
    /// blocking collection (65-135 ms, marking the whole snapshot) every few compiles.
    /// </summary>
    private sealed class Buffers
    {
        /// <summary>How many times what a compile used a collection's room may be before it is given back.</summary>
        private const int ShrinkAbove = 4;

        /// <summary>Room a collection keeps whatever a compile used: one this small or smaller costs nothing to keep.</summary>
        private const int KeepAtLeast = 1024;

        /// <summary>The room this compile asked for, for the Services and for the slices.</summary>
        private int _reserved;

        public Dictionary<(string Namespace, string Name), Service> Services { get; } = [];

        public Dictionary<(string Namespace, string Name), EndpointSlice[]> Slices { get; } = [];

        public List<TcpRoute> Routes { get; } = [];

        public RouteAttacher.RouteStatusEntry[] Statuses { get; set; } = [];

        /// <summary>The room the collections hold: Services, slices, routes, route statuses (for tests).</summary>
        internal (int Services, int Slices, int Routes, int Statuses) Room => (Services.Capacity, Slices.Capacity, Routes.Capacity, Statuses.Length);

        /// <summary>
        /// Makes room for the Services, and for the EndpointSlices, of a cluster of <paramref name="objects"/> objects, so
        /// the indexes are not grown (and copied) on the way: in a cluster, they are most of the objects, a Service and
        /// its slice about a third each; a guess too small only costs a resize.
        /// </summary>
        public void Reserve(int objects)
        {
            _reserved = objects / 3;
            Services.EnsureCapacity(_reserved);
            Slices.EnsureCapacity(_reserved);
        }

        /// <summary>
        /// Empties every collection, so nothing of the last snapshot stays reachable. Each keeps its room, unless that is
        /// more than <see cref="ShrinkAbove"/> times what this compile used (and more than <see cref="KeepAtLeast"/>): a
        /// cluster that shrank for good does not keep its largest compile's room for the life of the process.
        /// </summary>
        public void Clear()
        {
            var routes = Routes.Count;
            var indexed = Math.Max(_reserved, Math.Max(Services.Count, Slices.Count));
            Array.Clear(Statuses, 0, Math.Min(Statuses.Length, routes));
            Services.Clear();
            Slices.Clear();
            Routes.Clear();
            if (TooLarge(Services.Capacity, indexed))
            {
                Services.TrimExcess(indexed);
            }

            if (TooLarge(Slices.Capacity, indexed))
            {
                Slices.TrimExcess(indexed);
            }

            if (TooLarge(Routes.Capacity, routes))
            {
                Routes.Capacity = routes;
            }

            if (TooLarge(Statuses.Length, routes))
            {
                Statuses = [];
            }
        }

        private static bool TooLarge(int room, int used) => room > KeepAtLeast && room > ShrinkAbove * used;
    }

    /// <summary>The room of the collections the last compile left (for tests); zeros while a compile holds them.</summary>
    internal static (int Services, int Slices, int Routes, int Statuses) SpareRoom => Volatile.Read(ref _spare)?.Room ?? default;

    /// <summary>
    /// Runs <paramref name="body"/> over the ranges of [0, <paramref name="count"/>), each index in exactly one range:
    /// on several threads (at most <see cref="CompilerOptions.MaxDegreeOfParallelism"/>) when there are enough items to
    /// pay for it, else as one range on this thread. The body may only read what earlier stages settled, and write its
    /// own indexes of an array; <see cref="Note"/>, <see cref="Warn"/> and <see cref="Fixed"/> are thread-safe.
    /// </summary>
    public void ForRanges<TState>(int count, TState state, Action<TState, int, int> body)
    {
        var ranges = (count + RangeSize - 1) / RangeSize;
        if (ranges < 2 || Options.MaxDegreeOfParallelism == 1)
        {
            body(state, 0, count);
            return;
        }

        Parallel.For(0, ranges, new ParallelOptions { MaxDegreeOfParallelism = Options.MaxDegreeOfParallelism }, range =>
            body(state, range * RangeSize, Math.Min(count, (range + 1) * RangeSize)));
    }

    /// <summary>
    /// Runs <paramref name="actions"/>, on several threads when the options allow it and the snapshot is large enough to
    /// pay for it (as many routes as two of <see cref="ForRanges"/>' ranges), else one after the other on this thread.
    /// They may only read what earlier stages settled, and write apart.
    /// </summary>
    public void Concurrently(params Action[] actions)
    {
        if (Routes.Count < 2 * RangeSize || Options.MaxDegreeOfParallelism == 1)
        {
            foreach (var action in actions)
            {
                action();
            }

            return;
        }

        Parallel.Invoke(new ParallelOptions { MaxDegreeOfParallelism = Options.MaxDegreeOfParallelism }, actions);
    }

    /// <summary>
    /// How many items one thread takes at a time in <see cref="ForRanges"/>: enough that handing out a range costs little
    /// beside it, few enough that the threads finish together. Fewer than two ranges' worth runs on the calling thread.
    /// </summary>
    internal const int RangeSize = 256;

    /// <summary>Adds an informational diagnostic (thread-safe; a result's diagnostics are sorted, so the order they come in does not matter).</summary>
    public void Note(ResourceKey? subject, string message) => Add(new Diagnostic(DiagnosticSeverity.Info, subject, message));

    /// <summary>Adds a warning (thread-safe, as <see cref="Note"/>).</summary>
    public void Warn(ResourceKey? subject, string message) => Add(new Diagnostic(DiagnosticSeverity.Warning, subject, message));

    private void Add(Diagnostic diagnostic)
    {
        lock (_diagnostics)
        {
            _diagnostics.Add(diagnostic);
        }
    }

    public ImmutableArray<Diagnostic> SortedDiagnostics() => Sorted(_diagnostics);

    /// <summary>Diagnostics in a result's order: without an object first, then by object and message; duplicates once.</summary>
    public static ImmutableArray<Diagnostic> Sorted(IEnumerable<Diagnostic> diagnostics) =>
    [
        .. diagnostics
            .Distinct()
            .OrderBy(static d => d.Object.HasValue ? 1 : 0)
            .ThenBy(static d => d.Object ?? default)
            .ThenBy(static d => d.Message, StringComparer.Ordinal),
    ];

    private const string MetadataNameLabel = "kubernetes.io/metadata.name";
}
