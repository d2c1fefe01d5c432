using FsmGateway.Routing;
using FsmGateway.Transport.Connections;
using FsmGateway.Transport.Relay;

namespace FsmGateway.Transport.Proxy;

/// <summary>
/// One client connection and its upstream, with what the heartbeat's deadlines, the metrics and the access log need
/// to know: when it started, bytes each way, the backend and endpoint, and why it ended.
/// </summary>
internal sealed class ProxiedConnection : RelayCounters
{
    /// <summary>A deadline field (<see cref="_connectDeadline"/>, <see cref="_inspectionDeadline"/>) with no wait in progress.</summary>
    private const long NoDeadline = 0;

    /// <summary>What the heartbeat leaves in a deadline field when the wait overran it.</summary>
    private const long TimedOut = -1;

    private readonly TimeProvider _time;
    private readonly ProxyMetrics _metrics;
    private long _lastActivity;
    private long _halfClosedAt;
    private long _connectDeadline;
    private long _inspectionDeadline;
    private CancellationTokenSource? _connectCancel;
    private TerminationReason _expiring;
    private IDuplexConnection? _upstream;
    private System.Net.EndPoint? _gatewayEndPoint;
    private BackendTags? _backendTags;
    private EndpointState? _endpoint;
    private int _aborted;
    private int _reason;

    // Each written by one relay direction only, read once the relay has ended.
    private long _bytesUp;
    private long _bytesDown;

    public ProxiedConnection(IDuplexConnection client, ListenerRuntime listener, RouteModel model, TimeProvider time, ProxyMetrics metrics)
    {
        Client = client;
        Listener = listener;
        Model = model;
        _time = time;
        _metrics = metrics;
        StartedAt = _lastActivity = time.GetTimestamp();
    }

    /// <summary>The <see cref="ConnectionRegistry"/> stripe holding the connection; null once removed. Written under its lock.</summary>
    internal ConnectionRegistry.Stripe? RegistryStripe { get; set; }

    /// <summary>The previous connection in the registry stripe's list. Written under its lock.</summary>
    internal ProxiedConnection? PreviousInRegistry { get; set; }

    /// <summary>The next connection in the registry stripe's list. Written under its lock.</summary>
    internal ProxiedConnection? NextInRegistry { get; set; }

    public IDuplexConnection Client { get; }

    public ListenerRuntime Listener { get; }

    /// <summary>The listener's route model as of the accept: the connection keeps it (and its deadlines) to the end.</summary>
    public RouteModel Model { get; }

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

    /// <summary>The backend whose connection count (and cap) this connection is counted in, once admitted.</summary>
    public BackendHealth? AdmittedTo { get; set; }

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

    /// <summary>
    /// The address the client connected to: the destination of an accepted PROXY protocol header, or else the client
    /// socket's local end, read only when asked for (a PROXY protocol header sent upstream): most connections never need it.
    /// </summary>
    public System.Net.EndPoint? GatewayEndPoint
    {
        get => _gatewayEndPoint ?? Client.LocalEndPoint;
        set => _gatewayEndPoint = value;
    }

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

    /// <summary>
    /// Starts the wait for the client's PROXY protocol header: once <paramref name="timeout"/> passes, the heartbeat ends
    /// the connection as <see cref="TerminationReason.RefusedProxyProtocol"/> (which fails the pending receive).
    /// </summary>
    public void StartInspection(TimeSpan timeout) => Volatile.Write(ref _inspectionDeadline, DeadlineAfter(timeout));

    /// <summary>The header has been read, or reading it has failed.</summary>
    /// <returns>Whether the heartbeat found the wait past its deadline (and ended the connection).</returns>
    public bool EndInspection() => Interlocked.Exchange(ref _inspectionDeadline, NoDeadline) == TimedOut;

    /// <summary>
    /// The token that ends the upstream connect in progress: cancelled by <see cref="Abort()"/>, and by the heartbeat
    /// once the deadline set with <see cref="StartConnect"/> passes. One source per connection while connects succeed.
    /// </summary>
    public CancellationToken StartConnect(TimeSpan timeout)
    {
        var cancel = Cancellation();
        Volatile.Write(ref _connectDeadline, DeadlineAfter(timeout));
        return cancel.Token;
    }

    /// <summary>Cancelled when the connection is aborted (a drain deadline, the proxy stopping): for waits of its own.</summary>
    public CancellationToken Aborted => Cancellation().Token;

    /// <summary>The connections gates this connection counts in (client policy caps), released when it closes.</summary>
    public List<ConnectionGate>? Gates { get; set; }

    /// <summary>The connection's cancellation source, new when there is none or a timed-out connect cancelled it.</summary>
    private CancellationTokenSource Cancellation()
    {
        var cancel = Volatile.Read(ref _connectCancel);
        if (cancel is null || (cancel.IsCancellationRequested && Volatile.Read(ref _aborted) == 0))
        {
            // A source cancelled by a timed-out attempt cannot be reset; the next attempt gets a fresh one. It is not
            // disposed: an Abort on another thread may still be cancelling it (a source with no timer holds nothing).
            cancel = new CancellationTokenSource();
            Interlocked.Exchange(ref _connectCancel, cancel); // a full fence: Abort either sees this source, or this sees _aborted
            if (Volatile.Read(ref _aborted) != 0)
            {
                cancel.Cancel();
            }
        }

        return cancel;
    }

    /// <summary>
    /// Marks a wait whose deadline has passed at <paramref name="now"/> as <see cref="TimedOut"/>; exactly one caller
    /// wins against the waiter's own end (<see cref="EndConnect"/>, <see cref="EndInspection"/>).
    /// </summary>
    private static bool Overran(ref long deadline, long now)
    {
        var due = Volatile.Read(ref deadline);
        return due > NoDeadline && now >= due && Interlocked.CompareExchange(ref deadline, TimedOut, due) == due;
    }

    /// <summary><paramref name="timeout"/> from now, as a <see cref="TimeProvider"/> timestamp (saturating, never <see cref="NoDeadline"/>).</summary>
    private long DeadlineAfter(TimeSpan timeout)
    {
        var ticks = timeout.TotalSeconds * _time.TimestampFrequency;
        var now = _time.GetTimestamp();
        return ticks >= long.MaxValue - (double)now ? long.MaxValue : now + Math.Max(1, (long)ticks);
    }

    /// <summary>The connect attempt started by <see cref="StartConnect"/> has finished.</summary>
    /// <param name="connected">
    /// Whether it succeeded: then the cancellation source is let go of (unless cancelled), so an open connection does
    /// not keep it and the registration the connect left in it (~190 bytes). An <see cref="Abort()"/> that read it just
    /// before cancels a source nothing listens to any more.
    /// </param>
    /// <returns>Whether the heartbeat found it past its deadline (and cancelled it).</returns>
    public bool EndConnect(bool connected)
    {
        var timedOut = Interlocked.Exchange(ref _connectDeadline, NoDeadline) == TimedOut;
        if (connected && Volatile.Read(ref _connectCancel) is { IsCancellationRequested: false } cancel)
        {
            Interlocked.CompareExchange(ref _connectCancel, null, cancel);
        }

        return timedOut;
    }

    /// <summary>
    /// Whether a deadline has passed at <paramref name="now"/>: the PROXY protocol header's, the connect attempt's, or the idle, half-closed or
    /// maximum-duration limit of the connection's listener. Records what <see cref="Expire"/> is to do.
    /// </summary>
    /// <returns>What passed, for the log; null when nothing did.</returns>
    public string? Expired(long now, TimeProvider time)
    {
        if (Overran(ref _connectDeadline, now))
        {
            _expiring = TerminationReason.None;
            return "upstream connect timed out";
        }

        if (Overran(ref _inspectionDeadline, now))
        {
            _expiring = TerminationReason.RefusedProxyProtocol;
            return "no complete PROXY protocol header within the inspection timeout";
        }

        var limits = Model.Limits;
        var idleFor = time.GetElapsedTime(LastActivity, now);
        if (limits.IdleTimeout is { } idle && idleFor > idle)
        {
            _expiring = TerminationReason.IdleTimeout;
            return $"idle for more than {idle}";
        }

        if (limits.HalfClosedTimeout is { } halfClosed && Volatile.Read(ref _halfClosedAt) is var since and not 0
            && time.GetElapsedTime(Math.Max(since, LastActivity), now) > halfClosed)
        {
            _expiring = TerminationReason.HalfClosedTimeout;
            return $"half-closed with no bytes moving for more than {halfClosed}";
        }

        if (limits.MaxConnectionDuration is { } max && time.GetElapsedTime(StartedAt, now) > max)
        {
            _expiring = TerminationReason.MaxDuration;
            return $"open for more than {max}";
        }

        return null;
    }

    /// <summary>Acts on what <see cref="Expired"/> found: cancels the connect attempt, or ends the connection.</summary>
    public void Expire()
    {
        if (_expiring == TerminationReason.None)
        {
            Volatile.Read(ref _connectCancel)?.Cancel();
        }
        else
        {
            Abort(_expiring);
        }
    }

    /// <inheritdoc />
    protected override void Ended() => Volatile.Write(ref _halfClosedAt, _time.GetTimestamp());

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

    /// <summary>Ends both sides (and a connect in progress) at once. Safe to call more than once and from any thread.</summary>
    public void Abort()
    {
        if (Interlocked.Exchange(ref _aborted, 1) == 0)
        {
            Client.Abort();
            Volatile.Read(ref _connectCancel)?.Cancel();
            Upstream?.Abort();
        }
    }
}
