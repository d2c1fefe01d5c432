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

    /// <summary>
    /// Whether each Gateway gets addresses of its own (a data plane and load balancer per Gateway, as the Kubernetes
    /// controller provisions): then listeners of different Gateways never conflict over a port. False (the default)
    /// when one process binds every Gateway's listeners on one machine.
    /// </summary>
    public bool GatewaysHaveOwnAddresses { get; init; }
}
