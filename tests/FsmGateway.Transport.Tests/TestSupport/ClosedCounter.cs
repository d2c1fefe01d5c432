using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using FsmGateway.Transport.Proxy;

namespace FsmGateway.Transport.Tests.TestSupport;

/// <summary><c>fsmgateway.connections.closed</c> by reason for one listener port (other tests' ports are ignored).</summary>
internal sealed class ClosedCounter : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, int> _byReason = new();

    public ClosedCounter(int port)
    {
        var portText = port.ToString(CultureInfo.InvariantCulture);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == ProxyMetrics.MeterName && instrument.Name == "fsmgateway.connections.closed")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            string? reason = null, tagPort = null;
            foreach (var tag in tags)
            {
                switch (tag.Key)
                {
                    case "reason":
                        reason = tag.Value as string;
                        break;
                    case "port":
                        tagPort = tag.Value as string;
                        break;
                }
            }

            // An observable counter: each collection reports the listener's totals so far.
            if (tagPort == portText && reason is not null)
            {
                _byReason[reason] = (int)value;
            }
        });
        _listener.Start();
    }

    /// <summary>Waits until exactly <paramref name="count"/> connections have closed, all with <paramref name="reason"/>.</summary>
    public async Task WaitForAsync(string reason, int count = 1)
    {
        var counted = await Guard.Eventually(() =>
        {
            lock (_listener)
            {
                _byReason.Clear();
                _listener.RecordObservableInstruments();
                return _byReason.Values.Sum() >= count;
            }
        });
        Assert.True(counted, $"no connection closed with a reason (expected {reason})");
        Assert.Equal([$"{reason}={count}"], _byReason.Select(static p => $"{p.Key}={p.Value}"));
    }

    /// <summary>The listener's closed connections by reason, as of now.</summary>
    /// <returns>Reason to count.</returns>
    public IReadOnlyDictionary<string, int> Snapshot()
    {
        lock (_listener)
        {
            _byReason.Clear();
            _listener.RecordObservableInstruments();
            return new Dictionary<string, int>(_byReason);
        }
    }

    public void Dispose() => _listener.Dispose();
}
