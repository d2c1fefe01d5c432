using System.Diagnostics.Metrics;

namespace FsmGateway.Transport.Proxy;

/// <summary>The proxy's instruments, on the meter <c>FsmGateway.Transport</c>; each tagged with the listener port.</summary>
internal sealed class ProxyMetrics : IDisposable
{
    public const string MeterName = "FsmGateway.Transport";

    private readonly Meter _meter;
    private readonly Counter<long> _accepted;
    private readonly Counter<long> _rejected;
    private readonly Counter<long> _connectFailures;
    private readonly UpDownCounter<long> _active;
    private readonly Counter<long> _bytes;

    public ProxyMetrics(IMeterFactory? meterFactory)
    {
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _accepted = _meter.CreateCounter<long>("fsmgateway.connections.accepted", "{connection}", "Client connections accepted.");
        _rejected = _meter.CreateCounter<long>("fsmgateway.connections.rejected", "{connection}", "Client connections closed at once: no route, a backend that cannot serve, or every upstream connect failed.");
        _connectFailures = _meter.CreateCounter<long>("fsmgateway.upstream.connect_failures", "{attempt}", "Upstream connect attempts that failed or timed out.");
        _active = _meter.CreateUpDownCounter<long>("fsmgateway.connections.active", "{connection}", "Client connections open now.");
        _bytes = _meter.CreateCounter<long>("fsmgateway.bytes", "By", "Bytes relayed, tagged by direction (upstream: client to backend).");
    }

    public void Accepted(int port)
    {
        _accepted.Add(1, Port(port));
        _active.Add(1, Port(port));
    }

    public void Closed(int port) => _active.Add(-1, Port(port));

    public void Rejected(int port, string reason) => _rejected.Add(1, Port(port), new KeyValuePair<string, object?>("reason", reason));

    public void ConnectFailed(int port) => _connectFailures.Add(1, Port(port));

    public void Transferred(int port, bool upload, int bytes)
    {
        if (_bytes.Enabled)
        {
            _bytes.Add(bytes, Port(port), new KeyValuePair<string, object?>("direction", upload ? "upstream" : "downstream"));
        }
    }

    public void Dispose() => _meter.Dispose();

    private static KeyValuePair<string, object?> Port(int port) => new("port", port);
}
