using FsmGateway.Transport.Connections;
using FsmGateway.Transport.LoadBalancing;
using FsmGateway.Transport.Proxy;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace FsmGateway.Transport;

/// <summary>Registers the transport and the proxy.</summary>
public static class TransportServiceCollectionExtensions
{
    /// <summary>
    /// Adds the <see cref="GatewayProxy"/> with the transport <see cref="ProxyOptions.Transport"/> selects (the Linux
    /// transport on Linux, the sockets transport elsewhere) and the load-balancing policies, unless other
    /// implementations of <see cref="IListenerFactory"/> or <see cref="IUpstreamConnector"/> were registered first.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="configure">Adjusts the proxy options.</param>
    /// <returns>The same services.</returns>
    public static IServiceCollection AddFsmGatewayTransport(this IServiceCollection services, Action<ProxyOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<ProxyOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ProxyOptions>, ProxyOptionsValidator>());
        if (configure is not null)
        {
            services.Configure(configure);
        }

        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(static sp => TransportSelection.Create(sp.GetRequiredService<IOptions<ProxyOptions>>().Value));
        services.TryAddSingleton(static sp => sp.GetRequiredService<TransportSelection>().Listeners);
        services.TryAddSingleton(static sp => sp.GetRequiredService<TransportSelection>().Connector);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ILoadBalancingPolicy, RoundRobinPolicy>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ILoadBalancingPolicy, LeastRequestPolicy>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ILoadBalancingPolicy, RandomPolicy>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ILoadBalancingPolicy, ConsistentHashSourceIpPolicy>());
        services.TryAddSingleton<GatewayProxy>();
        return services;
    }
}
