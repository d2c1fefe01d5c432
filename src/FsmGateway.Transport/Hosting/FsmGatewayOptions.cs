using System.Reactive.Concurrency;
using FsmGateway.Resources;

namespace FsmGateway.Transport.Hosting;

/// <summary>How the gateway turns config into a served routing table.</summary>
public sealed class FsmGatewayOptions
{
    /// <summary>
    /// When the config holds no GatewayClass at all, act as if one of this name existed with our controller (as a
    /// cluster with FSM installed has <c>fsm</c>). Default <c>fsm</c>; null to require real GatewayClasses.
    /// </summary>
    public string? ImplicitGatewayClassName { get; set; } = GatewayApi.DefaultGatewayClassName;

    /// <summary>How long config changes must pause before they are applied. Default 100 ms.</summary>
    public TimeSpan Debounce { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The longest a config change waits under constant churn. Default 1 s.</summary>
    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How often ports that could not be bound are tried again. Default 5 s.</summary>
    public TimeSpan BindRetryInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The scheduler for the debounce timers; the task pool when null. Tests pass a virtual-time scheduler.</summary>
    public IScheduler? Scheduler { get; set; }

    /// <summary>Stop the application when the first config binds no listener at all (what a command-line host wants). Default false.</summary>
    public bool StopWhenNothingBinds { get; set; }

    /// <summary>
    /// Whether this process serves traffic. Default true. False for a controller whose data plane runs elsewhere: it
    /// binds nothing, and statuses are computed as if every listener were bound.
    /// </summary>
    public bool ServeTraffic { get; set; } = true;

    /// <summary>
    /// When set, only this Gateway's listeners are bound (the data plane of one provisioned Gateway); the others are
    /// still compiled, so routes and statuses see the whole config. Null (the default) serves every Gateway that is ours.
    /// </summary>
    public ResourceKey? ServedGateway { get; set; }

    /// <summary>
    /// Whether each Gateway is served on addresses of its own (a data plane per Gateway, as the Kubernetes controller
    /// provisions), so listeners of different Gateways never conflict over a port. Default false.
    /// </summary>
    public bool GatewaysHaveOwnAddresses { get; set; }
}
