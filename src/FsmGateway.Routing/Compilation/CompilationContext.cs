using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FsmGateway.Resources;
using FsmGateway.Status;

namespace FsmGateway.Routing.Compilation;

/// <summary>The snapshot indexed for the stages, plus the diagnostics they collect. Lives for one compilation.</summary>
internal sealed class CompilationContext
{
    private static readonly IReadOnlyDictionary<string, string> NoLabels = ImmutableDictionary<string, string>.Empty;
    private readonly List<Diagnostic> _diagnostics = [];
    private readonly Dictionary<(string Namespace, string Name), ServiceEntry> _services;

    /// <summary>A context over a snapshot's objects, read with the sorted dictionary's own enumerator.</summary>
    public CompilationContext(ImmutableSortedDictionary<ResourceKey, Resource> resources, CompilerOptions options, ListenerBindings bindings)
    {
        Options = options;
        Bindings = bindings;
        _services = new(ServicesCapacity(resources.Count));
        foreach (var (key, resource) in resources)
        {
            Add(key, resource);
        }
    }

    /// <summary>A context over <paramref name="resources"/>, which must be sorted by key and hold each key once (a snapshot's order).</summary>
    public CompilationContext(IEnumerable<Resource> resources, CompilerOptions options, ListenerBindings bindings)
    {
        Options = options;
        Bindings = bindings;
        _services = new(resources is IReadOnlyCollection<Resource> { Count: var count } ? ServicesCapacity(count) : 0);
        foreach (var resource in resources)
        {
            Add(resource.Key, resource);
        }
    }

    /// <summary>
    /// Room for the Services and their EndpointSlices of a cluster of <paramref name="objects"/> objects, so the index is
    /// not grown (and copied) on the way: in a cluster, they are most of the objects, a Service and its slice about a
    /// third each; a guess too small only costs a resize.
    /// </summary>
    private static int ServicesCapacity(int objects) => objects / 3;

    /// <summary>
    /// Files one object by its type; Services and EndpointSlices into one index by namespace and Service name (read
    /// from the key where it can be, not the object's metadata), which a backendRef reads once.
    /// </summary>
    private void Add(ResourceKey key, Resource resource)
    {
        switch (resource)
        {
            case EndpointSlice slice when slice.ServiceName is { } service:
                // Most Services have one slice: an array of one, grown in the rare case of more (in the snapshot's order).
                ref var entry = ref CollectionsMarshal.GetValueRefOrAddDefault(_services, (key.Namespace, service), out _);
                entry.Slices = entry.Slices is null ? [slice] : [.. entry.Slices, slice];
                break;
            case Service service: CollectionsMarshal.GetValueRefOrAddDefault(_services, (key.Namespace, key.Name), out _).Service = service; break;
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

    /// <summary>A Service and its EndpointSlices, either of which may be missing.</summary>
    private struct ServiceEntry
    {
        public Service? Service;
        public EndpointSlice[]? Slices;
    }

    public CompilerOptions Options { get; }

    public ListenerBindings Bindings { get; }

    /// <summary>What a provisioning controller found of each Gateway's data plane; null when nothing is provisioned.</summary>
    public ProvisionedDataPlanes? DataPlanes { get; init; }

    /// <summary>Every GatewayClass, sorted by key (the snapshot's order).</summary>
    public List<GatewayClass> GatewayClasses { get; } = [];

    public List<Gateway> Gateways { get; } = [];

    public List<TcpRoute> Routes { get; } = [];

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
        ref var entry = ref CollectionsMarshal.GetValueRefOrNullRef(_services, (ns, name));
        if (Unsafe.IsNullRef(ref entry) || entry.Service is null)
        {
            service = null;
            slices = [];
            return false;
        }

        service = entry.Service;
        slices = entry.Slices ?? [];
        return true;
    }

    /// <summary>Whether the snapshot has the Service <paramref name="ns"/>/<paramref name="name"/>.</summary>
    public bool HasService(string ns, string name) => TryGetService(ns, name, out _, out _);

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
    /// </summary>
    public Condition Fixed(FixedCondition condition, long generation)
    {
        if (!_fixedConditions.TryGetValue((condition, generation), out var made))
        {
            _fixedConditions[(condition, generation)] = made = condition.For(generation);
        }

        return made;
    }

    private readonly Dictionary<(FixedCondition, long), Condition> _fixedConditions = [];

    public void Note(ResourceKey? subject, string message) => _diagnostics.Add(new Diagnostic(DiagnosticSeverity.Info, subject, message));

    public void Warn(ResourceKey? subject, string message) => _diagnostics.Add(new Diagnostic(DiagnosticSeverity.Warning, subject, message));

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
