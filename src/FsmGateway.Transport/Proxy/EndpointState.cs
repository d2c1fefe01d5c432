using System.Globalization;
using FsmGateway.Routing;
using FsmGateway.Transport.LoadBalancing;

namespace FsmGateway.Transport.Proxy;

/// <summary>Which backend Service port an endpoint state belongs to: the backendRef's Service and port.</summary>
internal readonly record struct BackendKey(string Namespace, string Name, int? Port)
{
    public static BackendKey Of(RouteBackend backend) => new(backend.Namespace, backend.Name, backend.Port);

    public override string ToString() => Port is { } port ? $"{Namespace}/{Name}:{port}" : $"{Namespace}/{Name}";
}

/// <summary>The identity of an endpoint's runtime state: its backend and its address and port.</summary>
internal readonly record struct EndpointKey(BackendKey Backend, BackendEndpoint Endpoint);

/// <summary>
/// How passive health treats one backend's endpoints: the backend's <see cref="BackendPolicy.PassiveHealthCheck"/>
/// when a policy sets one, else the global settings of <see cref="ProxyOptions"/>.
/// </summary>
/// <param name="ConsecutiveFailures">Consecutive failed connects that eject an endpoint; 0 never ejects.</param>
/// <param name="BaseEjectionTime">The first ejection's length; the n-th in a row lasts n times this.</param>
/// <param name="MaxEjectionTime">The longest an ejection lasts.</param>
internal sealed record PassiveHealthSettings(int ConsecutiveFailures, TimeSpan BaseEjectionTime, TimeSpan MaxEjectionTime)
{
    /// <summary>
    /// Envoy's ejection sweep interval: an ejection ends at a whole number of intervals after it started (its length
    /// rounded up to a multiple of this). Zero (the global settings) for exactly the ejection time.
    /// </summary>
    public TimeSpan Interval { get; init; }

    /// <summary>The most endpoints of the backend ejected at once, in percent; one may always be. 100 (the global settings) for no limit.</summary>
    public int MaxEjectionPercent { get; init; } = 100;

    public static PassiveHealthSettings From(ProxyOptions options) =>
        new(options.PassiveHealthConsecutiveFailures, options.PassiveHealthEjectionTime, options.PassiveHealthMaxEjectionTime);

    /// <summary>The settings for a backend: its policy's passive health check, else <paramref name="global"/>.</summary>
    public static PassiveHealthSettings For(RouteBackend backend, PassiveHealthSettings global) =>
        backend.Policy.PassiveHealthCheck is { } policy
            ? new(policy.ConsecutiveFailures, policy.BaseEjectionTime, global.MaxEjectionTime) { Interval = policy.Interval, MaxEjectionPercent = policy.MaxEjectionPercent }
            : global;

    /// <summary>The most of <paramref name="endpoints"/> endpoints that may be ejected at once (at least one).</summary>
    public int MaxEjected(int endpoints) => MaxEjectionPercent >= 100 ? endpoints : Math.Max(1, endpoints * MaxEjectionPercent / 100);

    /// <summary>The n-th ejection's length: n × base, at most the maximum, rounded up to whole intervals.</summary>
    public TimeSpan EjectionLength(int n)
    {
        // Saturating: n × base stays below the maximum even for absurd settings (no overflow into the past).
        var length = n > MaxEjectionTime.Ticks / Math.Max(1, BaseEjectionTime.Ticks)
            ? MaxEjectionTime
            : TimeSpan.FromTicks(Math.Min(BaseEjectionTime.Ticks * n, MaxEjectionTime.Ticks));
        if (Interval > TimeSpan.Zero && length.Ticks % Interval.Ticks != 0 && length < TimeSpan.MaxValue - Interval)
        {
            length = TimeSpan.FromTicks(((length.Ticks / Interval.Ticks) + 1) * Interval.Ticks);
        }

        return length;
    }
}

/// <summary>
/// What the proxy knows about one backend Service port, shared by every listener that routes to it and kept across
/// routing-table updates while any route still names it: the round-robin counter, and a version that moves whenever
/// one of its endpoints is ejected, so that each listener's cached set of available endpoints knows to refresh.
/// </summary>
internal sealed class BackendHealth(BackendKey key)
{
    private int _version;
    private int _connections;
    private MaglevTable? _maglev;

    public BackendKey Key { get; } = key;

    public LoadBalancing.BackendCounter Counter { get; } = new();

    public int Version => Volatile.Read(ref _version);

    public void Changed() => Interlocked.Increment(ref _version);

    /// <summary>Client connections to the backend now (picking, connecting or relaying), across every listener of this replica.</summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>
    /// Counts a client connection to the backend, unless <paramref name="limit"/> are open already (the backend's
    /// circuit breaker; exact under concurrency). Every admitted connection must <see cref="Leave"/>.
    /// </summary>
    /// <param name="limit">The cap, or null for none.</param>
    /// <returns>Whether the connection was admitted.</returns>
    public bool TryAdmit(long? limit)
    {
        if (limit is not { } max)
        {
            Interlocked.Increment(ref _connections);
            return true;
        }

        var current = Volatile.Read(ref _connections);
        while (current < max)
        {
            var seen = Interlocked.CompareExchange(ref _connections, current + 1, current);
            if (seen == current)
            {
                return true;
            }

            current = seen;
        }

        return false;
    }

    /// <summary>A connection admitted by <see cref="TryAdmit"/> has ended.</summary>
    public void Leave() => Interlocked.Decrement(ref _connections);

    /// <summary>
    /// The Maglev table over <paramref name="endpoints"/>: the last one built for this backend when it was built over
    /// the same endpoints and size (so a reload, or another listener, does not build it again), a new one otherwise.
    /// </summary>
    public MaglevTable Maglev(BackendEndpoint[] endpoints, int size)
    {
        var table = Volatile.Read(ref _maglev);
        if (table is not null && table.Size == size && (ReferenceEquals(table.Endpoints, endpoints) || table.Endpoints.AsSpan().SequenceEqual(endpoints)))
        {
            return table;
        }

        table = MaglevTable.Build(endpoints, size);
        Volatile.Write(ref _maglev, table);
        return table;
    }
}

/// <summary>
/// The runtime state of one endpoint of one backend: open connections, consecutive connect failures, the ejection
/// deadline and counts. Its identity (<see cref="EndpointKey"/>) survives routing-table updates for as long as the
/// endpoint stays listed; an endpoint that leaves and comes back starts afresh. Every field is updated with
/// <see cref="Interlocked"/> or volatile access: the connection path takes no lock, and a successful connect to a
/// healthy endpoint writes nothing but the connection count.
/// </summary>
internal sealed class EndpointState
{
    /// <summary>The <see cref="_ejectedUntil"/> of an endpoint never ejected.</summary>
    private const long NotEjected = long.MinValue;

    private readonly TimeProvider _time;
    private int _active;
    private int _consecutiveFailures;
    private int _ejectionsInARow;
    private long _ejectedUntil = NotEjected;
    private long _ejections;
    private long _failures;
    private volatile string? _ejectionReason;
    private volatile Health.ActiveHealthState? _activeHealth;

    public EndpointState(EndpointKey key, BackendHealth backend, TimeProvider time)
    {
        Key = key;
        Backend = backend;
        _time = time;
        Address = $"{key.Endpoint.Address}:{key.Endpoint.Port.ToString(CultureInfo.InvariantCulture)}";
        EndPoint = System.Net.IPAddress.TryParse(key.Endpoint.Address, out var ip)
            ? new System.Net.IPEndPoint(ip, key.Endpoint.Port)
            : new System.Net.DnsEndPoint(key.Endpoint.Address, key.Endpoint.Port);
        MetricTags =
        [
            new("backend_namespace", key.Backend.Namespace),
            new("backend_name", key.Backend.Name),
            new("backend_port", key.Backend.Port?.ToString(CultureInfo.InvariantCulture) ?? string.Empty),
            new("endpoint", Address),
        ];
    }

    public EndpointKey Key { get; }

    public BackendHealth Backend { get; }

    /// <summary>The endpoint as <c>address:port</c>, as logs and metrics show it.</summary>
    public string Address { get; }

    /// <summary>
    /// The endpoint to connect to, parsed once (an IP address, or a name to resolve): every connection to it shares
    /// this one object, which the upstream socket keeps as its remote end.
    /// </summary>
    public System.Net.EndPoint EndPoint { get; }

    /// <summary>The per-endpoint metric labels: the backend Service and port, and <c>endpoint</c> = address:port.</summary>
    public KeyValuePair<string, object?>[] MetricTags { get; }

    /// <summary>Connections open (or opening) to this endpoint now, across every listener.</summary>
    public int ActiveConnections => Volatile.Read(ref _active);

    /// <summary>Connect failures since the last success (reset to 0 by an ejection, too).</summary>
    public int ConsecutiveFailures => Volatile.Read(ref _consecutiveFailures);

    /// <summary>How many times the endpoint was ejected since it was first listed.</summary>
    public long Ejections => Interlocked.Read(ref _ejections);

    /// <summary>Connect attempts to the endpoint that failed since it was first listed.</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>When the current (or last) ejection ends, as a <see cref="TimeProvider"/> timestamp; <see cref="long.MinValue"/> if never ejected.</summary>
    public long EjectedUntil => Volatile.Read(ref _ejectedUntil);

    /// <summary>Why the endpoint was last ejected (the last failed connect's error), or null if it never was.</summary>
    public string? EjectionReason => _ejectionReason;

    /// <summary>The endpoint's active health under the check applied last (null when no active check probes it).</summary>
    public Health.ActiveHealthState? Active
    {
        get => _activeHealth;
        set => _activeHealth = value;
    }

    /// <summary>Neither ejected by passive health nor down by its active check (as <c>/status</c> and the healthy gauge show it).</summary>
    public bool IsHealthy() => !IsEjected() && _activeHealth is not { IsUp: false };

    /// <summary>Whether the endpoint is ejected at <paramref name="now"/> (a <see cref="TimeProvider"/> timestamp).</summary>
    public bool IsEjected(long now) => Volatile.Read(ref _ejectedUntil) > now;

    /// <summary>Whether the endpoint is ejected now.</summary>
    public bool IsEjected() => IsEjected(_time.GetTimestamp());

    /// <summary>A connect to the endpoint is starting: it counts as an open connection until <see cref="Release"/>.</summary>
    public void Acquire() => Interlocked.Increment(ref _active);

    /// <summary>
    /// Counts a connection as <see cref="Acquire"/> does, unless <paramref name="limit"/> connections are open already
    /// (a per-endpoint cap: exact under concurrency, a compare-and-swap loop).
    /// </summary>
    /// <returns>Whether the connection was counted.</returns>
    public bool TryAcquire(long limit)
    {
        var current = Volatile.Read(ref _active);
        while (current < limit)
        {
            var seen = Interlocked.CompareExchange(ref _active, current + 1, current);
            if (seen == current)
            {
                return true;
            }

            current = seen;
        }

        return false;
    }

    /// <summary>A connection counted by <see cref="Acquire"/> has closed (or its connect failed).</summary>
    public void Release() => Interlocked.Decrement(ref _active);

    /// <summary>
    /// A connect succeeded: the failure count and the ejection multiplier start again from nothing, and an endpoint
    /// that was ejected (and tried in panic mode) is back in service at once.
    /// </summary>
    public void Succeeded()
    {
        // Read first, so that the common case (a healthy endpoint never ejected) writes no shared cache line.
        if (Volatile.Read(ref _ejectedUntil) != NotEjected)
        {
            var wasEjected = IsEjected();
            Volatile.Write(ref _ejectedUntil, NotEjected);
            if (wasEjected)
            {
                Backend.Changed();
            }
        }

        if (Volatile.Read(ref _consecutiveFailures) != 0)
        {
            Interlocked.Exchange(ref _consecutiveFailures, 0);
        }

        if (Volatile.Read(ref _ejectionsInARow) != 0)
        {
            Interlocked.Exchange(ref _ejectionsInARow, 0);
        }
    }

    /// <summary>
    /// A connect failed (refused, timed out, reset). After <see cref="PassiveHealthSettings.ConsecutiveFailures"/> in a
    /// row the endpoint is ejected, for the base ejection time times the number of ejections since its last success,
    /// capped at the maximum. A failure while ejected (a connect that started before the ejection) changes nothing.
    /// When <paramref name="backend"/> already has as many endpoints ejected as its maximum ejection percentage
    /// allows, the endpoint is not ejected and its failures start counting again.
    /// </summary>
    /// <param name="settings">The backend's passive health settings.</param>
    /// <param name="reason">The failed connect's error, kept for <c>/status</c> when it ejects the endpoint.</param>
    /// <param name="backend">The backend whose endpoints the maximum ejection percentage counts, or null for no limit.</param>
    /// <returns>How long the endpoint is now ejected for, or null when this failure did not eject it.</returns>
    public TimeSpan? Failed(PassiveHealthSettings settings, string? reason = null, BackendRuntime? backend = null)
    {
        Interlocked.Increment(ref _failures);
        var now = _time.GetTimestamp();
        if (IsEjected(now))
        {
            return null;
        }

        var failures = Interlocked.Increment(ref _consecutiveFailures);

        // Exactly one of concurrent failures sees the threshold, so an endpoint is ejected once per run of failures.
        if (settings.ConsecutiveFailures <= 0 || failures != settings.ConsecutiveFailures)
        {
            return null;
        }

        if (backend is not null && settings.MaxEjectionPercent < 100)
        {
            // Rare (a run of failures reaching the threshold), so a lock: two endpoints ejected at once must not both
            // see room for one more.
            lock (backend.Health)
            {
                if (backend.EjectedCount(now) >= settings.MaxEjected(backend.States.Length))
                {
                    Interlocked.Exchange(ref _consecutiveFailures, 0);
                    return null;
                }

                return Eject(settings, reason, now);
            }
        }

        return Eject(settings, reason, now);
    }

    private TimeSpan Eject(PassiveHealthSettings settings, string? reason, long now)
    {
        var inARow = Interlocked.Increment(ref _ejectionsInARow);
        var length = settings.EjectionLength(inARow);
        var ticks = length.TotalSeconds * _time.TimestampFrequency;
        var until = ticks >= long.MaxValue - (double)now ? long.MaxValue : now + (long)ticks;
        _ejectionReason = reason;
        Volatile.Write(ref _ejectedUntil, until);
        Interlocked.Increment(ref _ejections);

        // After the ejection the endpoint gets a fresh run: the same number of failures ejects it again, for longer.
        Interlocked.Exchange(ref _consecutiveFailures, 0);
        Backend.Changed();
        return length;
    }
}
