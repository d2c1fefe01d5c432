using FsmGateway.Routing;
using FsmGateway.Transport.Connections;
using FsmGateway.Transport.Relay;

namespace FsmGateway.Transport.Proxy;

/// <summary>
/// One client connection and its upstream, with what the idle and duration limits, the metrics and the access log need
/// to know: when it started, bytes each way, the backend and endpoint, and why it ended.
/// </summary>
internal sealed class ProxiedConnection : RelayCounters
{
    private readonly TimeProvider _time;
    private readonly ProxyMetrics _metrics;
    private long _lastActivity;
    private IDuplexConnection? _upstream;
    private BackendTags? _backendTags;
    private EndpointState? _endpoint;
    private int _aborted;
    private int _reason;

    // Each written by one relay direction only, read once the relay has ended.
    private long _bytesUp;
    private long _bytesDown;

    public ProxiedConnection(IDuplexConnection client, ListenerRuntime listener, TimeProvider time, ProxyMetrics metrics)
    {
        Client = client;
        Listener = listener;
        _time = time;
        _metrics = metrics;
        StartedAt = _lastActivity = time.GetTimestamp();
    }

    public IDuplexConnection Client { get; }

    public ListenerRuntime Listener { get; }

    /// <summary>When the connection was accepted, as a <see cref="TimeProvider"/> timestamp.</summary>
    public long StartedAt { get; }

    /// <summary>When the connection was accepted, wall-clock time (for the access log); set when it is handled.</summary>
    public DateTimeOffset StartedAtUtc { get; set; }

    /// <summary>When bytes last moved either way, as a <see cref="TimeProvider"/> timestamp.</summary>
    public long LastActivity => Volatile.Read(ref _lastActivity);

    /// <summary>The listener's metric tags, as of the route model the connection was accepted with.</summary>
    public ListenerTags? ListenerTags { get; set; }

    /// <summary>The metric tags of the backend the connection is relayed to, once connected.</summary>
    public BackendTags? BackendTags
    {
        get => Volatile.Read(ref _backendTags);
        set => Volatile.Write(ref _backendTags, value);
    }

    /// <summary>The endpoint the upstream connection is open to; its connection count holds this connection until it closes.</summary>
    public EndpointState? Endpoint
    {
        get => Volatile.Read(ref _endpoint);
        set => Volatile.Write(ref _endpoint, value);
    }

    public IDuplexConnection? Upstream
    {
        get => Volatile.Read(ref _upstream);
        set => Volatile.Write(ref _upstream, value);
    }

    /// <summary>
    /// The client's address: the socket's peer, read at accept (an endpoint of a closed connection may be gone), or the
    /// source of the PROXY protocol header the listener accepted. What the access log, the endpoint pick and the PROXY
    /// header sent upstream use.
    /// </summary>
    public System.Net.EndPoint? ClientEndPoint { get; set; }

    /// <summary>The address the client connected to: the socket's local end, or the destination of an accepted PROXY protocol header.</summary>
    public System.Net.EndPoint? GatewayEndPoint { get; set; }

    /// <summary>Client bytes received before the relay (an optional PROXY protocol header that was absent), sent upstream first.</summary>
    public ReadOnlyMemory<byte> Prefix { get; set; }

    /// <summary>The upstream connection's remote endpoint, read once connected.</summary>
    public System.Net.EndPoint? UpstreamEndPoint { get; set; }

    /// <summary>The backend chosen for the connection, if one was.</summary>
    public RouteBackend? Backend { get; set; }

    /// <summary>How long opening the upstream connection took, every attempt included; null when none was opened.</summary>
    public TimeSpan? ConnectTime { get; set; }

    /// <summary>Bytes relayed from the client to the backend.</summary>
    public long BytesUp => Volatile.Read(ref _bytesUp);

    /// <summary>Bytes relayed from the backend to the client.</summary>
    public long BytesDown => Volatile.Read(ref _bytesDown);

    /// <summary>Why the connection ended; <see cref="TerminationReason.None"/> while it has not.</summary>
    public TerminationReason Reason => (TerminationReason)Volatile.Read(ref _reason);

    public override void Transferred(bool upload, int bytes)
    {
        Volatile.Write(ref _lastActivity, _time.GetTimestamp());
        if (upload)
        {
            _bytesUp += bytes;
        }
        else
        {
            _bytesDown += bytes;
        }

        if (ListenerTags is { } tags)
        {
            _metrics.Transferred(tags, BackendTags, upload, bytes);
        }
    }

    /// <summary>Records why the connection ends, unless a reason was recorded already (the first one wins).</summary>
    /// <returns>Whether this reason was recorded.</returns>
    public bool TryEnd(TerminationReason reason) =>
        Interlocked.CompareExchange(ref _reason, (int)reason, (int)TerminationReason.None) == (int)TerminationReason.None;

    /// <summary>Records <paramref name="reason"/> (unless one was recorded first), then ends both sides at once.</summary>
    public void Abort(TerminationReason reason)
    {
        TryEnd(reason);
        Abort();
    }

    /// <summary>Ends both sides at once. Safe to call more than once and from any thread.</summary>
    public void Abort()
    {
        if (Interlocked.Exchange(ref _aborted, 1) == 0)
        {
            Client.Abort();
            Upstream?.Abort();
        }
    }
}
