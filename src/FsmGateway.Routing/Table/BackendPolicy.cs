using FsmGateway.Resources;

namespace FsmGateway.Routing;

/// <summary>
/// What the transport does for one backend of a route, after every policy that reaches it is merged (FSM's
/// HealthCheckPolicy and BackendLBPolicy on its Service, then our BackendTrafficPolicy on the Gateway, listener, route
/// and rule, the more specific winning field by field). <see cref="Default"/> when no policy applies.
/// </summary>
public sealed record BackendPolicy
{
    /// <summary>Round robin, no active probing, the gateway's global passive health and panic mode, no caps, no PROXY header, the global connect timeout.</summary>
    public static BackendPolicy Default { get; } = new();

    /// <summary>How an endpoint is picked.</summary>
    public LoadBalancerAlgorithm LoadBalancer { get; init; } = LoadBalancerAlgorithm.RoundRobin;

    /// <summary>The Maglev table size for <see cref="LoadBalancerAlgorithm.ConsistentHashSourceIP"/> (a prime).</summary>
    public int ConsistentHashTableSize { get; init; } = DefaultTableSize;

    /// <summary>Active probing, or <see langword="null"/> for none.</summary>
    public ActiveHealthCheck? ActiveHealthCheck { get; init; }

    /// <summary>
    /// Passive health (ejection on failed connects) as a policy sets it; <see langword="null"/> for the gateway's global
    /// passive health (on by default, configured in the transport's options).
    /// </summary>
    public PassiveHealthCheck? PassiveHealthCheck { get; init; }

    /// <summary>
    /// Below this percentage of healthy endpoints every endpoint is used (panic mode; 0 turns it off);
    /// <see langword="null"/> for the gateway's global behaviour (panic when every endpoint is ejected).
    /// </summary>
    public int? PanicThresholdPercent { get; init; }

    /// <summary>The most connections to the backend at once; <see langword="null"/> for no limit.</summary>
    public long? MaxConnections { get; init; }

    /// <summary>The most connections to one endpoint at once; <see langword="null"/> for no limit.</summary>
    public long? MaxConnectionsPerEndpoint { get; init; }

    /// <summary>The PROXY protocol header written first on every upstream connection, or <see langword="null"/> for none.</summary>
    public ProxyProtocolVersion? ProxyProtocol { get; init; }

    /// <summary>TCP keepalive on upstream sockets, or <see langword="null"/> to leave the socket as it is.</summary>
    public TcpKeepalive? TcpKeepalive { get; init; }

    /// <summary>The upstream connect timeout; <see langword="null"/> for the gateway's global one.</summary>
    public TimeSpan? ConnectTimeout { get; init; }

    /// <summary>The policies that set something here, most specific last (for output and logs).</summary>
    public EquatableArray<ResourceKey> Sources { get; init; } = [];

    /// <summary>Envoy's default Maglev table size, 65537.</summary>
    public const int DefaultTableSize = 65537;
}

/// <summary>How an endpoint of a backend is picked for a new connection.</summary>
public enum LoadBalancerAlgorithm
{
    /// <summary>In turn (FSM's and our default).</summary>
    RoundRobin,

    /// <summary>Fewest active connections, of two picked at random (FSM's <c>LeastLoad</c>, Envoy's <c>LeastRequest</c>).</summary>
    LeastRequest,

    /// <summary>At random.</summary>
    Random,

    /// <summary>By a Maglev table over the client's IP address: one client keeps its endpoint.</summary>
    ConsistentHashSourceIP,
}

/// <summary>The protocol of an active health probe.</summary>
public enum HealthProbeProtocol
{
    /// <summary>A TCP connect, then optionally a payload sent and an expected reply prefix.</summary>
    Tcp,

    /// <summary>An HTTP/1.1 GET of a path.</summary>
    Http,
}

/// <summary>The PROXY protocol header version written to backends.</summary>
public enum ProxyProtocolVersion
{
    /// <summary>The text header.</summary>
    V1,

    /// <summary>The binary header.</summary>
    V2,
}

/// <summary>Active health probing of every endpoint of a backend.</summary>
/// <param name="Protocol">TCP connect or HTTP GET.</param>
/// <param name="Interval">Time between probes of one endpoint (the transport adds jitter).</param>
/// <param name="Timeout">How long one probe may take.</param>
/// <param name="UnhealthyThreshold">Consecutive failed probes that mark an endpoint down.</param>
/// <param name="HealthyThreshold">Consecutive passed probes that mark it up again.</param>
public sealed record ActiveHealthCheck(HealthProbeProtocol Protocol, TimeSpan Interval, TimeSpan Timeout, int UnhealthyThreshold, int HealthyThreshold)
{
    /// <summary>The HTTP path (for <see cref="HealthProbeProtocol.Http"/>).</summary>
    public string? HttpPath { get; init; }

    /// <summary>What a healthy HTTP answer looks like: any one of these holds; empty means a status of 200.</summary>
    public EquatableArray<HttpProbeMatch> HttpMatches { get; init; } = [];

    /// <summary>Bytes sent after a TCP connect; empty for none.</summary>
    public EquatableArray<byte> TcpSend { get; init; } = [];

    /// <summary>Bytes the reply must start with; empty to accept the connect alone.</summary>
    public EquatableArray<byte> TcpReceive { get; init; } = [];
}

/// <summary>One way an HTTP probe's answer passes: every part given must hold.</summary>
/// <param name="StatusCodes">The status is one of these (any status when empty).</param>
/// <param name="Body">The body contains this text, when set.</param>
/// <param name="Headers">The answer has each of these headers with this value.</param>
public sealed record HttpProbeMatch(EquatableArray<int> StatusCodes, string? Body, EquatableArray<HttpHeaderValue> Headers);

/// <summary>Passive health: endpoints whose connects keep failing are ejected for a while.</summary>
/// <param name="ConsecutiveFailures">Consecutive failed or timed-out connects that eject an endpoint.</param>
/// <param name="Interval">How often ejections are reconsidered.</param>
/// <param name="BaseEjectionTime">How long an endpoint stays out, times the number of times it was ejected.</param>
/// <param name="MaxEjectionPercent">The most endpoints of a backend ejected at once, in percent (at least one may always be).</param>
public sealed record PassiveHealthCheck(int ConsecutiveFailures, TimeSpan Interval, TimeSpan BaseEjectionTime, int MaxEjectionPercent)
{
    /// <summary>Envoy Gateway's defaults, for the fields a policy's <c>healthCheck.passive</c> leaves unset: 5 failures, 3s, 30s, 10%.</summary>
    public static PassiveHealthCheck Default { get; } = new(5, TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(30), 10);
}

/// <summary>TCP keepalive settings; <see langword="null"/> fields keep the operating system's values.</summary>
/// <param name="Probes">Unanswered probes before the connection is dropped.</param>
/// <param name="IdleTime">Idle time before the first probe.</param>
/// <param name="Interval">Time between probes.</param>
public sealed record TcpKeepalive(int? Probes, TimeSpan? IdleTime, TimeSpan? Interval);
