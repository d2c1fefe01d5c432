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

    /// <summary>
    /// Stop the application when the first config binds no listener at all (what a command-line host wants; an
    /// embedder's application usually has more to do). A behaviour of the host, not a mode. Default false.
    /// </summary>
    public bool StopWhenNothingBinds { get; set; }

    /// <summary>What this process is: standalone (the default), a controller, or the data plane of one Gateway.</summary>
    public GatewayMode Mode { get; set; } = GatewayMode.Standalone;

    /// <summary>
    /// The Gateway whose listeners a <see cref="GatewayMode.DataPlane"/> binds (required there, and only there); the
    /// others are still compiled, so routes and statuses see the whole config.
    /// </summary>
    public ResourceKey? ServedGateway { get; set; }
}
