using System.Collections.Frozen;
using System.Diagnostics.Metrics;
using FsmGateway.Configuration;
using FsmGateway.Resources;
using FsmGateway.Routing;
using FsmGateway.Status;

namespace FsmGateway.Transport.Hosting;

/// <summary>
/// The config pipeline's instruments, on the meter <c>FsmGateway.Config</c>, in every mode (the controller compiles
/// with the same pipeline): revisions applied, the last successful apply, compile time, objects by kind, invalid
/// objects by kind and reason (<see cref="InvalidObjects"/>), and applies that failed. Labels are bounded: a kind is
/// one of the seven the gateway reads, a reason a condition reason of the Gateway API or of this gateway.
/// </summary>
internal sealed class ConfigMetrics
{
    public const string MeterName = "FsmGateway.Config";

    /// <summary>Compiling a few objects takes well under a millisecond; thousands of routes, tens of milliseconds.</summary>
    private static readonly double[] CompileBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private static readonly FrozenDictionary<ResourceKind, string> KindNames =
        Enum.GetValues<ResourceKind>().ToFrozenDictionary(static k => k, ResourceKey.KindName);

    private readonly Counter<long> _applied;
    private readonly Counter<long> _failures;
    private readonly Histogram<double> _compileDuration;
    private readonly Lock _gate = new();

    // What the gauges report; replaced whole on each apply, read by the exporter's collection.
    private Dictionary<string, long> _objects = KindNames.Values.ToDictionary(static k => k, static _ => 0L);
    private Dictionary<(string Kind, string Reason), long> _invalid = [];
    private double? _lastApplied;

    public ConfigMetrics(IMeterFactory? meterFactory)
    {
        var meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _applied = meter.CreateCounter<long>("fsmgateway.config.revisions.applied", "{revision}", "Config revisions compiled and applied.");
        _failures = meter.CreateCounter<long>("fsmgateway.config.apply.failures", "{revision}", "Attempts to apply a config revision that failed (what was serving kept serving).");
        _compileDuration = meter.CreateHistogram(
            "fsmgateway.config.compile.duration", "s", "Time to compile one config revision (in run and gateway modes both passes: before and after binding).", tags: null, new InstrumentAdvice<double> { HistogramBucketBoundaries = CompileBuckets });
        meter.CreateObservableGauge("fsmgateway.config.last_apply.time", ObserveLastApplied, "s", "When a config revision was last applied successfully, in seconds since the Unix epoch.");
        meter.CreateObservableGauge("fsmgateway.config.objects", ObserveObjects, "{object}", "Objects in the config, by kind.");
        meter.CreateObservableGauge("fsmgateway.config.objects.invalid", ObserveInvalid, "{object}", "Objects (and Gateway listeners) of the config that are not accepted or whose references do not resolve, by kind and condition reason.");
    }

    /// <summary>One compilation of a revision took <paramref name="elapsed"/>.</summary>
    public void Compiled(TimeSpan elapsed) => _compileDuration.Record(elapsed.TotalSeconds);

    /// <summary>A revision is applied: counts it when it is new, and takes the objects and statuses it has now.</summary>
    public void Applied(ConfigSnapshot snapshot, CompilationResult result, bool newRevision, DateTimeOffset now)
    {
        var objects = KindNames.Values.ToDictionary(static k => k, static _ => 0L);
        foreach (var key in snapshot.Resources.Keys)
        {
            objects[KindNames[key.Kind]]++;
        }

        var invalid = InvalidObjects(result.Statuses);
        lock (_gate)
        {
            // A kind and reason once seen stays, at 0, so that a fixed object shows as 0 rather than as its last value.
            foreach (var seen in _invalid.Keys)
            {
                invalid.TryAdd(seen, 0);
            }

            _objects = objects;
            _invalid = invalid;
            _lastApplied = now.ToUnixTimeMilliseconds() / 1000.0;
        }

        if (newRevision)
        {
            _applied.Add(1);
        }
    }

    /// <summary>Applying a revision failed.</summary>
    public void ApplyFailed() => _failures.Add(1);

    /// <summary>
    /// The invalid objects of a compilation, counted by kind and reason. Invalid means the compiler refused the object
    /// as written (its <c>Programmed</c> condition, which also says whether a data plane serves it, does not count):
    /// <list type="bullet">
    /// <item>a GatewayClass or Gateway whose <c>Accepted</c> is False (the reason is its reason);</item>
    /// <item>a listener (kind <c>Listener</c>) whose <c>Accepted</c> is False, else whose <c>ResolvedRefs</c> is False,
    /// else whose <c>Conflicted</c> is True (the first such condition's reason);</item>
    /// <item>a TCPRoute with a parent entry whose <c>Accepted</c> is False, else whose <c>ResolvedRefs</c> is False;
    /// counted once per distinct reason over its parent entries.</item>
    /// </list>
    /// Objects that are not ours (another controller's GatewayClass, their Gateways and routes) have no status and are
    /// never counted; a manifest that cannot be read is not an object at all (it is logged).
    /// </summary>
    internal static Dictionary<(string Kind, string Reason), long> InvalidObjects(StatusSet statuses)
    {
        var invalid = new Dictionary<(string Kind, string Reason), long>();
        void Count(string kind, string reason) => invalid[(kind, reason)] = invalid.GetValueOrDefault((kind, reason)) + 1;

        foreach (var status in statuses.GatewayClasses.Values)
        {
            if (Refused(status.Conditions, ConditionTypes.Accepted) is { } reason)
            {
                Count("GatewayClass", reason);
            }
        }

        foreach (var status in statuses.Gateways.Values)
        {
            if (Refused(status.Conditions, ConditionTypes.Accepted) is { } reason)
            {
                Count("Gateway", reason);
            }

            foreach (var listener in status.Listeners)
            {
                var problem = Refused(listener.Conditions, ConditionTypes.Accepted)
                    ?? Refused(listener.Conditions, ConditionTypes.ResolvedRefs)
                    ?? listener.Conditions.FirstOrDefault(static c => c.Type == ConditionTypes.Conflicted && c.Status == ConditionStatus.True)?.Reason;
                if (problem is not null)
                {
                    Count("Listener", problem);
                }
            }
        }

        foreach (var status in statuses.Routes.Values)
        {
            var reasons = status.Parents
                .Select(static p => Refused(p.Conditions, ConditionTypes.Accepted) ?? Refused(p.Conditions, ConditionTypes.ResolvedRefs))
                .OfType<string>()
                .Distinct(StringComparer.Ordinal);
            foreach (var reason in reasons)
            {
                Count(ResourceKey.KindName(ResourceKind.TcpRoute), reason);
            }
        }

        return invalid;
    }

    private static string? Refused(EquatableArray<Condition> conditions, string type) =>
        conditions.FirstOrDefault(c => c.Type == type && c.Status == ConditionStatus.False)?.Reason;

    private IEnumerable<Measurement<double>> ObserveLastApplied()
    {
        lock (_gate)
        {
            return _lastApplied is { } last ? [new Measurement<double>(last)] : [];
        }
    }

    private IEnumerable<Measurement<long>> ObserveObjects()
    {
        Dictionary<string, long> objects;
        lock (_gate)
        {
            objects = _objects;
        }

        return objects.Select(static o => new Measurement<long>(o.Value, new KeyValuePair<string, object?>("kind", o.Key)));
    }

    private IEnumerable<Measurement<long>> ObserveInvalid()
    {
        Dictionary<(string Kind, string Reason), long> invalid;
        lock (_gate)
        {
            invalid = _invalid;
        }

        return invalid.Select(static i => new Measurement<long>(
            i.Value,
            new KeyValuePair<string, object?>("kind", i.Key.Kind),
            new KeyValuePair<string, object?>("reason", i.Key.Reason)));
    }
}
