using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net.Sockets;
using FsmGateway.Resources;
using FsmGateway.Routing;
using FsmGateway.Transport.Concurrency;

namespace FsmGateway.Transport.Proxy;

/// <summary>
/// The proxy's instruments, on the meter <c>FsmGateway.Transport</c>. Listener instruments carry the listener's
/// Gateway, name and port; backend instruments the route and the backend Service. The tag sets are built once per
/// listener and backend when a route model is built (<see cref="ListenerTags"/>, <see cref="BackendTags"/>), so
/// recording allocates and boxes nothing. Never a client address or port: labels stay bounded. The counters on the
/// connection path are <see cref="ListenerTotals"/> and <see cref="BackendTotals"/>, striped per core (<see cref="StripedCounters"/>) and read
/// by observable instruments at collection; the rare ones (connect failures, ejections) and the histograms are
/// plain instruments.
/// </summary>
internal sealed class ProxyMetrics : IDisposable
{
    public const string MeterName = "FsmGateway.Transport";

    private static readonly double[] ConnectBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
    private static readonly double[] DurationBuckets = [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400];

    private readonly Meter _meter;
        private readonly Counter<long> _connectFailures;
    private readonly ConcurrentDictionary<(string, string, string, int), ListenerTotals> _listenerTotals = new();
    private readonly ConcurrentDictionary<(string, string, string, string, int?), BackendTotals> _backendTotals = new();
    private readonly Histogram<double> _connectDuration;
    private readonly Histogram<double> _connectionDuration;
    private readonly Counter<long> _accessLogWritten;
    private readonly Counter<long> _accessLogDropped;
    private readonly Counter<long> _ejections;
    private readonly Counter<long> _panicConnections;
    private readonly Counter<long> _healthTransitions;
    private readonly Counter<long> _panicTransitions;

    public ProxyMetrics(IMeterFactory? meterFactory)
    {
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        // The counters on the connection path (accepted, active, closed, bytes, backend connections and bytes) are
        // totals the proxy adds to with one Interlocked.Add, published as observable instruments that the exporter
        // reads only when scraped: the SDK's per-measurement path (a tag-set lookup per call) cost 6-7 % of the
        // connection and request rates (ADR 0007). The totals are kept per label set for the process's life, so a
        // reload that rebuilds the tag sets never resets a counter.
        _meter.CreateObservableCounter("fsmgateway.connections.accepted", () => ObserveListeners(static (t, emit) => emit(t.Accepted, in t.Tags.Listener)), "{connection}", "Client connections accepted.");
        _meter.CreateObservableCounter(
            "fsmgateway.connections.closed",
            () => ObserveListeners(static (t, emit) =>
            {
                for (var i = 0; i < t.Tags.Closed.Length; i++)
                {
                    if (t.Closed(i) is > 0 and var closed)
                    {
                        emit(closed, in t.Tags.Closed[i]);
                    }
                }
            }),
            "{connection}",
            "Client connections closed, by reason (client_closed, backend_closed, client_reset, backend_reset, idle_timeout, max_duration, drain, refused_*, error).");
        _connectFailures = _meter.CreateCounter<long>("fsmgateway.upstream.connect_failures", "{attempt}", "Upstream connect attempts that failed, by reason (refused, timed_out, reset, other).");
        _meter.CreateObservableUpDownCounter("fsmgateway.connections.active", () => ObserveListeners(static (t, emit) => emit(t.Active, in t.Tags.Listener)), "{connection}", "Client connections open now.");
        _meter.CreateObservableCounter(
            "fsmgateway.bytes",
            () => ObserveListeners(static (t, emit) =>
            {
                emit(t.UpstreamBytes, in t.Tags.Upstream, skipZero: true);
                emit(t.DownstreamBytes, in t.Tags.Downstream, skipZero: true);
            }),
            "By",
            "Bytes relayed, tagged by direction (upstream: client to backend).");
        _meter.CreateObservableCounter("fsmgateway.backend.connections", () => ObserveBackends(static (t, emit) => emit(t.Connections, in t.Tags.Backend, skipZero: true)), "{connection}", "Connections relayed to the backend (its upstream connect succeeded).");
        _meter.CreateObservableCounter(
            "fsmgateway.backend.bytes",
            () => ObserveBackends(static (t, emit) =>
            {
                emit(t.UpstreamBytes, in t.Tags.Upstream, skipZero: true);
                emit(t.DownstreamBytes, in t.Tags.Downstream, skipZero: true);
            }),
            "By",
            "Bytes relayed to and from the backend, tagged by direction (upstream: client to backend).");
        _connectDuration = _meter.CreateHistogram(
            "fsmgateway.upstream.connect.duration", "s", "Time to open a successful upstream connection.", tags: null, new InstrumentAdvice<double> { HistogramBucketBoundaries = ConnectBuckets });
        _connectionDuration = _meter.CreateHistogram(
            "fsmgateway.connection.duration", "s", "Lifetime of relayed connections, from accept to close.", tags: null, new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });
        _accessLogWritten = _meter.CreateCounter<long>("fsmgateway.access_log.written", "{line}", "Access-log lines written to the sink.");
        _accessLogDropped = _meter.CreateCounter<long>("fsmgateway.access_log.dropped", "{line}", "Access-log lines dropped: the queue was full (the sink is slower than the traffic), or the sink could not be opened or written.");
        _ejections = _meter.CreateCounter<long>("fsmgateway.backend.ejections", "{ejection}", "Endpoints of the backend ejected by passive health (consecutive failed connects).");
        _panicConnections = _meter.CreateCounter<long>("fsmgateway.backend.panic_connections", "{connection}", "Connections sent to the backend in panic mode (fewer endpoints healthy than its panic threshold, by default none: all are tried).");
        _panicTransitions = _meter.CreateCounter<long>("fsmgateway.backend.panic_transitions", "{transition}", "Times the backend entered (state=entered) or left (state=left) panic mode.");
        _healthTransitions = _meter.CreateCounter<long>(
            "fsmgateway.backend.health_transitions", "{transition}", "Endpoints of the backend marked down (state=down) or up again (state=up) by active health checks.");
    }

    public void AccessLogWritten(int lines) => _accessLogWritten.Add(lines);

    public void AccessLogDropped(int lines) => _accessLogDropped.Add(lines);

    /// <summary>
    /// Adds the per-endpoint instruments (behind <see cref="ProxyOptions.EndpointMetrics"/>): observed from the endpoint
    /// states at each collection, one series per endpoint being served, labelled by backend and <c>endpoint</c>.
    /// </summary>
    /// <summary>Exports how many bytes the Linux transport relayed with <c>splice(2)</c>: zero-copy, never in the process's memory.</summary>
    public void ObserveSplice(Linux.LinuxTransport transport) =>
        _meter.CreateObservableCounter("fsmgateway.relay.spliced_bytes", () => transport.SplicedBytes, "By", "Bytes the Linux transport relayed zero-copy with splice(2), both directions (they are in fsmgateway.bytes too).");

    public void ObserveEndpoints(EndpointRegistry registry)
    {
        _meter.CreateObservableUpDownCounter(
            "fsmgateway.endpoint.connections.active", () => Observe(registry, static s => s.ActiveConnections), "{connection}", "Connections open (or opening) to the endpoint now, across listeners.");
        _meter.CreateObservableGauge(
            "fsmgateway.endpoint.healthy", () => Observe(registry, static s => s.IsHealthy() ? 1 : 0), unit: null, "1 while new connections may pick the endpoint, 0 while passive health has it ejected or active health checks have it down (panic mode may still use it).");
        _meter.CreateObservableCounter(
            "fsmgateway.endpoint.ejections", () => Observe(registry, static s => s.Ejections), "{ejection}", "Times passive health ejected the endpoint since it was first listed.");
    }

    private static IEnumerable<Measurement<T>> Observe<T>(EndpointRegistry registry, Func<EndpointState, T> value)
        where T : struct
    {
        foreach (var state in registry.Endpoints)
        {
            yield return new Measurement<T>(value(state), state.MetricTags);
        }
    }

    public void Ejected(BackendTags tags) => _ejections.Add(1, in tags.Backend);

    public void Panic(BackendTags tags) => _panicConnections.Add(1, in tags.Backend);

    public void PanicChanged(BackendTags tags, bool entered) => _panicTransitions.Add(1, in entered ? ref tags.PanicEntered : ref tags.PanicLeft);

    /// <summary>An active health transition, with the backend Service's tags and <c>state</c> (up or down), built once per probed endpoint.</summary>
    public void HealthTransition(KeyValuePair<string, object?>[] tags) => _healthTransitions.Add(1, tags);

    // The totals are counted whether or not anything listens: a few Interlocked adds per connection, each on the
    // calling core's own cache line, and any one of the observable instruments may be the one a listener enabled.
    public void Accepted(ListenerTags tags)
    {
        var totals = Totals(tags).Counters;
        totals.Increment(ListenerTotals.AcceptedCounter);
        totals.Increment(ListenerTotals.ActiveCounter);
    }

    public void Closed(ListenerTags tags, TerminationReason reason)
    {
        var totals = Totals(tags).Counters;
        totals.Decrement(ListenerTotals.ActiveCounter);
        totals.Increment(ListenerTotals.ClosedCounter + (int)reason);
    }

    public void ConnectFailed(BackendTags tags, Exception error, bool timedOut)
    {
        var reason = timedOut || error is SocketException { SocketErrorCode: SocketError.TimedOut } ? tags.TimedOut
            : error is SocketException { SocketErrorCode: SocketError.ConnectionRefused } ? tags.Refused
            : error is SocketException { SocketErrorCode: SocketError.ConnectionReset } ? tags.Reset
            : tags.Other;
        _connectFailures.Add(1, in reason);
    }

    public void Connected(BackendTags tags, TimeSpan connectTime)
    {
        Totals(tags).Counters.Increment(BackendTotals.ConnectionsCounter);

        if (_connectDuration.Enabled)
        {
            _connectDuration.Record(connectTime.TotalSeconds, in tags.Backend);
        }
    }

    public void Relayed(BackendTags tags, TimeSpan lifetime)
    {
        if (_connectionDuration.Enabled)
        {
            _connectionDuration.Record(lifetime.TotalSeconds, in tags.Backend);
        }
    }

    public void Transferred(ListenerTags listener, BackendTags? backend, bool upload, int bytes)
    {
        Totals(listener).Counters.Add(upload ? ListenerTotals.UpstreamBytesCounter : ListenerTotals.DownstreamBytesCounter, bytes);
        if (backend is not null)
        {
            Totals(backend).Counters.Add(upload ? BackendTotals.UpstreamBytesCounter : BackendTotals.DownstreamBytesCounter, bytes);
        }
    }

    /// <summary>The listener's totals: the same object for every tag set with the same labels, for the process's life.</summary>
    private ListenerTotals Totals(ListenerTags tags) =>
        tags.Totals ??= _listenerTotals.GetOrAdd((tags.Route.Gateway.Namespace, tags.Route.Gateway.Name, tags.Route.ListenerName, tags.Route.Port), static (_, t) => new ListenerTotals(t), tags);

    private BackendTotals Totals(BackendTags tags) =>
        tags.Totals ??= _backendTotals.GetOrAdd(tags.Key, static (_, t) => new BackendTotals(t), tags);

    private delegate void Emit(long value, in TagList tags, bool skipZero = false);

    private IEnumerable<Measurement<long>> ObserveListeners(Action<ListenerTotals, Emit> observe) => Observe(_listenerTotals.Values, observe);

    private IEnumerable<Measurement<long>> ObserveBackends(Action<BackendTotals, Emit> observe) => Observe(_backendTotals.Values, observe);

    private static List<Measurement<long>> Observe<T>(IEnumerable<T> totals, Action<T, Emit> observe)
    {
        var measurements = new List<Measurement<long>>();
        foreach (var total in totals)
        {
            observe(total, (long value, in TagList tags, bool skipZero) =>
            {
                if (!skipZero || value != 0)
                {
                    measurements.Add(new Measurement<long>(value, in tags));
                }
            });
        }

        return measurements;
    }

    public void Dispose() => _meter.Dispose();
}

/// <summary>The tag sets of one listener's instruments, built once per route model.</summary>
internal sealed class ListenerTags
{
#pragma warning disable SA1401, CA1051 // Fields, so that the instruments take them by reference (TagList is a large struct).
    public TagList Listener;
    public TagList Upstream;
    public TagList Downstream;
#pragma warning restore SA1401, CA1051

    /// <summary>The listener's tags with <c>reason</c>, indexed by <see cref="TerminationReason"/>.</summary>
    public TagList[] Closed { get; }

    /// <summary>The listener these tags describe.</summary>
    public ListenerRoute Route { get; }

    /// <summary>The counters' totals for these labels, once the first connection was counted.</summary>
    public ListenerTotals? Totals { get; set; }

    public ListenerTags(ListenerRoute route)
    {
        Route = route;
        Listener = new TagList
        {
            { "gateway_namespace", route.Gateway.Namespace },
            { "gateway_name", route.Gateway.Name },
            { "listener", route.ListenerName },
            { "port", route.Port.ToString(CultureInfo.InvariantCulture) },
        };
        Closed = new TagList[Enum.GetValues<TerminationReason>().Length];
        foreach (var reason in Enum.GetValues<TerminationReason>())
        {
            Closed[(int)reason] = With(Listener, "reason", reason.Text());
        }

        Upstream = With(Listener, "direction", "upstream");
        Downstream = With(Listener, "direction", "downstream");
    }

    internal static TagList With(TagList tags, string key, string value)
    {
        var copy = tags;
        copy.Add(key, value);
        return copy;
    }
}

/// <summary>The tag sets of one backend's instruments (route and backend Service), built once per route model.</summary>
internal sealed class BackendTags
{
#pragma warning disable SA1401, CA1051 // Fields, so that the instruments take them by reference (TagList is a large struct).
    public TagList Backend;
    public TagList Refused;
    public TagList TimedOut;
    public TagList Reset;
    public TagList Other;
    public TagList Upstream;
    public TagList Downstream;
    public TagList PanicEntered;
    public TagList PanicLeft;
#pragma warning restore SA1401, CA1051

    /// <summary>The label values, which key the totals.</summary>
    public (string, string, string, string, int?) Key { get; }

    /// <summary>The counters' totals for these labels, once the first connection was counted.</summary>
    public BackendTotals? Totals { get; set; }

    public BackendTags(ResourceKey? route, RouteBackend backend)
    {
        Key = (route?.Namespace ?? string.Empty, route?.Name ?? string.Empty, backend.Namespace, backend.Name, backend.Port);
        Backend = new TagList
        {
            { "route_namespace", route?.Namespace ?? string.Empty },
            { "route_name", route?.Name ?? string.Empty },
            { "backend_namespace", backend.Namespace },
            { "backend_name", backend.Name },
            { "backend_port", backend.Port?.ToString(CultureInfo.InvariantCulture) ?? string.Empty },
        };
        Refused = ListenerTags.With(Backend, "reason", "refused");
        TimedOut = ListenerTags.With(Backend, "reason", "timed_out");
        Reset = ListenerTags.With(Backend, "reason", "reset");
        Other = ListenerTags.With(Backend, "reason", "other");
        Upstream = ListenerTags.With(Backend, "direction", "upstream");
        Downstream = ListenerTags.With(Backend, "direction", "downstream");
        PanicEntered = ListenerTags.With(Backend, "state", "entered");
        PanicLeft = ListenerTags.With(Backend, "state", "left");
    }
}

/// <summary>A listener's counter totals, shared by every tag set with its labels, for the process's life; striped per core.</summary>
internal sealed class ListenerTotals(ListenerTags tags)
{
    public const int AcceptedCounter = 0;
    public const int ActiveCounter = 1;
    public const int UpstreamBytesCounter = 2;
    public const int DownstreamBytesCounter = 3;

    /// <summary>The first of the closed counters, one per <see cref="TerminationReason"/>.</summary>
    public const int ClosedCounter = 4;

    /// <summary>The counters, indexed by the constants above.</summary>
    public StripedCounters Counters { get; } = new(ClosedCounter + tags.Closed.Length);

    public long Accepted => Counters.Sum(AcceptedCounter);

    public long Active => Counters.Sum(ActiveCounter);

    public long UpstreamBytes => Counters.Sum(UpstreamBytesCounter);

    public long DownstreamBytes => Counters.Sum(DownstreamBytesCounter);

    /// <summary>The tag sets the totals are published with (the first route model's; the labels are the key).</summary>
    public ListenerTags Tags { get; } = tags;

    /// <summary>Closed connections with <see cref="TerminationReason"/> <paramref name="reason"/>.</summary>
    public long Closed(int reason) => Counters.Sum(ClosedCounter + reason);
}

/// <summary>A backend's counter totals, shared by every tag set with its labels, for the process's life; striped per core.</summary>
internal sealed class BackendTotals(BackendTags tags)
{
    public const int ConnectionsCounter = 0;
    public const int UpstreamBytesCounter = 1;
    public const int DownstreamBytesCounter = 2;

    /// <summary>The counters, indexed by the constants above.</summary>
    public StripedCounters Counters { get; } = new(3);

    public long Connections => Counters.Sum(ConnectionsCounter);

    public long UpstreamBytes => Counters.Sum(UpstreamBytesCounter);

    public long DownstreamBytes => Counters.Sum(DownstreamBytesCounter);

    /// <summary>The tag sets the totals are published with (the first route model's; the labels are the key).</summary>
    public BackendTags Tags { get; } = tags;
}
