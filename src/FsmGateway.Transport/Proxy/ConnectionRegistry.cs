using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Transport.Proxy;

/// <summary>
/// Every connection the proxy holds, from accept until its last socket is released, across all listeners (draining
/// ones included), and the one heartbeat that walks them for deadlines: upstream connect, idle, half-closed and
/// maximum duration (Kestrel's <c>ConnectionManager</c> and <c>Heartbeat</c>). One timer for the whole proxy instead
/// of a timer per connect: a deadline fires within one heartbeat of passing.
/// </summary>
internal sealed class ConnectionRegistry : IAsyncDisposable
{
    /// <summary>The longest time between heartbeats.</summary>
    public static readonly TimeSpan MaxHeartbeat = TimeSpan.FromSeconds(1);

    /// <summary>The shortest time between heartbeats, however short a deadline is.</summary>
    public static readonly TimeSpan MinHeartbeat = TimeSpan.FromMilliseconds(50);

    private readonly ConcurrentDictionary<long, ProxiedConnection> _connections = new();
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ITimer _heartbeat;
    private readonly List<ProxiedConnection> _expired = [];
    private TimeSpan _period;
    private long _nextId;
    private int _count;
    private int _walking;

    public ConnectionRegistry(TimeProvider time, ILogger logger, TimeSpan shortestDeadline)
    {
        _time = time;
        _logger = logger;
        _period = PeriodFor(shortestDeadline);
        _heartbeat = time.CreateTimer(static state => ((ConnectionRegistry)state!).OnHeartbeat(), this, _period, _period);
    }

    /// <summary>The connections held now.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>The time between heartbeats now.</summary>
    public TimeSpan Period => _period;

    /// <summary>A moment's snapshot of the connections held (safe to enumerate from any thread).</summary>
    public IEnumerable<ProxiedConnection> Connections => _connections.Values;

    /// <summary>Holds <paramref name="connection"/> until <see cref="Remove"/>.</summary>
    public void Add(ProxiedConnection connection)
    {
        connection.Id = Interlocked.Increment(ref _nextId);
        _connections[connection.Id] = connection;
        Interlocked.Increment(ref _count);
    }

    /// <summary>Lets go of <paramref name="connection"/>: its sockets are released.</summary>
    public void Remove(ProxiedConnection connection)
    {
        if (_connections.TryRemove(connection.Id, out _))
        {
            Interlocked.Decrement(ref _count);
        }
    }

    /// <summary>
    /// Makes the heartbeat frequent enough for <paramref name="shortestDeadline"/>: a quarter of it, between
    /// <see cref="MinHeartbeat"/> and <see cref="MaxHeartbeat"/>. Called when the routing table (and with it the
    /// deadlines policies set) changes.
    /// </summary>
    public void Tune(TimeSpan shortestDeadline)
    {
        var period = PeriodFor(shortestDeadline);
        if (period != _period)
        {
            _period = period;
            _heartbeat.Change(period, period);
        }
    }

    /// <summary>Walks every connection once (the heartbeat's work; tests with a fake clock need not call it).</summary>
    public void OnHeartbeat()
    {
        // A walk that overruns the period (a slow machine, a huge registry) is not started twice at once.
        if (Interlocked.Exchange(ref _walking, 1) != 0)
        {
            return;
        }

        try
        {
            var now = _time.GetTimestamp();
            foreach (var connection in _connections.Values)
            {
                if (connection.Expired(now, _time) is { } expired)
                {
                    Log.LimitReached(_logger, connection.ClientEndPoint, connection.Listener.Port, expired);
                    _expired.Add(connection);
                }
            }

            // Ended after the walk: ending a connection may run its continuations inline, and the walk must not wait on them.
            foreach (var connection in _expired)
            {
                connection.Expire();
            }
        }
        finally
        {
            _expired.Clear();
            Volatile.Write(ref _walking, 0);
        }
    }

    public ValueTask DisposeAsync() => _heartbeat.DisposeAsync();

    private static TimeSpan PeriodFor(TimeSpan shortestDeadline) =>
        TimeSpan.FromTicks(Math.Clamp(shortestDeadline.Ticks / 4, MinHeartbeat.Ticks, MaxHeartbeat.Ticks));
}
