using FsmGateway.Transport.Connections;
using FsmGateway.Transport.Relay;

namespace FsmGateway.Transport.Proxy;

/// <summary>One client connection and its upstream, with what the idle and duration limits need to know.</summary>
internal sealed class ProxiedConnection : RelayCounters
{
    private readonly TimeProvider _time;
    private readonly ProxyMetrics _metrics;
    private long _lastActivity;
    private IDuplexConnection? _upstream;
    private BackendTags? _backendTags;
    private int _aborted;

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

    public IDuplexConnection? Upstream
    {
        get => Volatile.Read(ref _upstream);
        set => Volatile.Write(ref _upstream, value);
    }

    public override void Transferred(bool upload, int bytes)
    {
        Volatile.Write(ref _lastActivity, _time.GetTimestamp());
        if (ListenerTags is { } tags)
        {
            _metrics.Transferred(tags, BackendTags, upload, bytes);
        }
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
