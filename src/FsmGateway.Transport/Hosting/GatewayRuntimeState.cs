using FsmGateway.Routing;

namespace FsmGateway.Transport.Hosting;

/// <summary>What the running gateway has done: for readiness probes, admin endpoints and tests.</summary>
public sealed class GatewayRuntimeState
{
    private volatile CompilationResult? _last;
    private volatile string? _startupFailure;
    private volatile bool _stopping;
    private volatile bool _serving = true;

    /// <summary>
    /// True once every source has synced and the first routing table is applied (and, for the data plane of one
    /// Gateway, once a listener of it is bound); false again once stopping.
    /// </summary>
    public bool IsReady => _last is not null && _serving && _startupFailure is null && !_stopping;

    /// <summary>The compilation last applied: routing table, statuses (with what was really bound) and diagnostics.</summary>
    public CompilationResult? LastCompilation => _last;

    /// <summary>Why the gateway stopped at start-up (no listener could be bound), or null.</summary>
    public string? StartupFailure => _startupFailure;

    internal void Applied(CompilationResult result, bool serving = true)
    {
        _serving = serving;
        _last = result;
    }

    internal void Failed(string reason) => _startupFailure = reason;

    internal void Stopping() => _stopping = true;
}
