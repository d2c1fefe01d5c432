using System.Collections.Immutable;
using System.Runtime.InteropServices;
using FsmGateway.Configuration;
using FsmGateway.Resources;
using FsmGateway.Status;

namespace FsmGateway.Routing.Compilation;

/// <summary>The snapshot indexed for the stages, plus the diagnostics they collect. Lives for one compilation.</summary>
internal sealed class CompilationContext
{
    private static readonly IReadOnlyDictionary<string, string> NoLabels = ImmutableDictionary<string, string>.Empty;
    private readonly List<Diagnostic> _diagnostics = [];
    private readonly Dictionary<(string Namespace, string Service), EndpointSlice[]> _slicesByService;

    public CompilationContext(ConfigSnapshot snapshot, CompilerOptions options, ListenerBindings bindings)
        : this(snapshot.Resources.Values, options, bindings)
    {
    }

    /// <summary>A context over <paramref name="resources"/>, which must be sorted by key and hold each key once (a snapshot's order).</summary>
    public CompilationContext(IEnumerable<Resource> resources, CompilerOptions options, ListenerBindings bindings)
    {
        Options = options;
        Bindings = bindings;

        // Services and EndpointSlices are gathered first and indexed once their number is known: dictionaries grown
        // from empty to 10,000 entries allocate about twice their final size on the way.
        List<Service>? services = null;
        List<EndpointSlice>? slices = null;
        foreach (var resource in resources)
        {
            switch (resource)
            {
                case GatewayClass gatewayClass: GatewayClasses.Add(gatewayClass); break;
                case Gateway gateway: Gateways.Add(gateway); break;
                case TcpRoute route: Routes.Add(route); break;
                case ReferenceGrant grant: ReferenceGrants.Add(grant); break;
                case Service service: (services ??= []).Add(service); break;
                case KubernetesNamespace ns: Namespaces[ns.Metadata.Name] = ns; break;
                case HealthCheckPolicy or BackendLbPolicy or BackendTrafficPolicy or ClientTrafficPolicy or RouteRuleFilterPolicy: Policies.Add(resource); break;
                case ListenerFilter filter: ListenerFilters.Add(filter); break;
                case FsmFilter filter: Filters[(filter.Metadata.Namespace, filter.Metadata.Name)] = filter; break;
                case ConcurrencyLimitConfig config: FilterConfigs[config.Key] = config; break;
                case IPRestrictionConfig config: FilterConfigs[config.Key] = config; break;
                case RateLimitPolicy policy: RateLimitPolicies.Add(policy); break;
                case EndpointSlice slice when slice.ServiceName is not null: (slices ??= []).Add(slice); break;
            }
        }

        Services = new(services?.Count ?? 0);
        if (services is not null)
        {
            foreach (var service in services)
            {
                Services[(service.Metadata.Namespace, service.Metadata.Name)] = service;
            }
        }

        _slicesByService = new(slices?.Count ?? 0);
        if (slices is not null)
        {
            foreach (var slice in slices)
            {
                // Most Services have one slice: an array of one, grown in the rare case of more (in the snapshot's order).
                ref var ofService = ref CollectionsMarshal.GetValueRefOrAddDefault(_slicesByService, (slice.Metadata.Namespace, slice.ServiceName!), out _);
                ofService = ofService is null ? [slice] : [.. ofService, slice];
            }
        }
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

    public Dictionary<(string Namespace, string Name), Service> Services { get; }

    public Dictionary<string, KubernetesNamespace> Namespaces { get; } = new(StringComparer.Ordinal);

    public EndpointSlice[] SlicesOf(string ns, string service) =>
        _slicesByService.TryGetValue((ns, service), out var slices) ? slices : [];

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
