using System.Collections.Immutable;
using System.Net;
using System.Net.Sockets;
using FsmGateway.Resources;
using FsmGateway.Status;

namespace FsmGateway.Routing.Compilation;

/// <summary>
/// FSM's connection filters as FSM wires them (<c>processor/v2/gateway.go</c>, <c>filters.go</c>): each ListenerFilter
/// applies to the listeners of the Gateways (in its own namespace) whose port it names, sorted by priority then type;
/// <c>configRef</c> names the ConcurrencyLimit or IPRestriction holding the settings; a RouteRuleFilterPolicy's
/// <c>filterRefs</c> name Filters that do the same. Only the types FsmGateway can run (ConcurrencyLimit, IPRestriction,
/// with FSM's built-in behaviour) are honoured: other types, <c>definitionRef</c> (script-based FilterDefinitions) and
/// invalid configs make the object <c>Accepted=False</c>, reason <c>Invalid</c>, naming the field, and it is not applied.
/// Each object gets one <c>Accepted</c> condition in <c>status.conditions</c> with FSM's reasons, when it concerns a
/// Gateway of ours.
/// </summary>
internal sealed class FsmFilters
{
    private const string ConcurrencyLimitType = "ConcurrencyLimit";
    private const string IPRestrictionType = "IPRestriction";

    private readonly CompilationContext _context;
    private readonly List<GatewayState> _gateways;
    private readonly Dictionary<ResourceKey, ConfigState> _configs = [];
    private readonly Dictionary<ResourceKey, FilterState> _filters = [];
    private readonly List<ListenerFilterState> _listenerFilters = [];

    private FsmFilters(CompilationContext context, List<GatewayState> gateways)
    {
        _context = context;
        _gateways = gateways;
    }

    /// <summary>The keys of our Gateways, made only when a ListenerFilter asks (most clusters have none).</summary>
    private HashSet<ResourceKey> OurGateways => field ??= [.. _gateways.Select(static g => g.Key)];

    /// <summary>Validates every filter object and resolves every ListenerFilter's targets.</summary>
    public static FsmFilters Run(CompilationContext context, List<GatewayState> gateways)
    {
        var filters = new FsmFilters(context, gateways);
        foreach (var config in context.FilterConfigs.Values.OrderBy(static c => c.Key))
        {
            filters._configs[config.Key] = ValidateConfig(config);
        }

        foreach (var filter in context.Filters.Values.OrderBy(static f => f.Key))
        {
            var problems = new List<string>();
            var built = filters.Build(filter.Type, filter.DefinitionRef, filter.ConfigRef, filter.Metadata.Namespace, problems);
            filters._filters[filter.Key] = new FilterState(filter, problems, built);
        }

        foreach (var listenerFilter in context.ListenerFilters)
        {
            filters._listenerFilters.Add(filters.Resolve(listenerFilter));
        }

        return filters;
    }

    /// <summary>Whether any ListenerFilter exists (valid or not); without one, <see cref="ForListener"/> finds nothing.</summary>
    public bool HasListenerFilters => _listenerFilters.Count > 0;

    /// <summary>
    /// The valid ListenerFilters on a listener port of a Gateway, in run order: those of aspect <c>Listener</c>, then those
    /// of aspect <c>Route</c> (FSM runs them before the route's own filters).
    /// </summary>
    public (ImmutableArray<ConnectionFilter> Listener, ImmutableArray<ConnectionFilter> Route) ForListener(ResourceKey gateway, int port)
    {
        var matching = _listenerFilters
            .Where(s => s.Problems.Count == 0 && s.Built is not null && s.Found.Any(t => t.Gateway == gateway && t.Port == port))
            .Select(static s => (s.Filter.Aspect, Filter: s.Built! with { Source = s.Filter.Key, Filter = s.Filter.Key }))
            .ToList();
        return (Ordered(matching.Where(static m => m.Aspect != "Route").Select(static m => m.Filter)), Ordered(matching.Where(static m => m.Aspect == "Route").Select(static m => m.Filter)));
    }

    /// <summary>What a RouteRuleFilterPolicy's <c>filterRefs</c> cannot be honoured for, each naming its field.</summary>
    public IEnumerable<string> Problems(RouteRuleFilterPolicy policy)
    {
        for (var i = 0; i < policy.FilterRefs.Length; i++)
        {
            var reference = policy.FilterRefs[i];
            var key = new ResourceKey(ResourceKind.Filter, policy.Metadata.Namespace, reference.Name);
            if (!_filters.TryGetValue(key, out var filter))
            {
                yield return $"spec.filterRefs[{i}]: Filter {key.Namespace}/{key.Name} does not exist";
            }
            else if (filter.Problems.Count > 0)
            {
                yield return $"spec.filterRefs[{i}]: Filter {key.Namespace}/{key.Name} cannot be honoured ({string.Join("; ", filter.Problems)})";
            }
        }
    }

    /// <summary>The filters of a valid RouteRuleFilterPolicy, in run order (by <c>filterRefs[].priority</c>, then type, then name).</summary>
    public ImmutableArray<ConnectionFilter> ForPolicy(RouteRuleFilterPolicy policy) =>
        Ordered(policy.FilterRefs
            .Select(r => (Reference: r, State: _filters.GetValueOrDefault(new ResourceKey(ResourceKind.Filter, policy.Metadata.Namespace, r.Name))))
            .Where(static x => x.State?.Built is not null && x.State.Problems.Count == 0)
            .Select(x => x.State!.Built! with { Source = policy.Key, Filter = x.State.Filter.Key, Priority = x.Reference.Priority }));

    /// <summary>
    /// Writes <c>status.conditions</c> (one <c>Accepted</c>) of every ListenerFilter that names a Gateway of ours (or one
    /// that does not exist), of every Filter a RouteRuleFilterPolicy with status of ours refers to, and of every config
    /// object those use.
    /// </summary>
    public void WriteStatuses(ImmutableSortedDictionary<ResourceKey, ConditionsStatus>.Builder statuses, IReadOnlyDictionary<ResourceKey, PolicyStatus> policyStatuses)
    {
        var usedConfigs = new HashSet<ResourceKey>();
        foreach (var state in _listenerFilters)
        {
            var filter = state.Filter;
            if (state.Found.Count == 0 && state.NotFound.Count == 0 && !state.NamesOurs)
            {
                // Every target is a Gateway of another controller (or a kind we do not serve): FSM's to report.
                continue;
            }

            if (state.ConfigKey is { } configKey)
            {
                usedConfigs.Add(configKey);
            }

            var generation = filter.Metadata.Generation;
            Condition accepted;
            if (state.Problems.Count > 0)
            {
                accepted = Conditions.False(ConditionTypes.Accepted, ConditionReasons.Invalid, string.Join("; ", state.Problems), generation);
            }
            else if (state.Found.Count == 0)
            {
                accepted = Conditions.False(ConditionTypes.Accepted, ConditionReasons.TargetNotFound, string.Join("; ", state.NotFound), generation);
            }
            else
            {
                var message = state.NotFound.Count == 0 ? "Accepted" : $"Accepted; {string.Join("; ", state.NotFound)}";
                accepted = Conditions.True(ConditionTypes.Accepted, ConditionReasons.Accepted, message, generation);
            }

            statuses[filter.Key] = new ConditionsStatus(Conditions.Sorted(accepted));
        }

        var usedFilters = new HashSet<ResourceKey>();
        foreach (var policy in _context.Policies.OfType<RouteRuleFilterPolicy>())
        {
            if (policyStatuses.TryGetValue(policy.Key, out var status) && !status.Ancestors.IsEmpty)
            {
                usedFilters.UnionWith(policy.FilterRefs.Select(r => new ResourceKey(ResourceKind.Filter, policy.Metadata.Namespace, r.Name)));
            }
        }

        foreach (var key in usedFilters.Order())
        {
            if (!_filters.TryGetValue(key, out var state))
            {
                continue;
            }

            if (state.ConfigKey is { } configKey)
            {
                usedConfigs.Add(configKey);
            }

            statuses[key] = new ConditionsStatus(Conditions.Sorted(Verdict(state.Problems, state.Filter.Metadata.Generation)));
        }

        foreach (var key in usedConfigs.Order())
        {
            if (_configs.TryGetValue(key, out var config))
            {
                statuses[key] = new ConditionsStatus(Conditions.Sorted(Verdict(config.Problems, config.Config.Metadata.Generation)));
            }
        }
    }

    private static Condition Verdict(List<string> problems, long generation) => problems.Count == 0
        ? Conditions.True(ConditionTypes.Accepted, ConditionReasons.Accepted, "Accepted", generation)
        : Conditions.False(ConditionTypes.Accepted, ConditionReasons.Invalid, string.Join("; ", problems), generation);

    private ListenerFilterState Resolve(ListenerFilter filter)
    {
        var problems = new List<string>();
        if (filter.Aspect is not ("Listener" or "Route"))
        {
            problems.Add($"spec.aspect: '{filter.Aspect}' is not Listener or Route");
        }

        var built = Build(filter.Type, filter.DefinitionRef, filter.ConfigRef, filter.Metadata.Namespace, problems);
        var state = new ListenerFilterState(filter, problems, built)
        {
            ConfigKey = ConfigKey(filter.ConfigRef, filter.Metadata.Namespace),
        };
        for (var i = 0; i < filter.TargetRefs.Length; i++)
        {
            var target = filter.TargetRefs[i];
            var field = $"spec.targetRefs[{i}]";
            if (target.Group != GatewayApi.Group || target.Kind != "Gateway")
            {
                problems.Add($"{field}: {RouteAttacher.GroupKind(target.Group, target.Kind)} is not a supported target; only Gateway is");
                continue;
            }

            var key = new ResourceKey(ResourceKind.Gateway, filter.Metadata.Namespace, target.Name);
            var gateway = _context.Gateways.FirstOrDefault(g => g.Key == key);
            if (gateway is null)
            {
                state.NotFound.Add($"{field}: Gateway {key.Namespace}/{key.Name} does not exist");
                continue;
            }

            if (!OurGateways.Contains(key))
            {
                continue;
            }

            state.NamesOurs = true;
            if (gateway.Listeners.Any(l => l.Port == target.Port))
            {
                state.Found.Add((key, target.Port));
            }
            else
            {
                state.NotFound.Add($"{field}.port: Gateway {key.Namespace}/{key.Name} has no listener on port {target.Port}");
            }
        }

        return state;
    }

    /// <summary>The filter a type and configRef stand for, or null (with problems naming the fields) when it cannot be honoured.</summary>
    private ConnectionFilter? Build(string type, LocalObjectReference? definitionRef, LocalObjectReference? configRef, string ns, List<string> problems)
    {
        if (type is not (ConcurrencyLimitType or IPRestrictionType))
        {
            problems.Add($"spec.type: {type} is not supported; FsmGateway runs ConcurrencyLimit and IPRestriction (FSM's script-based filters need FSM's Pipy proxy)");
        }

        if (definitionRef is not null)
        {
            problems.Add($"spec.definitionRef: FilterDefinition {definitionRef.Name} cannot be honoured: script-based filters need FSM's Pipy proxy; FsmGateway runs ConcurrencyLimit and IPRestriction built in, without a definitionRef");
        }

        if (configRef is null)
        {
            if (type is ConcurrencyLimitType or IPRestrictionType)
            {
                problems.Add($"spec.configRef: is required: a {type} object holding the settings");
            }

            return null;
        }

        if (configRef.Group != PolicyApi.FsmExtensionGroup || configRef.Kind is not (ConcurrencyLimitType or IPRestrictionType))
        {
            problems.Add($"spec.configRef: {RouteAttacher.GroupKind(configRef.Group, configRef.Kind)} is not supported; use {PolicyApi.FsmExtensionGroup} ConcurrencyLimit or IPRestriction");
            return null;
        }

        if (type is (ConcurrencyLimitType or IPRestrictionType) && configRef.Kind != type)
        {
            problems.Add($"spec.configRef: kind {configRef.Kind} does not match spec.type {type}");
            return null;
        }

        var key = ConfigKey(configRef, ns)!.Value;
        if (!_configs.TryGetValue(key, out var config))
        {
            problems.Add($"spec.configRef: {configRef.Kind} {ns}/{configRef.Name} does not exist");
            return null;
        }

        if (config.Problems.Count > 0)
        {
            problems.Add($"spec.configRef: {configRef.Kind} {ns}/{configRef.Name} is invalid ({string.Join("; ", config.Problems)})");
            return null;
        }

        return problems.Count > 0 ? null : config.Filter;
    }

    private static ResourceKey? ConfigKey(LocalObjectReference? configRef, string ns) => configRef?.Kind switch
    {
        ConcurrencyLimitType => new ResourceKey(ResourceKind.ConcurrencyLimit, ns, configRef.Name),
        IPRestrictionType => new ResourceKey(ResourceKind.IPRestriction, ns, configRef.Name),
        _ => null,
    };

    private static ConfigState ValidateConfig(Resource config)
    {
        var problems = new List<string>();
        switch (config)
        {
            case ConcurrencyLimitConfig limit:
                return new ConfigState(config, problems, new ConnectionFilter(ConnectionFilterType.ConcurrencyLimit, default, default, config.Key, 0) { MaxConnections = limit.MaxConnections });
            case IPRestrictionConfig restriction:
                if (restriction.Allowed.IsEmpty && restriction.Forbidden.IsEmpty)
                {
                    problems.Add("spec: at least one of allowed and forbidden must be non-empty");
                }

                var allowed = Networks(restriction.Allowed, "spec.allowed", problems);
                var forbidden = Networks(restriction.Forbidden, "spec.forbidden", problems);
                return new ConfigState(config, problems, problems.Count > 0 ? null : new ConnectionFilter(ConnectionFilterType.IPRestriction, default, default, config.Key, 0)
                {
                    Allowed = allowed,
                    Forbidden = forbidden,
                });
            default:
                return new ConfigState(config, ["is not a filter config"], null);
        }
    }

    /// <summary>IPs and CIDRs, normalized: a bare address is a single host (<c>/32</c>, <c>/128</c>), host bits are cleared, duplicates dropped.</summary>
    private static EquatableArray<string> Networks(EquatableArray<string> entries, string field, List<string> problems)
    {
        var result = new List<string>();
        for (var i = 0; i < entries.Length; i++)
        {
            if (Normalize(entries[i]) is { } network)
            {
                if (!result.Contains(network, StringComparer.Ordinal))
                {
                    result.Add(network);
                }
            }
            else
            {
                problems.Add($"{field}[{i}]: '{entries[i]}' is not an IP address or CIDR (e.g. 10.0.0.0/8, 192.168.1.7, 2001:db8::/32)");
            }
        }

        return [.. result];
    }

    internal static string? Normalize(string entry)
    {
        var text = entry.Trim();
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var addressText = slash < 0 ? text : text[..slash];
        if (addressText.Contains('%', StringComparison.Ordinal) || !IPAddress.TryParse(addressText, out var address))
        {
            return null;
        }

        // IPAddress.TryParse accepts inet_aton forms ("10.1", hex "0x0a.0.0.1", octal "010.0.0.1" = 8.0.0.1); FSM's and
        // Go's parsers do not, and reading "10.0.0.010" as 10.0.0.8 would put the wrong host on the list.
        if (address.AddressFamily == AddressFamily.InterNetwork && !IsDottedDecimal(addressText))
        {
            return null;
        }

        var maxPrefix = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        var prefix = maxPrefix;
        if (slash >= 0)
        {
            var prefixText = text[(slash + 1)..];
            if (prefixText.Length is 0 or > 3 || !prefixText.All(char.IsAsciiDigit) || !int.TryParse(prefixText, System.Globalization.CultureInfo.InvariantCulture, out prefix) || prefix > maxPrefix)
            {
                return null;
            }
        }

        var bytes = address.GetAddressBytes();
        for (var bit = prefix; bit < bytes.Length * 8; bit++)
        {
            bytes[bit / 8] &= (byte)~(0x80 >> (bit % 8));
        }

        return $"{new IPAddress(bytes)}/{prefix}";
    }

    private static bool IsDottedDecimal(string text)
    {
        var parts = text.Split('.');
        return parts.Length == 4 && parts.All(static p => p.Length is >= 1 and <= 3 && p.All(char.IsAsciiDigit) && (p.Length == 1 || p[0] != '0'));
    }

    private static ImmutableArray<ConnectionFilter> Ordered(IEnumerable<ConnectionFilter> filters) =>
    [
        .. filters
            .OrderBy(static f => f.Priority)
            .ThenBy(static f => f.Type.ToString(), StringComparer.Ordinal)
            .ThenBy(static f => f.Filter)
            .ThenBy(static f => f.Config),
    ];

    private sealed record ConfigState(Resource Config, List<string> Problems, ConnectionFilter? Filter);

    private sealed record FilterState(FsmFilter Filter, List<string> Problems, ConnectionFilter? Built)
    {
        public ResourceKey? ConfigKey => FsmFilters.ConfigKey(Filter.ConfigRef, Filter.Metadata.Namespace);
    }

    private sealed class ListenerFilterState(ListenerFilter filter, List<string> problems, ConnectionFilter? built)
    {
        public ListenerFilter Filter { get; } = filter;

        public List<string> Problems { get; } = problems;

        public ConnectionFilter? Built { get; } = built is null ? null : built with { Priority = filter.Priority };

        public ResourceKey? ConfigKey { get; init; }

        /// <summary>Listeners (Gateway of ours, port) the filter applies to.</summary>
        public List<(ResourceKey Gateway, int Port)> Found { get; } = [];

        /// <summary>Targets that do not exist, as messages naming the field.</summary>
        public List<string> NotFound { get; } = [];

        /// <summary>Whether some target names a Gateway of ours.</summary>
        public bool NamesOurs { get; set; }
    }
}
