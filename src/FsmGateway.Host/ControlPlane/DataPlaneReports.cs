using System.Buffers;
using System.Collections.Immutable;
using System.Globalization;
using System.Reactive.Subjects;
using System.Text;
using System.Text.Json;
using FsmGateway.Kubernetes;
using FsmGateway.Resources;
using FsmGateway.Routing;
using FsmGateway.Transport.Hosting;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Host.ControlPlane;

/// <summary>
/// What the data planes reported binding, as the compiler's listener-bindings input: per Gateway and port, Failed when
/// any of its data planes failed to bind the port (with that data plane's error), Bound when every one bound it, else
/// pending. A Gateway none of whose data planes reported gets a pending outcome saying so (and whether anything was
/// provisioned), never Bound.
/// <para>
/// With several controller replicas (ADR 0010) a data plane's stream reaches one of them, while the leader writes
/// status: each replica shares its own data planes' reports through <see cref="IReplicaReportExchange"/> and counts
/// the other replicas' too. A data plane counts once, by its id, whichever replicas hold a report of it: a report
/// first, then a live stream, then this replica's, then the newest. A report outlives its stream by
/// <c>linger</c> (the lease duration), and another replica's reports by as long as that replica lives and then its
/// lease duration: a data plane that reconnects, to this replica or another, within it never flaps Programmed, and
/// one that does not (its pod gone, or its replica gone with it) stops counting after it.
/// </para>
/// </summary>
internal sealed partial class DataPlaneReports : IListenerBindingsSource, IDisposable
{
    private readonly object _gate = new();
    private readonly Dictionary<long, Connection> _connections = [];
    private readonly BehaviorSubject<ListenerBindings> _bindings;
    private readonly BindOutcome _unreported;
    private readonly IReplicaReportExchange? _exchange;
    private readonly TimeSpan _linger;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly IDisposable? _othersSubscription;
    private readonly ITimer _pruneTimer;
    private IReadOnlyList<Connection> _others = [];
    private long _nextId;

    public DataPlaneReports(bool provisions, IReplicaReportExchange? exchange = null, TimeSpan? linger = null, TimeProvider? time = null, ILogger? logger = null)
    {
        _unreported = new BindOutcome(BindState.Pending, provisions
            ? "no data plane of this Gateway has connected to the controller and reported yet"
            : "no data plane is provisioned for this Gateway (the controller runs without --image) and none has connected to the controller and reported");
        _exchange = exchange;
        _linger = linger ?? TimeSpan.Zero;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        _pruneTimer = _time.CreateTimer(_ => Prune(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _bindings = new BehaviorSubject<ListenerBindings>(Compute());
        _exchange?.Publish(Encode([]));
        _othersSubscription = _exchange?.Others.Subscribe(OnOthers);
    }

    public IObservable<ListenerBindings> Bindings => _bindings;

    /// <summary>Data planes connected to this replica now, for tests and logs.</summary>
    public int Connected
    {
        get
        {
            lock (_gate)
            {
                return _connections.Values.Count(static c => c.EndedAt is null);
            }
        }
    }

    public long Connect(ResourceKey gateway, string dataPlane)
    {
        lock (_gate)
        {
            var id = ++_nextId;
            _connections[id] = new Connection(gateway, dataPlane, Reported: null, EndedAt: null, Local: true, Order: id);
            PublishLocked(shareChanged: false);
            return id;
        }
    }

    public void Report(long connection, ImmutableSortedDictionary<int, BindOutcome> outcomes)
    {
        lock (_gate)
        {
            if (_connections.TryGetValue(connection, out var current))
            {
                _connections[connection] = current with { Reported = outcomes };
                PublishLocked(shareChanged: true);
            }
        }
    }

    public void Disconnect(long connection)
    {
        lock (_gate)
        {
            if (!_connections.TryGetValue(connection, out var current))
            {
                return;
            }

            if (current.Reported is null || _linger <= TimeSpan.Zero)
            {
                _connections.Remove(connection);
            }
            else
            {
                // Kept for the linger, so that a reconnect (here or to another replica) does not flap Programmed.
                _connections[connection] = current with { EndedAt = _time.GetUtcNow() };
                ScheduleLocked(_time.GetUtcNow());
            }

            PublishLocked(shareChanged: true);
        }
    }

    public void Dispose()
    {
        _othersSubscription?.Dispose();
        _pruneTimer.Dispose();
        _bindings.Dispose();
    }

    private void Prune()
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            var expired = _connections.Where(c => c.Value.EndedAt is { } ended && now - ended >= _linger).Select(static c => c.Key).ToList();
            foreach (var id in expired)
            {
                _connections.Remove(id);
            }

            ScheduleLocked(now);
            if (expired.Count > 0)
            {
                PublishLocked(shareChanged: true);
            }
        }
    }

    /// <summary>Arms the timer for the first ended stream whose report expires.</summary>
    private void ScheduleLocked(DateTimeOffset now)
    {
        var ended = _connections.Values.Where(static c => c.EndedAt is not null).Select(static c => c.EndedAt!.Value).ToList();
        if (ended.Count > 0)
        {
            var left = ended.Min() + _linger - now;
            _pruneTimer.Change(left > TimeSpan.Zero ? left : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
        }
    }

    private void OnOthers(IReadOnlyDictionary<string, string> others)
    {
        var parsed = new List<Connection>();
        foreach (var (replica, text) in others.OrderBy(static o => o.Key, StringComparer.Ordinal))
        {
            try
            {
                parsed.AddRange(Decode(text));
            }
            catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or OverflowException)
            {
                LogUnreadable(_logger, LogText.Escape(replica), ErrorText.Of(e));
            }
        }

        lock (_gate)
        {
            _others = parsed;
            PublishLocked(shareChanged: false);
        }
    }

    private void PublishLocked(bool shareChanged)
    {
        if (shareChanged)
        {
            _exchange?.Publish(Encode(_connections.Values.Where(static c => c.Reported is not null).OrderBy(static c => c.Order)));
        }

        var next = Compute();
        if (!SameOutcomes(next, _bindings.Value))
        {
            _bindings.OnNext(next);
        }
    }

    private static bool SameOutcomes(ListenerBindings a, ListenerBindings b) =>
        a.ByGateway is { } x && b.ByGateway is { } y && x.Count == y.Count
        && x.All(g => y.TryGetValue(g.Key, out var ports) && SameOutcomes(g.Value, ports));

    /// <summary>Whether <paramref name="a"/> and <paramref name="b"/> hold the same outcomes for the same ports.</summary>
    internal static bool SameOutcomes(ImmutableSortedDictionary<int, BindOutcome> a, ImmutableSortedDictionary<int, BindOutcome> b)
    {
        if (a.Count != b.Count)
        {
            return false;
        }

        foreach (var (port, outcome) in a)
        {
            if (!b.TryGetValue(port, out var other) || !outcome.Equals(other))
            {
                return false;
            }
        }

        return true;
    }

    private ListenerBindings Compute()
    {
        // One entry per data plane: one with a report before one without, a live stream before an ended one, this
        // replica's before another's, the newest last.
        var entries = _connections.Values.Concat(_others)
            .GroupBy(static c => (c.Gateway, c.DataPlane))
            .Select(static g => g
                .OrderByDescending(static c => c.Reported is not null)
                .ThenByDescending(static c => c.EndedAt is null)
                .ThenByDescending(static c => c.Local)
                .ThenByDescending(static c => c.Order)
                .First());
        var byGateway = ImmutableSortedDictionary.CreateBuilder<ResourceKey, ImmutableSortedDictionary<int, BindOutcome>>();
        foreach (var group in entries.GroupBy(static c => c.Gateway))
        {
            var planes = group.OrderBy(static c => c.DataPlane, StringComparer.Ordinal).ToList();
            var ports = planes.SelectMany(static c => c.Reported?.Keys ?? Enumerable.Empty<int>()).Distinct();
            var outcomes = ImmutableSortedDictionary.CreateBuilder<int, BindOutcome>();
            foreach (var port in ports)
            {
                var each = planes.Select(c => (c.DataPlane, Outcome: c.Reported?.GetValueOrDefault(port))).ToList();
                var failed = each.FirstOrDefault(static e => e.Outcome?.State == BindState.Failed);
                outcomes[port] = failed.Outcome is { } failure
                    ? BindOutcome.Failed(planes.Count == 1 ? failure.Message ?? "failed" : $"data plane {failed.DataPlane}: {failure.Message}")
                    : each.All(static e => e.Outcome?.State == BindState.Bound)
                        ? BindOutcome.Bound
                        : new BindOutcome(BindState.Pending, $"data plane {each.First(static e => e.Outcome?.State != BindState.Bound).DataPlane} has not bound it yet");
            }

            byGateway[group.Key] = outcomes.ToImmutable();
        }

        return ListenerBindings.Reported(byGateway.ToImmutable(), _unreported);
    }

    /// <summary>
    /// This replica's reports as shared with the others: a JSON array of
    /// <c>{"gateway":"ns/name","dataPlane":"id","live":true,"bound":[port…],"pending":[port…],"failed":{"port":"message"}}</c>.
    /// </summary>
    internal static string Encode(IEnumerable<Connection> connections)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartArray();
            foreach (var c in connections)
            {
                json.WriteStartObject();
                json.WriteString("gateway", $"{c.Gateway.Namespace}/{c.Gateway.Name}");
                json.WriteString("dataPlane", c.DataPlane);
                json.WriteBoolean("live", c.EndedAt is null);
                var reported = c.Reported ?? ImmutableSortedDictionary<int, BindOutcome>.Empty;
                json.WriteStartArray("bound");
                foreach (var (port, _) in reported.Where(static p => p.Value.State == BindState.Bound))
                {
                    json.WriteNumberValue(port);
                }

                json.WriteEndArray();
                json.WriteStartArray("pending");
                foreach (var (port, _) in reported.Where(static p => p.Value.State == BindState.Pending))
                {
                    json.WriteNumberValue(port);
                }

                json.WriteEndArray();
                json.WriteStartObject("failed");
                foreach (var (port, outcome) in reported.Where(static p => p.Value.State == BindState.Failed))
                {
                    json.WriteString(port.ToString(CultureInfo.InvariantCulture), outcome.Message ?? string.Empty);
                }

                json.WriteEndObject();
                json.WriteEndObject();
            }

            json.WriteEndArray();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Another replica's reports (<see cref="Encode"/>).</summary>
    internal static IEnumerable<Connection> Decode(string text)
    {
        if (text.Length == 0)
        {
            return [];
        }

        using var document = JsonDocument.Parse(text);
        var result = new List<Connection>();
        foreach (var item in document.RootElement.EnumerateArray())
        {
            var gateway = item.GetProperty("gateway").GetString() ?? string.Empty;
            var slash = gateway.IndexOf('/', StringComparison.Ordinal);
            if (slash <= 0)
            {
                throw new FormatException($"'{gateway}' is not namespace/name");
            }

            var outcomes = ImmutableSortedDictionary.CreateBuilder<int, BindOutcome>();
            foreach (var port in item.GetProperty("bound").EnumerateArray())
            {
                outcomes[port.GetInt32()] = BindOutcome.Bound;
            }

            foreach (var port in item.GetProperty("pending").EnumerateArray())
            {
                outcomes[port.GetInt32()] = BindOutcome.NotYetBound;
            }

            foreach (var failed in item.GetProperty("failed").EnumerateObject())
            {
                outcomes[int.Parse(failed.Name, CultureInfo.InvariantCulture)] = BindOutcome.Failed(failed.Value.GetString() ?? "failed");
            }

            result.Add(new Connection(
                new ResourceKey(ResourceKind.Gateway, gateway[..slash], gateway[(slash + 1)..]),
                item.GetProperty("dataPlane").GetString() ?? string.Empty,
                outcomes.ToImmutable(),
                EndedAt: item.GetProperty("live").GetBoolean() ? null : DateTimeOffset.MinValue,
                Local: false,
                Order: 0));
        }

        return result;
    }

    [LoggerMessage(1, LogLevel.Warning, "The data-plane reports shared by controller replica {Replica} cannot be read ({Error}); they are ignored")]
    private static partial void LogUnreadable(ILogger logger, string replica, string error);

    /// <summary>One data plane's stream (or, from another replica, its report).</summary>
    internal sealed record Connection(ResourceKey Gateway, string DataPlane, ImmutableSortedDictionary<int, BindOutcome>? Reported, DateTimeOffset? EndedAt, bool Local, long Order);
}
