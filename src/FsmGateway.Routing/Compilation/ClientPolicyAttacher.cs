using System.Collections.Immutable;
using FsmGateway.Resources;
using FsmGateway.Status;

namespace FsmGateway.Routing.Compilation;

/// <summary>
/// Merges what reaches each listener into its <see cref="ClientPolicy"/>: FSM's ListenerFilters (and the Filters of the
/// RouteRuleFilterPolicy on the rule of the listener's route), FSM's first-generation RateLimitPolicy on the listener's
/// port, then our ClientTrafficPolicy on the Gateway and then on the listener (<c>sectionName</c>), field by field, the
/// more specific winning; where ours sets what an FSM policy sets (a bandwidth cap over RateLimitPolicy's bps) ours wins
/// and the FSM policy says so (<c>Overridden</c>). ClientTrafficPolicy and RouteRuleFilterPolicy are resolved, settled
/// and given <c>status.ancestors</c> by <see cref="PolicyAttacher"/>; RateLimitPolicy, which has only
/// <c>status.conditions</c>, is settled here (of two on one Gateway the older wins).
/// </summary>
internal sealed class ClientPolicyAttacher
{
    private readonly CompilationContext _context;
    private readonly PolicyAttacher _policies;
    private readonly FsmFilters _filters;
    private readonly List<RateLimitState> _rateLimits = [];
    private readonly Dictionary<ResourceKey, RateLimitState> _rateLimitWinners = [];

    private ClientPolicyAttacher(CompilationContext context, PolicyAttacher policies, FsmFilters filters)
    {
        _context = context;
        _policies = policies;
        _filters = filters;
    }

    public static ClientPolicyAttacher Run(CompilationContext context, List<GatewayState> gateways, PolicyAttacher policies, FsmFilters filters)
    {
        var attacher = new ClientPolicyAttacher(context, policies, filters);
        var ours = context.RateLimitPolicies.Count == 0 ? [] : gateways.Select(static g => g.Key).ToHashSet();
        foreach (var policy in context.RateLimitPolicies.OrderBy(static p => (Resource)p, Resource.OldestFirst))
        {
            var state = attacher.Resolve(policy, ours);
            if (state is null)
            {
                continue;
            }

            attacher._rateLimits.Add(state);
            if (state.Gateway is { } gateway && state.Problems.Count == 0 && !state.NotFound)
            {
                if (attacher._rateLimitWinners.TryGetValue(gateway, out var winner))
                {
                    state.ConflictsWith = winner.Policy.Key;
                }
                else
                {
                    attacher._rateLimitWinners[gateway] = state;
                }
            }
        }

        return attacher;
    }

    /// <summary>The merged client policy of a served listener whose connections go to <paramref name="route"/> (null: none).</summary>
    public ClientPolicy Effective(ListenerState listener, TcpRoute? route)
    {
        if (!_filters.HasListenerFilters && _rateLimitWinners.Count == 0 && !_policies.HasAny(ResourceKind.RouteRuleFilterPolicy) && !_policies.HasAny(ResourceKind.ClientTrafficPolicy))
        {
            // Nothing could apply: what the merge below would return, without its allocations (one call per listener).
            return ClientPolicy.Default;
        }

        var policy = ClientPolicy.Default;
        var sources = new List<ResourceKey>();
        var gateway = listener.Owner.Key;
        var port = listener.Listener.Port;

        var (listenerFilters, routeAspect) = _filters.ForListener(gateway, port);
        if (!listenerFilters.IsEmpty)
        {
            policy = policy with { ListenerFilters = listenerFilters };
        }

        sources.AddRange(listenerFilters.Concat(routeAspect).Select(static f => f.Source).Distinct());

        var routeFilters = routeAspect;
        if (route is not null && route.Rules.Length > 0 && route.Rules[0].Name is { } ruleName
            && _policies.Winner(ResourceKind.RouteRuleFilterPolicy, new PolicyTarget(TargetLevel.Rule, route.Metadata.Namespace, route.Metadata.Name, ruleName)) is RouteRuleFilterPolicy rrfp)
        {
            routeFilters = routeFilters.AddRange(_filters.ForPolicy(rrfp));
            sources.Add(rrfp.Key);
        }

        if (!routeFilters.IsEmpty)
        {
            policy = policy with { RouteFilters = routeFilters };
        }

        RateLimitState? rateLimit = null;
        if (_rateLimitWinners.GetValueOrDefault(gateway) is { } rl && rl.BpsFor(port) is { } bps)
        {
            var limit = new BandwidthLimit(bps, bps);
            policy = policy with { UploadBandwidth = limit, DownloadBandwidth = limit };
            sources.Add(rl.Policy.Key);
            rateLimit = rl;
        }

        var gw = listener.Owner.Gateway.Metadata;
        ProxyProtocolSpec? proxyProtocol = null;
        TimeSpan? inspectionTimeout = null;
        PolicyTarget[] levels =
        [
            new(TargetLevel.Gateway, gw.Namespace, gw.Name, null),
            new(TargetLevel.Listener, gw.Namespace, gw.Name, listener.Listener.Name),
        ];
        foreach (var level in levels)
        {
            if (_policies.Winner(ResourceKind.ClientTrafficPolicy, level) is not ClientTrafficPolicy ctp)
            {
                continue;
            }

            proxyProtocol = ctp.ProxyProtocol ?? proxyProtocol;
            inspectionTimeout = ctp.ConnectionInspectionTimeout ?? inspectionTimeout;
            policy = policy with
            {
                TcpKeepalive = ctp.TcpKeepalive is { } k ? new TcpKeepalive(k.Probes, k.IdleTime, k.Interval) : policy.TcpKeepalive,
                IdleTimeout = ctp.IdleTimeout ?? policy.IdleTimeout,
                HalfClosedTimeout = ctp.HalfClosedTimeout ?? policy.HalfClosedTimeout,
                MaxConnectionDuration = ctp.MaxConnectionDuration ?? policy.MaxConnectionDuration,
                ConnectionLimit = ctp.ConnectionLimit is { Value: { } max } limit ? new ConnectionLimit(max, limit.CloseDelay) : policy.ConnectionLimit,
                BufferLimit = ctp.BufferLimit is { } buffer ? (int)buffer : policy.BufferLimit,
                UploadBandwidth = ctp.UploadBandwidth is { } up ? new BandwidthLimit(up.BytesPerSecond, up.Burst ?? up.BytesPerSecond) : policy.UploadBandwidth,
                DownloadBandwidth = ctp.DownloadBandwidth is { } down ? new BandwidthLimit(down.BytesPerSecond, down.Burst ?? down.BytesPerSecond) : policy.DownloadBandwidth,
            };
            if (rateLimit is not null && (ctp.UploadBandwidth is not null || ctp.DownloadBandwidth is not null))
            {
                var directions = ctp.UploadBandwidth is not null && ctp.DownloadBandwidth is not null ? "both directions"
                    : ctp.UploadBandwidth is not null ? "the upload direction" : "the download direction";
                rateLimit.Overrides.Add($"{ctp.Key} sets spec.bandwidthLimit for {directions} on listener '{listener.Listener.Name}' (port {port}) of Gateway {gw.Namespace}/{gw.Name}, and takes precedence");
            }

            sources.Remove(ctp.Key);
            sources.Add(ctp.Key);
        }

        if (proxyProtocol is not null)
        {
            policy = policy with
            {
                ProxyProtocol = new ClientProxyProtocol(proxyProtocol.Optional) { InspectionTimeout = inspectionTimeout ?? ClientProxyProtocol.DefaultInspectionTimeout },
            };
        }
        else if (inspectionTimeout is not null)
        {
            _context.Note(gateway, $"{listener.Describe}: timeout.tcp.connectionInspectionTimeout is set but PROXY protocol is not (spec.proxyProtocol), so it has no effect");
        }

        return sources.Count == 0 ? ClientPolicy.Default : policy with { Sources = [.. sources] };
    }

    /// <summary>Writes each RateLimitPolicy's <c>status.conditions</c>; call after every <see cref="Effective"/>.</summary>
    public void WriteStatuses(ImmutableSortedDictionary<ResourceKey, ConditionsStatus>.Builder statuses)
    {
        foreach (var state in _rateLimits)
        {
            var generation = state.Policy.Metadata.Generation;
            Condition accepted;
            Condition? overridden = null;
            if (state.Problems.Count > 0)
            {
                accepted = Conditions.False(ConditionTypes.Accepted, ConditionReasons.Invalid, string.Join("; ", state.Problems), generation);
            }
            else if (state.NotFound)
            {
                accepted = Conditions.False(ConditionTypes.Accepted, ConditionReasons.TargetNotFound, $"spec.targetRef: Gateway {state.Gateway!.Value.Namespace}/{state.Gateway.Value.Name} does not exist", generation);
            }
            else if (state.ConflictsWith is { } winner)
            {
                accepted = Conditions.False(ConditionTypes.Accepted, ConditionReasons.Conflicted, $"spec.targetRef: Gateway {state.Gateway!.Value.Namespace}/{state.Gateway.Value.Name} is already the target of the older {winner}, which wins", generation);
            }
            else
            {
                accepted = Conditions.True(ConditionTypes.Accepted, ConditionReasons.Accepted, "Accepted; bps is a per-connection cap in each direction", generation);
                if (state.Overrides.Count > 0)
                {
                    overridden = Conditions.True(ConditionTypes.Overridden, ConditionReasons.Overridden, string.Join("; ", state.Overrides.Order(StringComparer.Ordinal)), generation);
                }
            }

            statuses[state.Policy.Key] = new ConditionsStatus(overridden is null ? Conditions.Sorted(accepted) : Conditions.Sorted(accepted, overridden));
        }
    }

    /// <summary>A RateLimitPolicy's target and problems, or null when it is not ours to report (it targets a route, or a Gateway of another controller).</summary>
    private RateLimitState? Resolve(RateLimitPolicy policy, HashSet<ResourceKey> ours)
    {
        var target = policy.TargetRef;
        if (target.Group != GatewayApi.Group || target.Kind != "Gateway")
        {
            _context.Note(policy.Key, $"targets {RouteAttacher.GroupKind(target.Group, target.Kind)} {target.Name}: FsmGateway honours only RateLimitPolicy's bps on a Gateway, so it writes no status");
            return null;
        }

        var ns = target.Namespace ?? policy.Metadata.Namespace;
        var key = new ResourceKey(ResourceKind.Gateway, ns, target.Name);
        var state = new RateLimitState(policy) { Gateway = key };
        var gateway = _context.Gateways.FirstOrDefault(g => g.Key == key);
        if (gateway is null)
        {
            state.NotFound = true;
            return state;
        }

        if (!ours.Contains(key))
        {
            _context.Note(policy.Key, $"targets Gateway {ns}/{target.Name}, which is not ours (another GatewayClass or not accepted), so it writes no status");
            return null;
        }

        if (ns != policy.Metadata.Namespace)
        {
            state.Problems.Add($"spec.targetRef.namespace: Gateway {ns}/{target.Name} is in another namespace; a RateLimitPolicy must be in its Gateway's namespace");
        }

        state.Problems.AddRange(policy.HttpFields.Select(static f => $"{f}: is HTTP-only and must be absent for a Gateway target"));
        if (policy.Ports.IsEmpty)
        {
            state.Problems.Add("spec.ports: must list at least one listener port for a Gateway target");
        }

        for (var i = 0; i < policy.Ports.Length; i++)
        {
            var entry = policy.Ports[i];
            if (!gateway.Listeners.Any(l => l.Port == entry.Port))
            {
                state.Problems.Add($"spec.ports[{i}].port: Gateway {ns}/{target.Name} has no listener on port {entry.Port}");
            }

            if (entry.Bps is null && policy.Bps is null)
            {
                state.Problems.Add($"spec.ports[{i}].bps: is required when spec.bps is not set");
            }
        }

        return state;
    }

    private sealed class RateLimitState(RateLimitPolicy policy)
    {
        public RateLimitPolicy Policy { get; } = policy;

        public ResourceKey? Gateway { get; init; }

        public List<string> Problems { get; } = [];

        public bool NotFound { get; set; }

        public ResourceKey? ConflictsWith { get; set; }

        public SortedSet<string> Overrides { get; } = new(StringComparer.Ordinal);

        public long? BpsFor(int port)
        {
            foreach (var entry in Policy.Ports)
            {
                if (entry.Port == port)
                {
                    return entry.Bps ?? Policy.Bps;
                }
            }

            return null;
        }
    }
}
