using FsmGateway.Resources;

namespace FsmGateway.Routing;

/// <summary>How the compiler decides which objects are ours.</summary>
public sealed record CompilerOptions
{
    /// <summary>Options with our defaults: controller <c>flomesh.io/gateway-controller</c>, no implicit GatewayClass.</summary>
    public static CompilerOptions Default { get; } = new();

    /// <summary>The controller name a GatewayClass must name for its Gateways to be ours.</summary>
    public string ControllerName { get; init; } = GatewayApi.DefaultControllerName;

    /// <summary>
    /// When the snapshot holds no GatewayClass at all, act as if one of this name existed with our controller
    /// (a cluster with FSM installed has <c>fsm</c>). <see langword="null"/> for none. No status is written for it.
    /// </summary>
    public string? ImplicitGatewayClassName { get; init; }
}
