namespace FsmGateway.Resources;

/// <summary>API groups of the policy kinds (GEP-713 policy attachment) FsmGateway reads.</summary>
public static class PolicyApi
{
    /// <summary>FSM's policy group, <c>gateway.flomesh.io</c> (HealthCheckPolicy, BackendLBPolicy at <c>v1alpha2</c>).</summary>
    public const string FsmGroup = "gateway.flomesh.io";

    /// <summary>The version of FSM's policies FsmGateway reads.</summary>
    public const string FsmVersion = "v1alpha2";

    /// <summary>FsmGateway's own group, <c>gateway.fsmgateway.io</c> (BackendTrafficPolicy at <c>v1alpha1</c>).</summary>
    public const string Group = "gateway.fsmgateway.io";

    /// <summary>The version of FsmGateway's own policies.</summary>
    public const string Version = "v1alpha1";

    /// <summary>The version of FSM's first-generation policies FsmGateway reads (RateLimitPolicy).</summary>
    public const string FsmV1Version = "v1alpha1";

    /// <summary>FSM's extension group, <c>extension.gateway.flomesh.io</c> (ListenerFilter, Filter, ConcurrencyLimit, IPRestriction).</summary>
    public const string FsmExtensionGroup = "extension.gateway.flomesh.io";

    /// <summary>The version of FSM's extension kinds FsmGateway reads.</summary>
    public const string FsmExtensionVersion = "v1alpha1";

    /// <summary>The <c>apiVersion</c> of a policy or filter kind FsmGateway reads.</summary>
    /// <param name="kind">The kind.</param>
    /// <returns><c>group/version</c>, or <see langword="null"/> for a kind that is not a policy or filter.</returns>
    public static string? ApiVersionOf(ResourceKind kind) => kind switch
    {
        ResourceKind.HealthCheckPolicy or ResourceKind.BackendLbPolicy or ResourceKind.RouteRuleFilterPolicy => $"{FsmGroup}/{FsmVersion}",
        ResourceKind.RateLimitPolicy => $"{FsmGroup}/{FsmV1Version}",
        ResourceKind.BackendTrafficPolicy or ResourceKind.ClientTrafficPolicy => $"{Group}/{Version}",
        ResourceKind.ListenerFilter or ResourceKind.Filter or ResourceKind.ConcurrencyLimit or ResourceKind.IPRestriction => $"{FsmExtensionGroup}/{FsmExtensionVersion}",
        _ => null,
    };
}

/// <summary>
/// One of a policy's <c>spec.targetRefs</c>, as written; unset fields are <see langword="null"/>.
/// </summary>
/// <param name="Group">The target's group (empty for core).</param>
/// <param name="Kind">The target's kind.</param>
/// <param name="Name">The target's name.</param>
public sealed record PolicyTargetReference(string Group, string Kind, string Name)
{
    /// <summary>The target's namespace (FSM's HealthCheckPolicy only); the policy's own when <see langword="null"/>.</summary>
    public string? Namespace { get; init; }

    /// <summary>A listener name (Gateway target) or a rule name (TCPRoute target).</summary>
    public string? SectionName { get; init; }
}

/// <summary>FSM's HealthCheckPolicy (<c>gateway.flomesh.io/v1alpha2</c>): health checks for the ports of Services.</summary>
/// <param name="Metadata">The object's metadata.</param>
/// <param name="TargetRefs"><c>spec.targetRefs</c>: core Services.</param>
/// <param name="Ports"><c>spec.ports</c>: a health check per Service port.</param>
/// <param name="HealthCheck"><c>spec.healthCheck</c>: the check for ports that <paramref name="Ports"/> does not list.</param>
public sealed record HealthCheckPolicy(ObjectMeta Metadata, EquatableArray<PolicyTargetReference> TargetRefs, EquatableArray<PortHealthCheck> Ports, FsmHealthCheck? HealthCheck)
    : Resource(Metadata)
{
    /// <inheritdoc />
    public override ResourceKind Kind => ResourceKind.HealthCheckPolicy;
}

/// <summary>One <c>spec.ports</c> entry of a HealthCheckPolicy.</summary>
/// <param name="Port">The Service port.</param>
/// <param name="HealthCheck">Its check; the spec-level one when <see langword="null"/>.</param>
public sealed record PortHealthCheck(int Port, FsmHealthCheck? HealthCheck);

/// <summary>FSM's <c>healthCheck</c>: an HTTP GET when <paramref name="Path"/> is set, otherwise a TCP connect.</summary>
/// <param name="Interval"><c>interval</c>: time between probes; zero means passive checks only.</param>
/// <param name="MaxFails"><c>maxFails</c>: consecutive failures that mark an endpoint down.</param>
/// <param name="FailTimeout"><c>failTimeout</c>: how long a passively failed endpoint stays out; <see langword="null"/> for FSM's 5s.</param>
/// <param name="Path"><c>path</c> of the HTTP probe.</param>
/// <param name="Matches"><c>matches</c>: what a healthy HTTP answer looks like.</param>
public sealed record FsmHealthCheck(TimeSpan Interval, int MaxFails, TimeSpan? FailTimeout, string? Path, EquatableArray<HealthCheckMatch> Matches);

/// <summary>One of FSM's <c>healthCheck.matches</c>: every field given must hold.</summary>
/// <param name="StatusCodes"><c>statusCodes</c>: the answer's status is one of these.</param>
/// <param name="Body"><c>body</c>: the answer's body contains this text.</param>
/// <param name="Headers"><c>headers</c>: the answer has these headers with these values.</param>
public sealed record HealthCheckMatch(EquatableArray<int> StatusCodes, string? Body, EquatableArray<HttpHeaderValue> Headers);

/// <summary>An HTTP header name and value.</summary>
/// <param name="Name">The header name.</param>
/// <param name="Value">The value.</param>
public sealed record HttpHeaderValue(string Name, string Value);

/// <summary>FSM's BackendLBPolicy (<c>gateway.flomesh.io/v1alpha2</c>): the load-balancing algorithm for Services.</summary>
/// <param name="Metadata">The object's metadata.</param>
/// <param name="TargetRefs"><c>spec.targetRefs</c>: core Services in the policy's namespace.</param>
/// <param name="Algorithm"><c>spec.algorithm</c>: <c>RoundRobin</c> or <c>LeastLoad</c>; <see langword="null"/> when unset.</param>
public sealed record BackendLbPolicy(ObjectMeta Metadata, EquatableArray<PolicyTargetReference> TargetRefs, string? Algorithm) : Resource(Metadata)
{
    /// <inheritdoc />
    public override ResourceKind Kind => ResourceKind.BackendLbPolicy;

    /// <summary>Whether <c>spec.sessionPersistence</c> is set (HTTP only: ignored for TCP, and the status says so).</summary>
    public bool HasSessionPersistence { get; init; }
}

/// <summary>
/// Our BackendTrafficPolicy (<c>gateway.fsmgateway.io/v1alpha1</c>), with Envoy Gateway's TCP field names, targeting
/// a Gateway (or one listener), a TCPRoute, or one rule of it. Every unset field is <see langword="null"/>, so policies
/// at different levels merge field by field.
/// </summary>
/// <param name="Metadata">The object's metadata.</param>
/// <param name="TargetRefs"><c>spec.targetRefs</c>.</param>
public sealed record BackendTrafficPolicy(ObjectMeta Metadata, EquatableArray<PolicyTargetReference> TargetRefs) : Resource(Metadata)
{
    /// <inheritdoc />
    public override ResourceKind Kind => ResourceKind.BackendTrafficPolicy;

    /// <summary><c>spec.loadBalancer</c>.</summary>
    public LoadBalancerSpec? LoadBalancer { get; init; }

    /// <summary><c>spec.healthCheck.active</c>.</summary>
    public ActiveHealthCheckSpec? ActiveHealthCheck { get; init; }

    /// <summary><c>spec.healthCheck.passive</c>.</summary>
    public PassiveHealthCheckSpec? PassiveHealthCheck { get; init; }

    /// <summary><c>spec.healthCheck.panicThreshold</c> (percent).</summary>
    public int? PanicThreshold { get; init; }

    /// <summary><c>spec.circuitBreaker.maxConnections</c>.</summary>
    public long? MaxConnections { get; init; }

    /// <summary><c>spec.circuitBreaker.perEndpoint.maxConnections</c>.</summary>
    public long? MaxConnectionsPerEndpoint { get; init; }

    /// <summary><c>spec.proxyProtocol.version</c>: <c>V1</c> or <c>V2</c>.</summary>
    public string? ProxyProtocolVersion { get; init; }

    /// <summary><c>spec.tcpKeepalive</c>.</summary>
    public TcpKeepaliveSpec? TcpKeepalive { get; init; }

    /// <summary><c>spec.timeout.tcp.connectTimeout</c>.</summary>
    public TimeSpan? ConnectTimeout { get; init; }
}

/// <summary><c>spec.loadBalancer</c> of a BackendTrafficPolicy.</summary>
/// <param name="Type"><c>type</c>: RoundRobin, LeastRequest, Random, ConsistentHash (and Envoy's others, refused).</param>
/// <param name="ConsistentHashType"><c>consistentHash.type</c> (only SourceIP applies to TCP).</param>
/// <param name="TableSize"><c>consistentHash.tableSize</c>.</param>
public sealed record LoadBalancerSpec(string Type, string? ConsistentHashType, long? TableSize)
{
    /// <summary>Whether <c>slowStart</c> is set (not supported).</summary>
    public bool HasSlowStart { get; init; }
}

/// <summary><c>spec.healthCheck.active</c> of a BackendTrafficPolicy.</summary>
/// <param name="Type"><c>type</c>: TCP or HTTP (GRPC is refused).</param>
public sealed record ActiveHealthCheckSpec(string Type)
{
    /// <summary><c>timeout</c>.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary><c>interval</c>.</summary>
    public TimeSpan? Interval { get; init; }

    /// <summary><c>unhealthyThreshold</c>.</summary>
    public int? UnhealthyThreshold { get; init; }

    /// <summary><c>healthyThreshold</c>.</summary>
    public int? HealthyThreshold { get; init; }

    /// <summary><c>http.path</c>.</summary>
    public string? HttpPath { get; init; }

    /// <summary><c>http.expectedStatuses</c>.</summary>
    public EquatableArray<int> ExpectedStatuses { get; init; } = [];

    /// <summary><c>tcp.send</c>.</summary>
    public HealthCheckPayload? TcpSend { get; init; }

    /// <summary><c>tcp.receive</c>.</summary>
    public HealthCheckPayload? TcpReceive { get; init; }
}

/// <summary>A TCP health-check payload: <c>type</c> Text (with <c>text</c>) or Binary (with <c>binary</c>, base64).</summary>
/// <param name="Type"><c>type</c>.</param>
/// <param name="Text"><c>text</c>.</param>
/// <param name="Binary"><c>binary</c>, decoded.</param>
public sealed record HealthCheckPayload(string Type, string? Text, EquatableArray<byte>? Binary);

/// <summary><c>spec.healthCheck.passive</c> of a BackendTrafficPolicy.</summary>
/// <param name="ConsecutiveLocalOriginFailures"><c>consecutiveLocalOriginFailures</c>: failed or timed-out connects that eject an endpoint.</param>
/// <param name="Interval"><c>interval</c>.</param>
/// <param name="BaseEjectionTime"><c>baseEjectionTime</c>.</param>
/// <param name="MaxEjectionPercent"><c>maxEjectionPercent</c>.</param>
public sealed record PassiveHealthCheckSpec(int? ConsecutiveLocalOriginFailures, TimeSpan? Interval, TimeSpan? BaseEjectionTime, int? MaxEjectionPercent);

/// <summary><c>tcpKeepalive</c>: TCP keepalive on the socket; unset fields take the operating system's values.</summary>
/// <param name="Probes"><c>probes</c>.</param>
/// <param name="IdleTime"><c>idleTime</c>.</param>
/// <param name="Interval"><c>interval</c>.</param>
public sealed record TcpKeepaliveSpec(int? Probes, TimeSpan? IdleTime, TimeSpan? Interval);
