using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using FsmGateway.Transport.Proxy;

namespace FsmGateway.Transport.Tests.TestSupport;

/// <summary>
/// Listens to the proxy's meter for one backend (by its Service name, unique per test): sums what counters add, and
/// on demand collects the per-endpoint observable instruments, keyed by instrument and <c>endpoint</c> label.
/// </summary>
internal sealed class MetricRecorder : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly string _backendName;
    private readonly ConcurrentDictionary<string, long> _sums = new();
    private Dictionary<(string Instrument, string Endpoint), long>? _observing;

    public MetricRecorder(string backendName)
    {
        _backendName = backendName;
        _listener.InstrumentPublished = static (instrument, listener) =>
        {
            if (instrument.Meter.Name == ProxyMetrics.MeterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.Start();
    }

    /// <summary>What the counter <paramref name="instrument"/> added for the backend so far.</summary>
    public long Sum(string instrument) => _sums.GetValueOrDefault(instrument);

    /// <summary>Collects every observable instrument now: the backend's series, by instrument and endpoint.</summary>
    public Dictionary<(string Instrument, string Endpoint), long> Observe()
    {
        lock (_listener)
        {
            _observing = [];
            _listener.RecordObservableInstruments();
            var result = _observing;
            _observing = null;
            return result;
        }
    }

    public void Dispose() => _listener.Dispose();

    private void Record(Instrument instrument, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        string? backend = null, endpoint = null;
        foreach (var tag in tags)
        {
            switch (tag.Key)
            {
                case "backend_name":
                    backend = tag.Value as string;
                    break;
                case "endpoint":
                    endpoint = tag.Value as string;
                    break;
            }
        }

        if (backend != _backendName)
        {
            return;
        }

        if (instrument.IsObservable)
        {
            // Observable callbacks run on the thread that called RecordObservableInstruments, inside Observe's lock.
            // Only the per-endpoint series: the backend's own counters are observable too (totals, ADR 0007).
            if (_observing is { } observing && endpoint is not null)
            {
                observing[(instrument.Name, endpoint)] = value;
            }

            return;
        }

        _sums.AddOrUpdate(instrument.Name, value, (_, sum) => sum + value);
    }
}
