using FsmGateway.Transport.AccessLog;
using FsmGateway.Transport.LoadBalancing;

namespace FsmGateway.Transport.Proxy;

/// <summary>How the proxy treats connections. Every default is what a demanding operator would pick without thinking.</summary>
public sealed class ProxyOptions
{
    /// <summary>How long one upstream connect may take before the next endpoint is tried. Default 5 s.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How many endpoints of the chosen backend are tried before the client connection is closed. Default 3.</summary>
    public int ConnectAttempts { get; set; } = 3;

    /// <summary>A connection with no bytes either way for this long is closed. Default 1 hour; <see langword="null"/> for never.</summary>
    public TimeSpan? IdleTimeout { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// A connection one direction of which has ended (a half-close: the client or the backend sent FIN) is closed once
    /// no bytes have moved the other way for this long (HAProxy's <c>timeout client-fin</c>/<c>server-fin</c>). A long
    /// reply after the client's FIN is not cut while it flows. Default 60 s; <see langword="null"/> for never (only the
    /// idle timeout then applies).
    /// </summary>
    public TimeSpan? HalfClosedTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>A connection older than this is closed, however busy. Default <see langword="null"/>: no limit.</summary>
    public TimeSpan? MaxConnectionDuration { get; set; }

    /// <summary>
    /// How long connections of a removed listener, or of the whole proxy at shutdown, may run on before they are
    /// closed. Default 30 s.
    /// </summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The relay's buffer per direction while bytes flow (idle connections hold none). Default 16 KiB.</summary>
    public int BufferSize { get; set; } = 16 * 1024;

    /// <summary>The load-balancing policy that picks an endpoint inside a backend. Default <see cref="LoadBalancingPolicies.RoundRobin"/>.</summary>
    public string LoadBalancingPolicy { get; set; } = LoadBalancingPolicies.RoundRobin;

    /// <summary>The access log: one line per connection. Off by default (no <see cref="AccessLogOptions.Destination"/>).</summary>
    public AccessLogOptions AccessLog { get; } = new();

    /// <summary>
    /// Passive health, on with nothing configured: an endpoint whose upstream connects fail (refused, timed out, reset)
    /// this many times in a row is ejected, and new connections skip it until the ejection ends; a successful connect
    /// resets the count. Default 1 (nginx's <c>max_fails</c>): at L4 one failed connect is already strong evidence (a
    /// refusal is the host's answer; a timeout spans several SYN retransmits), and each one costs a client a retry,
    /// or a whole <see cref="ConnectTimeout"/> for a blackholed endpoint. 0 turns passive health off.
    /// </summary>
    public int PassiveHealthConsecutiveFailures { get; set; } = 1;

    /// <summary>
    /// How long an endpoint's first ejection lasts; the n-th ejection without a successful connect in between lasts n
    /// times this, up to <see cref="PassiveHealthMaxEjectionTime"/>. Default 5 s (FSM HealthCheckPolicy's
    /// <c>failTimeout</c>).
    /// </summary>
    public TimeSpan PassiveHealthEjectionTime { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The longest an ejection lasts, however often the endpoint failed. Default 5 min (Envoy's <c>max_ejection_time</c>).</summary>
    public TimeSpan PassiveHealthMaxEjectionTime { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Which transport binds listeners and opens upstream connections. Default <see cref="ProxyTransport.Auto"/>: the
    /// Linux transport (zero-copy relay, sharded listeners) on Linux, the sockets transport elsewhere. Applies when the
    /// gateway picks the transport (<c>AddFsmGateway</c>, <see cref="GatewayProxy.CreateDefault"/>), not to a listener
    /// factory or connector an embedder registers.
    /// </summary>
    public ProxyTransport Transport { get; set; } = ProxyTransport.Auto;

    /// <summary>
    /// With the Linux transport, how many <c>SO_REUSEPORT</c> sockets each listening endpoint is bound with, each with
    /// its own accept loop; the kernel spreads new connections over them. Default <see langword="null"/>: one per
    /// processor the process may use (<see cref="Environment.ProcessorCount"/>), so a process given one core binds one
    /// socket, exclusively, as the sockets transport does. Between 1 and 1024.
    /// </summary>
    public int? ListenerShards { get; set; }

    /// <summary>
    /// Export per-endpoint metrics (open connections, health, ejections; labelled by backend Service and endpoint
    /// address and port). Off by default: one series per endpoint can be many.
    /// </summary>
    public bool EndpointMetrics { get; set; }
}
