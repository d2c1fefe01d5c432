using FsmGateway.Resources;

namespace FsmGateway.Host.Gateway;

/// <summary>What <c>fsm-gateway run</c> was asked to do.</summary>
internal sealed class GatewayRunOptions
{
    public IReadOnlyList<string> ConfigPaths { get; set; } = [];

    public string DefaultNamespace { get; set; } = "default";

    public string ControllerName { get; set; } = GatewayApi.DefaultControllerName;

    /// <summary>How long config changes must pause before they are applied.</summary>
    public TimeSpan Debounce { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The longest a config change waits under constant churn.</summary>
    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How often ports that could not be bound are tried again.</summary>
    public TimeSpan BindRetryInterval { get; set; } = TimeSpan.FromSeconds(5);
}
