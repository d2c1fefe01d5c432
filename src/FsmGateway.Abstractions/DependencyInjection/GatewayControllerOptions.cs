using FsmGateway.Resources;

namespace FsmGateway;

/// <summary>
/// Which Gateway API controller this process is: the one option every part reads (the compiler, to pick the
/// GatewayClasses that are ours and stamp route and policy status entries; the Kubernetes status writer, to tell our
/// entries from other controllers'; the provisioner, to mark what it makes and tell the data planes), so they cannot
/// disagree. Set it with <c>services.Configure&lt;GatewayControllerOptions&gt;(o =&gt; o.ControllerName = "...")</c>.
/// </summary>
public sealed class GatewayControllerOptions
{
    /// <summary>The controller name whose GatewayClasses are ours (<c>spec.controllerName</c>). Default <c>flomesh.io/gateway-controller</c>.</summary>
    public string ControllerName { get; set; } = GatewayApi.DefaultControllerName;
}
