using FsmGateway.Transport.Concurrency;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Transport.Proxy;

/// <summary>
/// Every connection the proxy holds, from accept until its last socket is released, across all listeners (draining
/// ones included), and the one heartbeat that walks them for deadlines: upstream connect, idle, half-closed and
/// maximum duration (Kestrel's <c>ConnectionManager</c> and <c>Heartbeat</c>). One timer for the whole proxy instead
/// of a timer per connect: a deadline fires within one heartbeat of passing.
/// </summary>
/// <remarks>
/// Registering allocates nothing and touches no shared line: the connections are intrusive doubly linked lists, one
/// per stripe (<see cref="Stripes"/>), each under a lock of its own that only its stripe's threads (and the heartbeat,
/// once a period) take. A connection is removed from the stripe it was added to, whichever thread removes it.
/// </remarks>
internal sealed class ConnectionRegistry : IAsyncDisposable
{
    /// <summary>The longest time between heartbeats.</summary>
    public static readonly TimeSpan MaxHeartbeat = TimeSpan.FromSeconds(1);

    /// <summary>The shortest time between heartbeats, however short a deadline is.</summary>
    public static readonly TimeSpan MinHeartbeat = TimeSpan.FromMilliseconds(50);

    private readonly Stripe[] _stripes;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ITimer _heartbeat;
    private readonly List<(ProxiedConnection Connection, string Expired)> _expired = [];
    private TimeSpan _period;
    private int _walking;

    public ConnectionRegistry(TimeProvider time, ILogger logger, TimeSpan shortestDeadline)
    {
        _time = time;
        _logger = logger;
        _stripes = [.. Enumerable.Range(0, Stripes.Count).Select(static _ => new Stripe())];
        _period = PeriodFor(shortestDeadline);
        _heartbeat = time.CreateTimer(static state => ((ConnectionRegistry)state!).OnHeartbeat(), this, _period, _period);
    }

    /// <summary>The connections held now.</summary>
    public int Count
    {
        get
        {
            var count = 0;
            foreach (var stripe in _stripes)
            {
                count += Volatile.Read(ref stripe.Count);
            }

            return count;
        }
    }

    /// <summary>The time between heartbeats now.</summary>
    public TimeSpan Period => _period;

    /// <summary>A moment's snapshot of the connections held (safe to enumerate from any thread).</summary>
    public IEnumerable<ProxiedConnection> Connections
    {
        get
        {
            var all = new List<ProxiedConnection>();
            foreach (var stripe in _stripes)
            {
                lock (stripe)
                {
                    for (var connection = stripe.Head; connection is not null; connection = connection.NextInRegistry)
                    {
                        all.Add(connection);
                    }
                }
            }

            return all;
        }
    }

    /// <summary>Holds <paramref name="connection"/> until <see cref="Remove"/>.</summary>
    public void Add(ProxiedConnection connection)
    {
        var stripe = _stripes[Stripes.Current];
        connection.RegistryStripe = stripe;
        lock (stripe)
        {
            var head = stripe.Head;
            connection.NextInRegistry = head;
            connection.PreviousInRegistry = null;
            if (head is not null)
            {
                head.PreviousInRegistry = connection;
            }

            stripe.Head = connection;
            stripe.Count++;
        }
    }

    /// <summary>Lets go of <paramref name="connection"/>: its sockets are released.</summary>
    public void Remove(ProxiedConnection connection)
    {
        if (connection.RegistryStripe is not Stripe stripe)
        {
            return;
        }

        lock (stripe)
        {
            if (connection.RegistryStripe is null)
            {
                return; // removed already
            }

            var previous = connection.PreviousInRegistry;
            var next = connection.NextInRegistry;
            if (previous is null)
            {
                stripe.Head = next;
            }
            else
            {
                previous.NextInRegistry = next;
            }

            if (next is not null)
            {
                next.PreviousInRegistry = previous;
            }

            connection.PreviousInRegistry = connection.NextInRegistry = null;
            connection.RegistryStripe = null;
            stripe.Count--;
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
            foreach (var stripe in _stripes)
            {
                lock (stripe)
                {
                    for (var connection = stripe.Head; connection is not null; connection = connection.NextInRegistry)
                    {
                        if (connection.Expired(now, _time) is { } expired)
                        {
                            _expired.Add((connection, expired));
                        }
                    }
                }
            }

            // Logged and ended after the walk, outside the stripes' locks: ending a connection may run its
            // continuations inline (which remove connections), and the walk must not wait on them.
            foreach (var (connection, expired) in _expired)
            {
                Log.LimitReached(_logger, connection.ClientEndPoint, connection.Listener.Port, expired);
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

    /// <summary>
    /// One stripe's connections: the head of its list, and how many. Its own monitor is the stripe's lock (the lock
    /// word is in the object's header), and padding keeps the next stripe, allocated right after it, off its lines.
    /// </summary>
    internal sealed class Stripe
    {
#pragma warning disable SA1401, CA1051 // Fields: written under the stripe's lock, read with Volatile.
        public ProxiedConnection? Head;
        public int Count;
#pragma warning restore SA1401, CA1051

#pragma warning disable CS0169, IDE0051, CA1823 // Never read: it is only there to take room.
        private readonly Padding _padding;
#pragma warning restore CS0169, IDE0051, CA1823
    }

    [System.Runtime.CompilerServices.InlineArray(32)]
    private struct Padding
    {
        private long _element;
    }
}
