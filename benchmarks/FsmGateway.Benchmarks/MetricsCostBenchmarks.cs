using BenchmarkDotNet.Attributes;
using FsmGateway.Resources;
using FsmGateway.Routing;
using FsmGateway.Transport.Proxy;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using Prometheus;

namespace FsmGateway.Benchmarks;

/// <summary>
/// What recording one relayed connection's measurements costs (ADR 0007): accepted and active, the upstream connect
/// time, four chunks of bytes each counted per listener and per backend, the connection's duration, and its close
/// with a reason; that is what <c>GatewayProxy</c> records for a short connection. Four ways:
/// <list type="bullet">
/// <item><c>Off</c>: the gateway's instruments with nothing listening (<c>--no-metrics</c>).</item>
/// <item><c>OpenTelemetry</c>: the same instruments, aggregated by the OpenTelemetry SDK for its Prometheus exporter (what the host runs).</item>
/// <item><c>PrometheusNet</c>: prometheus-net's own counters and histograms with the same labels, children bound once per
/// listener and backend as the gateway binds its tag sets: the alternative ADR 0007 weighed.</item>
/// <item><c>PrometheusNetMeterAdapter</c>: the gateway's instruments, read by prometheus-net's adapter for System.Diagnostics.Metrics.</item>
/// </list>
/// </summary>
[MemoryDiagnoser]
public class MetricsCostBenchmarks
{
    private static readonly TimeSpan ConnectTime = TimeSpan.FromMilliseconds(0.4);
    private static readonly TimeSpan Lifetime = TimeSpan.FromMilliseconds(3);

    private ProxyMetrics _metrics = null!;
    private ListenerTags _listener = null!;
    private BackendTags _backend = null!;
    private MeterProvider? _provider;
    private IDisposable? _adapter;
    private PrometheusNetConnection? _prometheusNet;

    /// <summary>Which exporter aggregates the measurements.</summary>
    public enum Exporter
    {
        /// <summary>Nothing listens.</summary>
        Off,

        /// <summary>The OpenTelemetry SDK with the Prometheus exporter.</summary>
        OpenTelemetry,

        /// <summary>prometheus-net's native metrics.</summary>
        PrometheusNet,

        /// <summary>prometheus-net's MeterAdapter on the System.Diagnostics.Metrics instruments.</summary>
        PrometheusNetMeterAdapter,
    }

    [Params(Exporter.Off, Exporter.OpenTelemetry, Exporter.PrometheusNet, Exporter.PrometheusNetMeterAdapter)]
    public Exporter Via { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var endpoints = EquatableArray.Create<BackendEndpoint>([new BackendEndpoint("127.0.0.1", 9000)]);
        var backend = new RouteBackend("apps", "echo", 9000, Weight: 1, endpoints, Problem: null);
        var route = new ResourceKey(ResourceKind.TcpRoute, "apps", "echo");
        var listener = new ListenerRoute(new ResourceKey(ResourceKind.Gateway, "apps", "gw"), "echo", EquatableArray.Create<string>([]), 8000, route, EquatableArray.Create([backend]));
        switch (Via)
        {
            case Exporter.OpenTelemetry:
                _provider = Sdk.CreateMeterProviderBuilder().AddMeter(ProxyMetrics.MeterName).AddPrometheusExporter().Build();
                break;
            case Exporter.PrometheusNetMeterAdapter:
                var registry = Metrics.NewCustomRegistry();
                _adapter = MeterAdapter.StartListening(new MeterAdapterOptions { InstrumentFilterPredicate = static i => i.Meter.Name == ProxyMetrics.MeterName, Registry = registry });
                break;
            case Exporter.PrometheusNet:
                _prometheusNet = new PrometheusNetConnection(Metrics.WithCustomRegistry(Metrics.NewCustomRegistry()));
                break;
        }

        _metrics = new ProxyMetrics(meterFactory: null);
        _listener = new ListenerTags(listener);
        _backend = new BackendTags(route, backend);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _provider?.Dispose();
        _adapter?.Dispose();
        _metrics.Dispose();
    }

    /// <summary>One short connection's measurements.</summary>
    [Benchmark]
    public void OneConnection()
    {
        if (_prometheusNet is { } native)
        {
            native.Record();
            return;
        }

        _metrics.Accepted(_listener);
        _metrics.Connected(_backend, ConnectTime);
        for (var i = 0; i < 2; i++)
        {
            _metrics.Transferred(_listener, _backend, upload: true, 100);
            _metrics.Transferred(_listener, _backend, upload: false, 100);
        }

        _metrics.Relayed(_backend, Lifetime);
        _metrics.Closed(_listener, TerminationReason.ClientClosed);
    }

    /// <summary>The same measurements in prometheus-net's own types, children bound once, as the gateway would.</summary>
    private sealed class PrometheusNetConnection
    {
        private readonly Counter.Child _accepted;
        private readonly Gauge.Child _active;
        private readonly Counter.Child _closed;
        private readonly Counter.Child _upstream;
        private readonly Counter.Child _downstream;
        private readonly Counter.Child _backendUpstream;
        private readonly Counter.Child _backendDownstream;
        private readonly Counter.Child _backendConnections;
        private readonly Histogram.Child _connectDuration;
        private readonly Histogram.Child _connectionDuration;

        public PrometheusNetConnection(IMetricFactory factory)
        {
            string[] listener = ["gateway_namespace", "gateway_name", "listener", "port"];
            string[] listenerValues = ["apps", "gw", "echo", "8000"];
            string[] backend = ["route_namespace", "route_name", "backend_namespace", "backend_name", "backend_port"];
            string[] backendValues = ["apps", "echo", "apps", "echo", "9000"];
            _accepted = factory.CreateCounter("fsmgateway_connections_accepted_total", "accepted", listener).WithLabels(listenerValues);
            _active = factory.CreateGauge("fsmgateway_connections_active", "active", listener).WithLabels(listenerValues);
            _closed = factory.CreateCounter("fsmgateway_connections_closed_total", "closed", [.. listener, "reason"]).WithLabels([.. listenerValues, "client_closed"]);
            var bytes = factory.CreateCounter("fsmgateway_bytes_total", "bytes", [.. listener, "direction"]);
            _upstream = bytes.WithLabels([.. listenerValues, "upstream"]);
            _downstream = bytes.WithLabels([.. listenerValues, "downstream"]);
            var backendBytes = factory.CreateCounter("fsmgateway_backend_bytes_total", "bytes", [.. backend, "direction"]);
            _backendUpstream = backendBytes.WithLabels([.. backendValues, "upstream"]);
            _backendDownstream = backendBytes.WithLabels([.. backendValues, "downstream"]);
            _backendConnections = factory.CreateCounter("fsmgateway_backend_connections_total", "connections", backend).WithLabels(backendValues);
            _connectDuration = factory.CreateHistogram(
                "fsmgateway_upstream_connect_duration_seconds", "connect", new Prometheus.HistogramConfiguration { LabelNames = backend, Buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] }).WithLabels(backendValues);
            _connectionDuration = factory.CreateHistogram(
                "fsmgateway_connection_duration_seconds", "duration", new Prometheus.HistogramConfiguration { LabelNames = backend, Buckets = [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400] }).WithLabels(backendValues);
        }

        public void Record()
        {
            _accepted.Inc();
            _active.Inc();
            _backendConnections.Inc();
            _connectDuration.Observe(ConnectTime.TotalSeconds);
            for (var i = 0; i < 2; i++)
            {
                _upstream.Inc(100);
                _backendUpstream.Inc(100);
                _downstream.Inc(100);
                _backendDownstream.Inc(100);
            }

            _connectionDuration.Observe(Lifetime.TotalSeconds);
            _closed.Inc();
            _active.Dec();
        }
    }
}
