using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net.Sockets;
using FsmGateway.Resources;
using FsmGateway.Routing;

namespace FsmGateway.Transport.Proxy;

/// <summary>
/// The proxy's instruments, on the meter <c>FsmGateway.Transport</c>. Listener instruments carry the listener's
/// Gateway, name and port; backend instruments the route and the backend Service. The tag sets are built once per
/// listener and backend when a route model is built (<see cref="ListenerTags"/>, <see cref="BackendTags"/>), so
/// recording allocates and boxes nothing. Never a client address or port: labels stay bounded.
/// </summary>
internal sealed class ProxyMetrics : IDisposable
{
    public const string MeterName = "FsmGateway.Transport";

    private static readonly double[] ConnectBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
    private static readonly double[] DurationBuckets = [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400];

    private readonly Meter _meter;
    private readonly Counter<long> _accepted;
    private readonly Counter<long> _closed;
    private readonly Counter<long> _connectFailures;
    private readonly UpDownCounter<long> _active;
    private readonly Counter<long> _bytes;
    private readonly Counter<long> _backendConnections;
    private readonly Counter<long> _backendBytes;
    private readonly Histogram<double> _connectDuration;
    private readonly Histogram<double> _connectionDuration;
    private readonly Counter<long> _accessLogWritten;
    private readonly Counter<long> _accessLogDropped;
    private readonly Counter<long> _ejections;
    private readonly Counter<long> _panicConnections;

    public ProxyMetrics(IMeterFactory? meterFactory)
    {
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _accepted = _meter.CreateCounter<long>("fsmgateway.connections.accepted", "{connection}", "Client connections accepted.");
        _closed = _meter.CreateCounter<long>("fsmgateway.connections.closed", "{connection}", "Client connections closed, by reason (client_closed, backend_closed, client_reset, backend_reset, idle_timeout, max_duration, drain, refused_*, error).");
        _connectFailures = _meter.CreateCounter<long>("fsmgateway.upstream.connect_failures", "{attempt}", "Upstream connect attempts that failed, by reason (refused, timed_out, reset, other).");
        _active = _meter.CreateUpDownCounter<long>("fsmgateway.connections.active", "{connection}", "Client connections open now.");
        _bytes = _meter.CreateCounter<long>("fsmgateway.bytes", "By", "Bytes relayed, tagged by direction (upstream: client to backend).");
        _backendConnections = _meter.CreateCounter<long>("fsmgateway.backend.connections", "{connection}", "Connections relayed to the backend (its upstream connect succeeded).");
        _backendBytes = _meter.CreateCounter<long>("fsmgateway.backend.bytes", "By", "Bytes relayed to and from the backend, tagged by direction (upstream: client to backend).");
        _connectDuration = _meter.CreateHistogram(
            "fsmgateway.upstream.connect.duration", "s", "Time to open a successful upstream connection.", tags: null, new InstrumentAdvice<double> { HistogramBucketBoundaries = ConnectBuckets });
        _connectionDuration = _meter.CreateHistogram(
            "fsmgateway.connection.duration", "s", "Lifetime of relayed connections, from accept to close.", tags: null, new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });
        _accessLogWritten = _meter.CreateCounter<long>("fsmgateway.access_log.written", "{line}", "Access-log lines written to the sink.");
        _accessLogDropped = _meter.CreateCounter<long>("fsmgateway.access_log.dropped", "{line}", "Access-log lines dropped: the queue was full (the sink is slower than the traffic), or the sink could not be opened or written.");
        _ejections = _meter.CreateCounter<long>("fsmgateway.backend.ejections", "{ejection}", "Endpoints of the backend ejected by passive health (consecutive failed connects).");
        _panicConnections = _meter.CreateCounter<long>("fsmgateway.backend.panic_connections", "{connection}", "Connections sent to the backend while every endpoint was ejected (panic mode: all are tried).");
    }

    public void AccessLogWritten(int lines) => _accessLogWritten.Add(lines);

    public void AccessLogDropped(int lines) => _accessLogDropped.Add(lines);

    /// <summary>
    /// Adds the per-endpoint instruments (behind <see cref="ProxyOptions.EndpointMetrics"/>): observed from the endpoint
    /// states at each collection, one series per endpoint being served, labelled by backend and <c>endpoint</c>.
    /// </summary>
    public void ObserveEndpoints(EndpointRegistry registry)
    {
        _meter.CreateObservableUpDownCounter(
            "fsmgateway.endpoint.connections.active", () => Observe(registry, static s => s.ActiveConnections), "{connection}", "Connections open (or opening) to the endpoint now, across listeners.");
        _meter.CreateObservableGauge(
            "fsmgateway.endpoint.healthy", () => Observe(registry, static s => s.IsEjected() ? 0 : 1), unit: null, "1 while new connections may pick the endpoint, 0 while passive health has it ejected.");
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

    public void Accepted(ListenerTags tags)
    {
        _accepted.Add(1, in tags.Listener);
        _active.Add(1, in tags.Listener);
    }

    public void Closed(ListenerTags tags, TerminationReason reason)
    {
        _active.Add(-1, in tags.Listener);
        _closed.Add(1, in tags.Closed[(int)reason]);
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
        _backendConnections.Add(1, in tags.Backend);
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
        if (_bytes.Enabled)
        {
            _bytes.Add(bytes, in upload ? ref listener.Upstream : ref listener.Downstream);
        }

        if (backend is not null && _backendBytes.Enabled)
        {
            _backendBytes.Add(bytes, in upload ? ref backend.Upstream : ref backend.Downstream);
        }
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
#pragma warning restore SA1401, CA1051

    public BackendTags(ResourceKey? route, RouteBackend backend)
    {
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
    }
}
