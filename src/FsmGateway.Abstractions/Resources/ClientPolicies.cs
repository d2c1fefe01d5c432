namespace FsmGateway.Resources;

/// <summary>
/// A reference to a Gateway listener by port, as FSM's ListenerFilter <c>spec.targetRefs</c> write it
/// (<c>LocalTargetReferenceWithPort</c>: the Gateway is in the filter's namespace).
/// </summary>
/// <param name="Group">The target's group.</param>
/// <param name="Kind">The target's kind.</param>
/// <param name="Name">The target's name.</param>
/// <param name="Port">The listener port.</param>
public sealed record PortTargetReference(string Group, string Kind, string Name, int Port);

/// <summary>A local object reference (<c>group</c>, <c>kind</c>, <c>name</c>) such as FSM's <c>configRef</c> and <c>definitionRef</c>.</summary>
/// <param name="Group">The referent's group.</param>
/// <param name="Kind">The referent's kind.</param>
/// <param name="Name">The referent's name.</param>
public sealed record LocalObjectReference(string Group, string Kind, string Name);

/// <summary>
/// FSM's ListenerFilter (<c>extension.gateway.flomesh.io/v1alpha1</c>): a filter of a given <c>type</c> run on the
/// connections of the listeners (Gateway + port) it targets.
/// </summary>
/// <param name="Metadata">The object's metadata.</param>
/// <param name="Type"><c>spec.type</c>: FsmGateway honours <c>ConcurrencyLimit</c> and <c>IPRestriction</c>.</param>
/// <param name="Priority"><c>spec.priority</c> (0–10000, default 100): lower runs first.</param>
/// <param name="Aspect"><c>spec.aspect</c>: <c>Listener</c> (default) or <c>Route</c> (run before the route's own filters).</param>
/// <param name="TargetRefs"><c>spec.targetRefs</c>: Gateways and ports in the filter's namespace.</param>
public sealed record ListenerFilter(ObjectMeta Metadata, string Type, int Priority, string Aspect, EquatableArray<PortTargetReference> TargetRefs) : Resource(Metadata)
{
    /// <inheritdoc />
    public override ResourceKind Kind => ResourceKind.ListenerFilter;

    /// <summary><c>spec.definitionRef</c> (a script-based FilterDefinition; cannot be honoured).</summary>
    public LocalObjectReference? DefinitionRef { get; init; }

    /// <summary><c>spec.configRef</c>: the ConcurrencyLimit or IPRestriction holding the settings.</summary>
    public LocalObjectReference? ConfigRef { get; init; }
}

/// <summary>FSM's Filter (<c>extension.gateway.flomesh.io/v1alpha1</c>): a filter a RouteRuleFilterPolicy (or an FSM HTTPRoute) refers to.</summary>
/// <param name="Metadata">The object's metadata.</param>
/// <param name="Type"><c>spec.type</c>.</param>
public sealed record FsmFilter(ObjectMeta Metadata, string Type) : Resource(Metadata)
{
    /// <inheritdoc />
    public override ResourceKind Kind => ResourceKind.Filter;

    /// <summary><c>spec.definitionRef</c>.</summary>
    public LocalObjectReference? DefinitionRef { get; init; }

    /// <summary><c>spec.configRef</c>.</summary>
    public LocalObjectReference? ConfigRef { get; init; }
}

/// <summary>FSM's ConcurrencyLimit (<c>extension.gateway.flomesh.io/v1alpha1</c>): the settings of a ConcurrencyLimit filter.</summary>
/// <param name="Metadata">The object's metadata.</param>
/// <param name="MaxConnections"><c>spec.maxConnections</c> (default 100, at least 1).</param>
public sealed record ConcurrencyLimitConfig(ObjectMeta Metadata, int MaxConnections) : Resource(Metadata)
{
    /// <inheritdoc />
    public override ResourceKind Kind => ResourceKind.ConcurrencyLimit;
}

/// <summary>FSM's IPRestriction (<c>extension.gateway.flomesh.io/v1alpha1</c>): the settings of an IPRestriction filter, as written.</summary>
/// <param name="Metadata">The object's metadata.</param>
/// <param name="Allowed"><c>spec.allowed</c>: IPs or CIDRs a client must match (when not empty).</param>
/// <param name="Forbidden"><c>spec.forbidden</c>: IPs or CIDRs a client must not match.</param>
public sealed record IPRestrictionConfig(ObjectMeta Metadata, EquatableArray<string> Allowed, EquatableArray<string> Forbidden) : Resource(Metadata)
{
    /// <inheritdoc />
    public override ResourceKind Kind => ResourceKind.IPRestriction;
}

/// <summary>One of a RouteRuleFilterPolicy's <c>spec.filterRefs</c>.</summary>
/// <param name="Group">The referent's group (<c>extension.gateway.flomesh.io</c>).</param>
/// <param name="Kind">The referent's kind (<c>Filter</c>).</param>
/// <param name="Name">The Filter's name, in the policy's namespace.</param>
/// <param name="Priority"><c>priority</c> (0–10000, default 100): lower runs first.</param>
public sealed record FilterReference(string Group, string Kind, string Name, int Priority);

/// <summary>
/// FSM's RouteRuleFilterPolicy (<c>gateway.flomesh.io/v1alpha2</c>): Filters run on the connections of one named rule
/// of a TCPRoute (or UDPRoute).
/// </summary>
/// <param name="Metadata">The object's metadata.</param>
/// <param name="TargetRefs"><c>spec.targetRefs</c>: route and <c>rule</c> (in <see cref="PolicyTargetReference.SectionName"/>).</param>
/// <param name="FilterRefs"><c>spec.filterRefs</c>.</param>
public sealed record RouteRuleFilterPolicy(ObjectMeta Metadata, EquatableArray<PolicyTargetReference> TargetRefs, EquatableArray<FilterReference> FilterRefs) : Resource(Metadata)
{
    /// <inheritdoc />
    public override ResourceKind Kind => ResourceKind.RouteRuleFilterPolicy;
}

/// <summary>
/// FSM's first-generation RateLimitPolicy (<c>gateway.flomesh.io/v1alpha1</c>): for a Gateway target, a per-connection
/// data rate (bytes per second, both directions) on the listed listener ports.
/// </summary>
/// <param name="Metadata">The object's metadata.</param>
/// <param name="TargetRef"><c>spec.targetRef</c> (with an optional namespace).</param>
/// <param name="Bps"><c>spec.bps</c>: the rate for ports that give none.</param>
/// <param name="Ports"><c>spec.ports</c>.</param>
public sealed record RateLimitPolicy(ObjectMeta Metadata, PolicyTargetReference TargetRef, long? Bps, EquatableArray<PortRateLimit> Ports) : Resource(Metadata)
{
    /// <inheritdoc />
    public override ResourceKind Kind => ResourceKind.RateLimitPolicy;

    /// <summary>The HTTP-only fields that are set (<c>hostnames</c>, <c>http</c>, <c>grpc</c>, <c>config</c>), as field paths.</summary>
    public EquatableArray<string> HttpFields { get; init; } = [];
}

/// <summary>One <c>spec.ports</c> entry of a RateLimitPolicy.</summary>
/// <param name="Port">The listener port.</param>
/// <param name="Bps"><c>bps</c>; the spec-level one when <see langword="null"/>.</param>
public sealed record PortRateLimit(int Port, long? Bps);

/// <summary>
/// Our ClientTrafficPolicy (<c>gateway.fsmgateway.io/v1alpha1</c>), with Envoy Gateway's field names, targeting a
/// Gateway or one listener (<c>sectionName</c>). Every unset field is <see langword="null"/>, so a listener-level
/// policy and a Gateway-level one merge field by field.
/// </summary>
/// <param name="Metadata">The object's metadata.</param>
/// <param name="TargetRefs"><c>spec.targetRefs</c>.</param>
public sealed record ClientTrafficPolicy(ObjectMeta Metadata, EquatableArray<PolicyTargetReference> TargetRefs) : Resource(Metadata)
{
    /// <inheritdoc />
    public override ResourceKind Kind => ResourceKind.ClientTrafficPolicy;

    /// <summary><c>spec.proxyProtocol</c> (or the deprecated <c>spec.enableProxyProtocol: true</c>, which means <c>optional: false</c>).</summary>
    public ProxyProtocolSpec? ProxyProtocol { get; init; }

    /// <summary><c>spec.tcpKeepalive</c>.</summary>
    public TcpKeepaliveSpec? TcpKeepalive { get; init; }

    /// <summary><c>spec.timeout.tcp.idleTimeout</c>.</summary>
    public TimeSpan? IdleTimeout { get; init; }

    /// <summary><c>spec.timeout.tcp.connectionInspectionTimeout</c>: how long a PROXY header may take.</summary>
    public TimeSpan? ConnectionInspectionTimeout { get; init; }

    /// <summary><c>spec.timeout.tcp.halfClosedTimeout</c> (our extension).</summary>
    public TimeSpan? HalfClosedTimeout { get; init; }

    /// <summary>Whether <c>spec.timeout.tcp.tlsHandshakeTimeout</c> is set (TLS is not terminated: cannot be honoured).</summary>
    public bool HasTlsHandshakeTimeout { get; init; }

    /// <summary><c>spec.connection.connectionLimit</c>.</summary>
    public ConnectionLimitSpec? ConnectionLimit { get; init; }

    /// <summary><c>spec.connection.bufferLimit</c>, in bytes.</summary>
    public long? BufferLimit { get; init; }

    /// <summary><c>spec.connection.maxConnectionDuration</c> (or <c>connection.connectionLimit.maxConnectionDuration</c>, where Envoy Gateway 1.9 has it).</summary>
    public TimeSpan? MaxConnectionDuration { get; init; }

    /// <summary>Whether <c>spec.connection.maxAcceptPerSocketEvent</c> is set (no equivalent: cannot be honoured).</summary>
    public bool HasMaxAcceptPerSocketEvent { get; init; }

    /// <summary><c>spec.bandwidthLimit.upload</c> (our extension): bytes from the client.</summary>
    public BandwidthLimitSpec? UploadBandwidth { get; init; }

    /// <summary><c>spec.bandwidthLimit.download</c> (our extension): bytes to the client.</summary>
    public BandwidthLimitSpec? DownloadBandwidth { get; init; }

    /// <summary>The set fields FsmGateway cannot honour on a TCP listener (<c>spec.tls</c>, HTTP settings...), as field paths.</summary>
    public EquatableArray<string> UnsupportedFields { get; init; } = [];
}

/// <summary><c>spec.proxyProtocol</c> of a ClientTrafficPolicy.</summary>
/// <param name="Optional"><c>optional</c>: also accept connections without a header.</param>
public sealed record ProxyProtocolSpec(bool Optional);

/// <summary><c>spec.connection.connectionLimit</c> of a ClientTrafficPolicy.</summary>
/// <param name="Value"><c>value</c>: the most connections open at once on the listener.</param>
/// <param name="CloseDelay"><c>closeDelay</c>: how long a refused connection is held before it is closed.</param>
public sealed record ConnectionLimitSpec(long? Value, TimeSpan? CloseDelay);

/// <summary>One direction of <c>spec.bandwidthLimit</c> of a ClientTrafficPolicy (our extension).</summary>
/// <param name="BytesPerSecond"><c>bytesPerSecond</c>: the sustained rate.</param>
/// <param name="Burst"><c>burst</c>: the most bytes passed at once; one second's worth when <see langword="null"/>.</param>
public sealed record BandwidthLimitSpec(long BytesPerSecond, long? Burst);
