using System.Collections.Immutable;
using System.Threading.Channels;
using FsmGateway.Routing;
using FsmGateway.Transport.Hosting;
using Microsoft.Extensions.Logging;
using Protocol = FsmGateway.Transport.ControlPlane.Protocol;

namespace FsmGateway.Host.ControlPlane;

/// <summary>
/// What one stream's reports may put into <see cref="DataPlaneReports"/> (and so into the replica's shared report
/// Lease and the Gateway's status), and how often: a report is bounded (at most <see cref="MaxListeners"/> entries
/// read, ports 1-65535, a failure message of at most <see cref="MaxMessageLength"/> characters), only the ports that
/// are listeners of the subscribed Gateway as this controller knows it count (the others are ignored, logged once per
/// stream), and the latest report takes effect at most once per <see cref="ConfigStreamServerOptions.ReportInterval"/>.
/// A data plane that misbehaves can so only misstate its own Gateway's listeners, never grow what other Gateways'
/// status depends on.
/// </summary>
internal sealed partial class StreamReportGate(DataPlaneReports reports, long connection, string dataPlane, string gateway, TimeSpan interval, TimeProvider time, ILogger logger)
{
    /// <summary>The most listener entries of one report that are read: a Gateway has at most 64 listeners (Gateway API).</summary>
    public const int MaxListeners = 64;

    /// <summary>The longest failure message kept (a bind error is one line); longer ones are cut, marked with an ellipsis.</summary>
    public const int MaxMessageLength = 256;

    private readonly Lock _gate = new();
    private readonly Channel<bool> _due = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private ImmutableSortedDictionary<int, BindOutcome>? _reported;
    private ImmutableSortedDictionary<int, BindOutcome>? _applied;
    private IReadOnlySet<int>? _listeners;
    private bool _loggedIgnored;
    private bool _loggedTooMany;

    /// <summary>Takes a report in (its effect follows within the interval).</summary>
    public void Offer(Protocol.Report report)
    {
        var outcomes = ImmutableSortedDictionary.CreateBuilder<int, BindOutcome>();
        var listeners = report.Listeners;
        for (var i = 0; i < listeners.Count && i < MaxListeners; i++)
        {
            var listener = listeners[i];
            if (listener.Port is < 1 or > 65535)
            {
                continue;
            }

            outcomes[listener.Port] = listener.State switch
            {
                Protocol.BindState.Bound => BindOutcome.Bound,
                Protocol.BindState.Failed => BindOutcome.Failed(Shorten(listener.Message) is { Length: > 0 } message ? message : "the data plane could not bind it"),
                _ => BindOutcome.NotYetBound,
            };
        }

        var tooMany = false;
        lock (_gate)
        {
            _reported = outcomes.ToImmutable();
            if (listeners.Count > MaxListeners && !_loggedTooMany)
            {
                _loggedTooMany = tooMany = true;
            }
        }

        if (tooMany)
        {
            LogTooMany(logger, LogText.Escape(dataPlane), gateway, listeners.Count, MaxListeners);
        }

        _due.Writer.TryWrite(true);
    }

    /// <summary>The subscribed Gateway's listener ports as this controller knows them now (none when it has no such Gateway).</summary>
    public void Listeners(IReadOnlySet<int> ports)
    {
        lock (_gate)
        {
            if (_listeners is not null && _listeners.SetEquals(ports))
            {
                return;
            }

            _listeners = ports;
        }

        _due.Writer.TryWrite(true);
    }

    /// <summary>Applies the latest report when one is due, at most once per interval, until cancelled; then once more.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (await _due.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                _due.Reader.TryRead(out _);

                // Only a report that took effect starts the interval: the first one counts at once.
                if (Apply() && interval > TimeSpan.Zero)
                {
                    await Task.Delay(interval, time, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }

        // The last word of a stream counts (it lingers after the stream ends), even if it came within the interval.
        _ = Apply();
    }

    /// <summary>Puts the latest report, filtered, into the reports; whether that changed what they hold for this stream.</summary>
    private bool Apply()
    {
        ImmutableSortedDictionary<int, BindOutcome> effective;
        List<int>? ignored = null;
        lock (_gate)
        {
            if (_reported is not { } reported || _listeners is not { } listeners)
            {
                // Nothing reported yet, or the Gateway not yet known: its ports cannot be judged yet.
                return false;
            }

            effective = reported.Count == 0 || reported.Keys.All(listeners.Contains)
                ? reported
                : reported.Where(p => listeners.Contains(p.Key)).ToImmutableSortedDictionary();
            if (effective.Count != reported.Count && !_loggedIgnored)
            {
                _loggedIgnored = true;
                ignored = [.. reported.Keys.Where(port => !listeners.Contains(port))];
            }

            if (_applied is { } applied && DataPlaneReports.SameOutcomes(applied, effective))
            {
                return false;
            }

            _applied = effective;
        }

        if (ignored is not null)
        {
            LogIgnoredPorts(logger, LogText.Escape(dataPlane), gateway, string.Join(", ", ignored));
        }

        reports.Report(connection, effective);
        return true;
    }

    /// <summary>A data plane's text cut to <paramref name="length"/> characters (an ellipsis marking the cut), never inside a surrogate pair.</summary>
    internal static string Shorten(string text, int length = MaxMessageLength)
    {
        if (text.Length <= length)
        {
            return text;
        }

        var cut = length - 1;
        if (char.IsHighSurrogate(text[cut - 1]))
        {
            cut--;
        }

        return string.Concat(text.AsSpan(0, cut), "…");
    }

    [LoggerMessage(1, LogLevel.Warning, "Config stream: data plane {DataPlane} of {Gateway} reported ports that are not listeners of that Gateway ({Ports}); they are ignored (logged once per stream)")]
    private static partial void LogIgnoredPorts(ILogger logger, string dataPlane, string gateway, string ports);

    [LoggerMessage(2, LogLevel.Warning, "Config stream: data plane {DataPlane} of {Gateway} reported {Count} listeners; only the first {Limit} are read (logged once per stream)")]
    private static partial void LogTooMany(ILogger logger, string dataPlane, string gateway, int count, int limit);
}
