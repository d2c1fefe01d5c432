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

    /// <summary>
    /// Whether the routing table lists each backend's ready endpoints: true (the default) for a process that serves the
    /// table. A process that serves none of it and compiles for statuses (the Kubernetes controller, whose data planes
    /// compile their own Gateways) sets false: a backend then lists none, and says only whether it has a ready one
    /// (<see cref="RouteBackend.ReadyEndpointsOmitted"/>), so a compile reads one endpoint per Service, not all of them.
    /// Statuses and diagnostics are the same either way; such a table is for reading, not serving (a proxy given it has
    /// no endpoint to connect to).
    /// </summary>
    public bool ListEndpoints { get; init; } = true;

    /// <summary>
    /// How many threads one compilation may use at most: -1 (the default) for as many as the thread pool gives, 1 to
    /// compile on the calling thread alone. Only large snapshots use more than one (thousands of routes); the result is
    /// the same on any number of threads.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is 0 or less than -1.</exception>
    public int MaxDegreeOfParallelism
    {
        get;
        init
        {
            if (value is 0 or < -1)
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, "MaxDegreeOfParallelism must be -1 (no limit) or a positive number of threads.");
            }

            field = value;
        }
    } = -1;
}
