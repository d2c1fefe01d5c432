using FsmGateway.Routing;

namespace FsmGateway.Host.Gateway;

/// <summary>What the admin endpoints show: readiness and the last compilation.</summary>
internal sealed class GatewayState
{
    private volatile CompilationResult? _last;

    /// <summary>True once every source has synced and the first routing table is applied.</summary>
    public bool Ready => _last is not null;

    public CompilationResult? Last => _last;

    public void Applied(CompilationResult result) => _last = result;
}
