using Microsoft.Extensions.DependencyInjection;

namespace FsmGateway;

/// <summary>
/// What <c>services.AddFsmGateway()</c> returns: the place every package hangs its configuration methods on
/// (<c>LoadFromMemory</c>, <c>LoadFromManifests</c>, <c>AddLoadBalancingPolicy</c>, ...), in the manner of YARP's
/// <c>IReverseProxyBuilder</c>.
/// </summary>
public interface IFsmGatewayBuilder
{
    /// <summary>The application's services.</summary>
    IServiceCollection Services { get; }
}
