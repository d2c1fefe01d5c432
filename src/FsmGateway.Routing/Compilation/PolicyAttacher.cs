using System.Collections.Immutable;
using System.Text;
using FsmGateway.Resources;
using FsmGateway.Status;

namespace FsmGateway.Routing.Compilation;

/// <summary>
/// GEP-713 policy attachment for backend policies: validates each policy, resolves its targetRefs (a Service for FSM's
/// policies, cross-namespace only with a ReferenceGrant; a Gateway, listener, TCPRoute or rule for ours), settles
/// conflicts (of two policies of one kind on one target the older wins, then namespace/name), merges what reaches each
/// backend into its <see cref="BackendPolicy"/> (rule over route over listener over Gateway over FSM's policies, field
/// by field) and writes each policy's <c>status.ancestors</c>. Issue 10's client policies attach the same way, to
/// listeners instead of backends.
/// </summary>
internal sealed class PolicyAttacher
{
    private readonly CompilationContext _context;
    private readonly List<PolicyState> _states = [];
    private readonly Dictionary<(ResourceKind Kind, PolicyTarget Target), PolicyState> _winners = [];
    private readonly Dictionary<ResourceKey, HashSet<ParentReference>> _routeGateways = [];
    private readonly Dictionary<(string Namespace, string Name), HashSet<ParentReference>> _serviceGateways = [];
    private readonly HashSet<ResourceKey> _ourGateways = [];
    private readonly HashSet<ResourceKind> _winnerKinds = [];
    private readonly FsmFilters? _filters;

    private PolicyAttacher(CompilationContext context, FsmFilters? filters)
    {
        _context = context;
        _filters = filters;
    }

    /// <summary>Validates, resolves and settles every policy; call after routes are attached.</summary>
    /// <param name="context">The compilation.</param>
    /// <param name="gateways">Our Gateways.</param>
    /// <param name="filters">FSM's filters, which RouteRuleFilterPolicies refer to.</param>
    public static PolicyAttacher Run(CompilationContext context, List<GatewayState> gateways, FsmFilters? filters = null)
    {
        var attacher = new PolicyAttacher(context, filters);
        if (context.Policies.Count > 0)
        {
            // Only policy statuses read the reach; a cluster without policies need not index every route.
            attacher.IndexReach(gateways);
        }

        foreach (var policy in context.Policies.OrderBy(static p => p.Kind).ThenBy(static p => p, Resource.OldestFirst))
        {
            attacher._states.Add(attacher.Resolve(policy));
        }

        return attacher;
    }

    /// <summary>The merged policy for one backend of the route a listener serves.</summary>
    public BackendPolicy Effective(ListenerState listener, TcpRoute route, RouteBackend backend)
    {
        if (_winners.Count == 0)
        {
            return BackendPolicy.Default;
        }

        var policy = BackendPolicy.Default;
        var sources = new List<ResourceKey>();
        var gatewayRef = GatewayRef(listener.Owner.Gateway.Metadata.Namespace, listener.Owner.Gateway.Metadata.Name, null);
        var service = new PolicyTarget(TargetLevel.Service, backend.Namespace, backend.Name, null);
        PolicyState? lbState = null;
        PolicyState? healthState = null;
        var healthIsPassive = false;

        // A backendRef of another kind, or one its Service's namespace does not permit, does not reach that Service, nor
        // the policies on it (a Gateway's data plane is not sent them: GatewayClosure).
        var reachesService = backend.Problem?.Reason is not (ConditionReasons.InvalidKind or ConditionReasons.RefNotPermitted);
        if (reachesService && _winners.GetValueOrDefault((ResourceKind.BackendLbPolicy, service)) is { } blbState)
        {
            var blb = (BackendLbPolicy)blbState.Policy;
            policy = policy with { LoadBalancer = blb.Algorithm == "LeastLoad" ? LoadBalancerAlgorithm.LeastRequest : LoadBalancerAlgorithm.RoundRobin };
            sources.Add(blb.Key);
            lbState = blbState;
        }

        if (reachesService && _winners.GetValueOrDefault((ResourceKind.HealthCheckPolicy, service)) is { } hcpState
            && CheckFor((HealthCheckPolicy)hcpState.Policy, backend.Port) is { } check)
        {
            policy = ApplyFsmCheck(policy, check);
            healthIsPassive = check.Interval == TimeSpan.Zero;
            sources.Add(hcpState.Policy.Key);
            healthState = hcpState;
        }

        var gw = listener.Owner.Gateway.Metadata;
        var ruleName = route.Rules.Length > 0 ? route.Rules[0].Name : null;
        PolicyTarget?[] levels =
        [
            new PolicyTarget(TargetLevel.Gateway, gw.Namespace, gw.Name, null),
            new PolicyTarget(TargetLevel.Listener, gw.Namespace, gw.Name, listener.Listener.Name),
            new PolicyTarget(TargetLevel.Route, route.Metadata.Namespace, route.Metadata.Name, null),
            ruleName is null ? null : new PolicyTarget(TargetLevel.Rule, route.Metadata.Namespace, route.Metadata.Name, ruleName),
        ];
        foreach (var level in levels)
        {
            if (level is not { } target || _winners.GetValueOrDefault((ResourceKind.BackendTrafficPolicy, target)) is not { } btpState)
            {
                continue;
            }

            var btp = (BackendTrafficPolicy)btpState.Policy;
            policy = ApplyBackendTraffic(policy, btp);
            sources.Remove(btp.Key);
            sources.Add(btp.Key);
            var subject = $"backend Service {backend.Namespace}/{backend.Name} port {backend.Port} of {route.Key} on {gatewayRef.Namespace}/{gatewayRef.Name}";
            if (lbState is not null && btp.LoadBalancer is not null)
            {
                lbState.Overridden(gatewayRef, $"{btp.Key} sets spec.loadBalancer for {subject}, and takes precedence");
            }

            if (healthState is not null && (healthIsPassive ? btp.PassiveHealthCheck : (object?)btp.ActiveHealthCheck) is not null)
            {
                healthState.Overridden(gatewayRef, $"{btp.Key} sets spec.healthCheck.{(healthIsPassive ? "passive" : "active")} for {subject}, and takes precedence");
            }
        }

        return sources.Count == 0 ? policy : policy with { Sources = [.. sources] };
    }

    /// <summary>Whether any policy won a target; without one, every backend's policy is <see cref="BackendPolicy.Default"/>.</summary>
    public bool HasWinners => _winners.Count > 0;

    /// <summary>Whether any policy of <paramref name="kind"/> won a target.</summary>
    public bool HasAny(ResourceKind kind) => _winnerKinds.Contains(kind);

    /// <summary>The policy of <paramref name="kind"/> that won <paramref name="target"/> (valid, and the oldest there), or null.</summary>
    public Resource? Winner(ResourceKind kind, PolicyTarget target) => _winners.GetValueOrDefault((kind, target))?.Policy;

    /// <summary>Writes every policy's status; call after every <see cref="Effective"/>.</summary>
    public void WriteStatuses(ImmutableSortedDictionary<ResourceKey, PolicyStatus>.Builder statuses)
    {
        foreach (var state in _states)
        {
            var policy = state.Policy;
            var generation = policy.Metadata.Generation;
            var entries = new Dictionary<ParentReference, EquatableArray<Condition>>();
            if (state.Problems.Count > 0)
            {
                var invalid = Conditions.False(ConditionTypes.Accepted, ConditionReasons.Invalid, string.Join("; ", state.Problems), generation);
                var refs = state.Targets.SelectMany(t => Reach(t.Target)).Concat(state.NotFound.Select(static n => n.Ref)).ToList();
                if (refs.Count == 0)
                {
                    refs.AddRange(state.Refs);
                }

                foreach (var ancestor in refs)
                {
                    entries.TryAdd(ancestor, Conditions.Sorted(invalid));
                }
            }
            else
            {
                var won = new HashSet<ParentReference>();
                var lost = new Dictionary<ParentReference, string>();
                foreach (var (index, target) in state.Targets)
                {
                    var winner = _winners[(policy.Kind, target)];
                    foreach (var ancestor in Reach(target))
                    {
                        if (winner == state)
                        {
                            won.Add(ancestor);
                        }
                        else
                        {
                            lost.TryAdd(ancestor, $"spec.targetRefs[{index}]: {Describe(target)} is already the target of the older {winner.Policy.Key}, which wins");
                        }
                    }
                }

                foreach (var ancestor in won)
                {
                    var accepted = Conditions.True(ConditionTypes.Accepted, ConditionReasons.Accepted, AcceptedMessage(policy), generation);
                    entries[ancestor] = state.Overrides.TryGetValue(ancestor, out var overrides)
                        ? Conditions.Sorted(accepted, Conditions.True(ConditionTypes.Overridden, ConditionReasons.Overridden, string.Join("; ", overrides.Order(StringComparer.Ordinal)), generation))
                        : Conditions.Sorted(accepted);
                }

                foreach (var (ancestor, message) in lost)
                {
                    entries.TryAdd(ancestor, Conditions.Sorted(Conditions.False(ConditionTypes.Accepted, ConditionReasons.Conflicted, message, generation)));
                }

                foreach (var (_, ancestor, message) in state.NotFound)
                {
                    entries.TryAdd(ancestor, Conditions.Sorted(Conditions.False(ConditionTypes.Accepted, ConditionReasons.TargetNotFound, message, generation)));
                }

                if (entries.Count == 0)
                {
                    _context.Note(policy.Key, "reaches no Gateway of ours (no route attached to one uses its targets), so its status.ancestors has no entry of ours");
                }
            }

            var sorted = entries.OrderBy(static e => e.Key, AncestorOrder).ToList();
            if (sorted.Count > PolicyStatus.MaxAncestors)
            {
                _context.Warn(policy.Key, $"reaches {sorted.Count} ancestors; status.ancestors holds at most {PolicyStatus.MaxAncestors}, so the first {PolicyStatus.MaxAncestors} (by kind, namespace and name) are written");
            }

            statuses[policy.Key] = new PolicyStatus(
            [
                .. sorted.Take(PolicyStatus.MaxAncestors).Select(e => new PolicyAncestorStatus(e.Key, _context.Options.ControllerName, e.Value)),
            ]);
        }
    }

    private PolicyState Resolve(Resource policy)
    {
        var state = new PolicyState(policy, PolicyValidator.Problems(policy));
        if (policy is RouteRuleFilterPolicy rrfp && _filters is not null)
        {
            state.Problems.AddRange(_filters.Problems(rrfp));
        }

        var targets = policy switch
        {
            HealthCheckPolicy p => p.TargetRefs,
            BackendLbPolicy p => p.TargetRefs,
            BackendTrafficPolicy p => p.TargetRefs,
            ClientTrafficPolicy p => p.TargetRefs,
            RouteRuleFilterPolicy p => p.TargetRefs,
            _ => [],
        };
        for (var i = 0; i < targets.Length; i++)
        {
            var reference = targets[i];
            var ns = reference.Namespace ?? policy.Metadata.Namespace;
            var asRef = new ParentReference(reference.Group, reference.Kind, ns, reference.Name, reference.SectionName, null);
            state.Refs.Add(asRef);
            var (target, problem) = ResolveTarget(policy, reference, ns, i);
            if (target is { } resolved)
            {
                if (!state.Targets.Any(t => t.Target == resolved))
                {
                    state.Targets.Add((i, resolved));
                }
            }
            else if (problem is not null)
            {
                state.NotFound.Add((i, asRef, problem));
            }
        }

        if (state.Problems.Count == 0)
        {
            foreach (var (_, target) in state.Targets)
            {
                _winners.TryAdd((policy.Kind, target), state);
                _winnerKinds.Add(policy.Kind);
            }
        }

        return state;
    }

    private (PolicyTarget? Target, string? Problem) ResolveTarget(Resource policy, PolicyTargetReference reference, string ns, int index)
    {
        var field = $"spec.targetRefs[{index}]";
        switch (reference.Group, reference.Kind)
        {
            case (GatewayApi.CoreGroup, "Service") when policy is HealthCheckPolicy or BackendLbPolicy:
                if (ns != policy.Metadata.Namespace
                    && !ReferenceGrants.Permit(_context, PolicyApi.FsmGroup, ResourceKey.KindName(policy.Kind), policy.Metadata.Namespace, ns, reference.Name))
                {
                    return (null, $"{field}: Service {ns}/{reference.Name} is in another namespace and no ReferenceGrant in '{ns}' allows {PolicyApi.FsmGroup} {ResourceKey.KindName(policy.Kind)} objects from '{policy.Metadata.Namespace}' to refer to it");
                }

                return _context.HasService(ns, reference.Name)
                    ? (new PolicyTarget(TargetLevel.Service, ns, reference.Name, null), null)
                    : (null, $"{field}: Service {ns}/{reference.Name} does not exist");

            case (GatewayApi.Group, "Gateway") when policy is BackendTrafficPolicy or ClientTrafficPolicy:
                var gateway = _context.Gateways.FirstOrDefault(g => g.Metadata.Namespace == ns && g.Metadata.Name == reference.Name);
                if (gateway is null)
                {
                    return (null, $"{field}: Gateway {ns}/{reference.Name} does not exist");
                }

                if (reference.SectionName is not { } listenerName)
                {
                    return (new PolicyTarget(TargetLevel.Gateway, ns, reference.Name, null), null);
                }

                return gateway.Listeners.Any(l => l.Name == listenerName)
                    ? (new PolicyTarget(TargetLevel.Listener, ns, reference.Name, listenerName), null)
                    : (null, $"{field}.sectionName: Gateway {ns}/{reference.Name} has no listener named '{listenerName}'");

            case (GatewayApi.Group, "TCPRoute") when policy is BackendTrafficPolicy or RouteRuleFilterPolicy:
                var route = _context.Routes.FirstOrDefault(r => r.Metadata.Namespace == ns && r.Metadata.Name == reference.Name);
                if (route is null)
                {
                    return (null, $"{field}: TCPRoute {ns}/{reference.Name} does not exist");
                }

                if (reference.SectionName is not { } ruleName)
                {
                    return (new PolicyTarget(TargetLevel.Route, ns, reference.Name, null), null);
                }

                return route.Rules.Any(r => r.Name == ruleName)
                    ? (new PolicyTarget(TargetLevel.Rule, ns, reference.Name, ruleName), null)
                    : (null, $"{field}.{(policy is RouteRuleFilterPolicy ? "rule" : "sectionName")}: TCPRoute {ns}/{reference.Name} has no rule named '{ruleName}' (spec.rules[].name)");

            default:
                // An unsupported group/kind: the validator has made the policy Invalid.
                return (null, null);
        }
    }

    /// <summary>Which Gateways of ours reach a Service (through an attached route's backendRef) or a route (attached to one).</summary>
    private void IndexReach(List<GatewayState> gateways)
    {
        foreach (var gateway in gateways)
        {
            _ourGateways.Add(gateway.Key);
            var gatewayRef = GatewayRef(gateway.Key.Namespace, gateway.Key.Name, null);
            foreach (var (route, resolved) in gateway.Listeners.SelectMany(static l => l.Attached))
            {
                Add(_routeGateways, route.Key, gatewayRef);
                foreach (var backend in resolved.Backends.Where(static b => b.Problem is null))
                {
                    Add(_serviceGateways, (backend.Namespace, backend.Name), gatewayRef);
                }
            }
        }

        static void Add<TKey>(Dictionary<TKey, HashSet<ParentReference>> map, TKey key, ParentReference value)
            where TKey : notnull
        {
            if (!map.TryGetValue(key, out var set))
            {
                map[key] = set = [];
            }

            set.Add(value);
        }
    }

    private IEnumerable<ParentReference> Reach(PolicyTarget target) => target.Level switch
    {
        TargetLevel.Service => _serviceGateways.GetValueOrDefault((target.Namespace, target.Name)) ?? [],
        TargetLevel.Gateway or TargetLevel.Listener => _ourGateways.Contains(new ResourceKey(ResourceKind.Gateway, target.Namespace, target.Name))
            ? [GatewayRef(target.Namespace, target.Name, target.Section)]
            : [],
        _ => _routeGateways.GetValueOrDefault(new ResourceKey(ResourceKind.TcpRoute, target.Namespace, target.Name)) ?? [],
    };

    private static FsmHealthCheck? CheckFor(HealthCheckPolicy policy, int? port)
    {
        foreach (var entry in policy.Ports)
        {
            if (entry.Port == port)
            {
                return entry.HealthCheck ?? policy.HealthCheck;
            }
        }

        return policy.HealthCheck;
    }

    /// <summary>FSM's check: with an interval, active probes (<c>maxFails</c> failures mark down, one success up, FSM's 5s probe timeout capped at the interval); with interval 0s, passive only (<c>maxFails</c> failed connects eject for <c>failTimeout</c>).</summary>
    private static BackendPolicy ApplyFsmCheck(BackendPolicy policy, FsmHealthCheck check)
    {
        if (check.Interval == TimeSpan.Zero)
        {
            return policy with
            {
                PassiveHealthCheck = new PassiveHealthCheck(check.MaxFails, PassiveHealthCheck.Default.Interval, check.FailTimeout ?? FsmFailTimeout, 100),
            };
        }

        return policy with
        {
            ActiveHealthCheck = new ActiveHealthCheck(
                check.Path is null ? HealthProbeProtocol.Tcp : HealthProbeProtocol.Http,
                check.Interval,
                check.Interval < FsmProbeTimeout ? check.Interval : FsmProbeTimeout,
                check.MaxFails,
                1)
            {
                HttpPath = check.Path,
                HttpMatches = [.. check.Matches.Select(static m => new HttpProbeMatch(m.StatusCodes, m.Body, m.Headers))],
            },
        };
    }

    private static BackendPolicy ApplyBackendTraffic(BackendPolicy policy, BackendTrafficPolicy btp)
    {
        if (btp.LoadBalancer is { } lb)
        {
            policy = policy with
            {
                LoadBalancer = lb.Type switch
                {
                    "LeastRequest" => LoadBalancerAlgorithm.LeastRequest,
                    "Random" => LoadBalancerAlgorithm.Random,
                    "ConsistentHash" => LoadBalancerAlgorithm.ConsistentHashSourceIP,
                    _ => LoadBalancerAlgorithm.RoundRobin,
                },
                ConsistentHashTableSize = lb.Type == "ConsistentHash" ? (int)(lb.TableSize ?? BackendPolicy.DefaultTableSize) : BackendPolicy.DefaultTableSize,
            };
        }

        if (btp.ActiveHealthCheck is { } active)
        {
            var http = active.Type == "HTTP";
            policy = policy with
            {
                ActiveHealthCheck = new ActiveHealthCheck(
                    http ? HealthProbeProtocol.Http : HealthProbeProtocol.Tcp,
                    active.Interval ?? ActiveDefaults.Interval,
                    active.Timeout ?? ActiveDefaults.Timeout,
                    active.UnhealthyThreshold ?? ActiveDefaults.UnhealthyThreshold,
                    active.HealthyThreshold ?? ActiveDefaults.HealthyThreshold)
                {
                    HttpPath = http ? active.HttpPath : null,
                    HttpMatches = http && !active.ExpectedStatuses.IsEmpty ? [new HttpProbeMatch(active.ExpectedStatuses, null, [])] : [],
                    TcpSend = http ? [] : Bytes(active.TcpSend),
                    TcpReceive = http ? [] : Bytes(active.TcpReceive),
                },
            };
        }

        if (btp.PassiveHealthCheck is { } passive)
        {
            var defaults = PassiveHealthCheck.Default;
            policy = policy with
            {
                PassiveHealthCheck = new PassiveHealthCheck(
                    passive.ConsecutiveLocalOriginFailures ?? defaults.ConsecutiveFailures,
                    passive.Interval ?? defaults.Interval,
                    passive.BaseEjectionTime ?? defaults.BaseEjectionTime,
                    passive.MaxEjectionPercent ?? defaults.MaxEjectionPercent),
            };
        }

        return policy with
        {
            PanicThresholdPercent = btp.PanicThreshold ?? policy.PanicThresholdPercent,
            MaxConnections = btp.MaxConnections ?? policy.MaxConnections,
            MaxConnectionsPerEndpoint = btp.MaxConnectionsPerEndpoint ?? policy.MaxConnectionsPerEndpoint,
            ProxyProtocol = btp.ProxyProtocolVersion switch
            {
                "V1" => ProxyProtocolVersion.V1,
                "V2" => ProxyProtocolVersion.V2,
                _ => policy.ProxyProtocol,
            },
            TcpKeepalive = btp.TcpKeepalive is { } k ? new TcpKeepalive(k.Probes, k.IdleTime, k.Interval) : policy.TcpKeepalive,
            ConnectTimeout = btp.ConnectTimeout ?? policy.ConnectTimeout,
        };
    }

    private static EquatableArray<byte> Bytes(HealthCheckPayload? payload) => payload switch
    {
        null => [],
        { Type: "Text", Text: { } text } => [.. Encoding.UTF8.GetBytes(text)],
        { Binary: { } binary } => binary,
        _ => [],
    };

    private static string AcceptedMessage(Resource policy) => policy switch
    {
        BackendLbPolicy { HasSessionPersistence: true } => "Accepted; spec.sessionPersistence is HTTP-only and ignored for TCP",
        ClientTrafficPolicy { HasMaxAcceptPerSocketEvent: true } => "Accepted; spec.connection.maxAcceptPerSocketEvent has no equivalent in FsmGateway's accept loop and is ignored",
        _ => "Accepted",
    };

    private static string Describe(PolicyTarget target) => target.Level switch
    {
        TargetLevel.Service => $"Service {target.Namespace}/{target.Name}",
        TargetLevel.Gateway => $"Gateway {target.Namespace}/{target.Name}",
        TargetLevel.Listener => $"listener '{target.Section}' of Gateway {target.Namespace}/{target.Name}",
        TargetLevel.Route => $"TCPRoute {target.Namespace}/{target.Name}",
        _ => $"rule '{target.Section}' of TCPRoute {target.Namespace}/{target.Name}",
    };

    private static ParentReference GatewayRef(string ns, string name, string? section) => new(GatewayApi.Group, "Gateway", ns, name, section, null);

    private static readonly TimeSpan FsmFailTimeout = TimeSpan.FromSeconds(5);

    private static readonly TimeSpan FsmProbeTimeout = TimeSpan.FromSeconds(5);

    private static readonly IComparer<ParentReference> AncestorOrder = Comparer<ParentReference>.Create(static (a, b) =>
    {
        var c = string.CompareOrdinal(a.Group, b.Group);
        c = c != 0 ? c : string.CompareOrdinal(a.Kind, b.Kind);
        c = c != 0 ? c : string.CompareOrdinal(a.Namespace, b.Namespace);
        c = c != 0 ? c : string.CompareOrdinal(a.Name, b.Name);
        return c != 0 ? c : string.CompareOrdinal(a.SectionName, b.SectionName);
    });

    /// <summary>What one policy resolved to, and what happened to it.</summary>
    private sealed class PolicyState(Resource policy, List<string> problems)
    {
        public Resource Policy { get; } = policy;

        /// <summary>Fields that cannot be honoured (<c>Invalid</c>).</summary>
        public List<string> Problems { get; } = problems;

        /// <summary>Every targetRef as an ancestorRef (namespace filled in).</summary>
        public List<ParentReference> Refs { get; } = [];

        public List<(int Index, PolicyTarget Target)> Targets { get; } = [];

        public List<(int Index, ParentReference Ref, string Message)> NotFound { get; } = [];

        public Dictionary<ParentReference, SortedSet<string>> Overrides { get; } = [];

        public void Overridden(ParentReference ancestor, string message)
        {
            if (!Overrides.TryGetValue(ancestor, out var messages))
            {
                Overrides[ancestor] = messages = new SortedSet<string>(StringComparer.Ordinal);
            }

            messages.Add(message);
        }
    }
}

/// <summary>What a policy attaches to, most general first.</summary>
internal enum TargetLevel
{
    Service,
    Gateway,
    Listener,
    Route,
    Rule,
}

/// <summary>A resolved policy target: a Service, a Gateway or one of its listeners, a TCPRoute or one of its rules.</summary>
internal readonly record struct PolicyTarget(TargetLevel Level, string Namespace, string Name, string? Section);
