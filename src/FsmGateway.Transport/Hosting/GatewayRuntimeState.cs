using System.Reactive.Linq;
using System.Reactive.Subjects;
using FsmGateway.Configuration;
using FsmGateway.Routing;

namespace FsmGateway.Transport.Hosting;

/// <summary>What the running gateway has done: for the health and readiness probes, admin endpoints and tests.</summary>
public sealed class GatewayRuntimeState
{
    private readonly BehaviorSubject<ConfigSnapshot?> _applied = new(null);
    private readonly BehaviorSubject<ListenerBindings?> _bindings = new(null);
    private volatile CompilationResult? _last;
    private volatile string? _startupFailure;
    private volatile string? _notServing;
    private volatile string? _pipelineFailure;
    private volatile bool _stopping;

    /// <summary>
    /// True once every source has synced, the first routing table is applied and, when this process serves traffic,
    /// at least one listener is bound; false again once stopping. A gateway serving nothing is not ready.
    /// </summary>
    public bool IsReady => NotReadyReason is null;

    /// <summary>Why <see cref="IsReady"/> is false (for the readiness probe's answer), or null when ready.</summary>
    public string? NotReadyReason =>
        _stopping ? "stopping"
        : _startupFailure is { } failure ? failure
        : _last is null ? "waiting for the first config sync"
        : _notServing;

    /// <summary>
    /// False once the config pipeline has ended (no further config can be applied): the process should be restarted,
    /// so the liveness probe fails. What is serving keeps serving until then.
    /// </summary>
    public bool IsAlive => _pipelineFailure is null;

    /// <summary>Why the config pipeline ended, or null while it runs.</summary>
    public string? PipelineFailure => _pipelineFailure;

    /// <summary>The compilation last applied: routing table, statuses (with what was really bound) and diagnostics.</summary>
    public CompilationResult? LastCompilation => _last;

    /// <summary>Why the gateway stopped at start-up (no listener could be bound), or null.</summary>
    public string? StartupFailure => _startupFailure;

    /// <summary>
    /// Each config snapshot as it is applied (compiled, and served when this process serves): the last one at once on
    /// subscription, then every later one. The same snapshot comes again when it is applied again (bind retries, new
    /// bind reports), with the same <see cref="ConfigSnapshot.Revision"/>. A controller streams Gateways' closures from it.
    /// </summary>
    public IObservable<ConfigSnapshot> AppliedSnapshots => _applied.Where(static s => s is not null)!;

    /// <summary>What the transport bound at each apply (the last one at once on subscription): what a data plane reports.</summary>
    internal IObservable<ListenerBindings> AppliedBindings => _bindings.Where(static b => b is not null)!;

    /// <summary>What the transport bound at the last apply, or null before the first.</summary>
    internal ListenerBindings? CurrentBindings => _bindings.Value;

    /// <summary>Records an applied compilation and, when it serves nothing, why.</summary>
    internal void Applied(ConfigSnapshot snapshot, CompilationResult result, ListenerBindings bindings, string? notServing)
    {
        _notServing = notServing;
        _last = result;
        _bindings.OnNext(bindings);
        _applied.OnNext(snapshot);
    }

    internal void Failed(string reason) => _startupFailure = reason;

    internal void PipelineEnded(string reason) => _pipelineFailure = reason;

    internal void Stopping() => _stopping = true;
}
