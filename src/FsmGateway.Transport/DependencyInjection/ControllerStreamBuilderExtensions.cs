using FsmGateway.Configuration;
using FsmGateway.Transport.ControlPlane;
using FsmGateway.Transport.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace FsmGateway.Transport;

/// <summary>A controller's config stream as the gateway's config (ADR 0010).</summary>
public static class ControllerStreamBuilderExtensions
{
    /// <summary>
    /// Serves one Gateway with the config its controller streams (its dependency closure, nothing else), and reports
    /// to the controller what was bound. No Kubernetes client or credentials are needed. Serves only that Gateway's
    /// listeners, on addresses of its own (<see cref="GatewayMode.DataPlane"/>, <see cref="FsmGatewayOptions.ServedGateway"/>),
    /// and takes the GatewayClass from the stream
    /// (<see cref="FsmGatewayOptions.ImplicitGatewayClassName"/> is cleared). Options are checked at start.
    /// </summary>
    /// <param name="builder">The gateway builder.</param>
    /// <param name="configure">Sets the controller addresses and the Gateway.</param>
    /// <returns>The same builder.</returns>
    public static IFsmGatewayBuilder LoadFromController(this IFsmGatewayBuilder builder, Action<ControllerStreamOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var services = builder.Services;
        services.AddOptions<ControllerStreamOptions>().Configure(configure).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ControllerStreamOptions>, ControllerStreamOptionsValidator>());
        services.AddOptions<FsmGatewayOptions>().PostConfigure<IOptions<ControllerStreamOptions>>(static (gateway, stream) =>
        {
            gateway.ServedGateway ??= stream.Value.Gateway;
            gateway.Mode = GatewayMode.DataPlane;
            gateway.ImplicitGatewayClassName = null;
        });
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<IConfigSource>(static sp => new ControllerStreamSource(
            sp.GetRequiredService<IOptions<ControllerStreamOptions>>(),
            sp.GetRequiredService<GatewayRuntimeState>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetService<ILogger<ControllerStreamSource>>() ?? NullLogger<ControllerStreamSource>.Instance));
        return builder;
    }
}
