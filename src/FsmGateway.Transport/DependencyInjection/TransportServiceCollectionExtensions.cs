using FsmGateway.Transport.Connections;
using FsmGateway.Transport.LoadBalancing;
using FsmGateway.Transport.Proxy;
using FsmGateway.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace FsmGateway.Transport;

/// <summary>Registers the transport and the proxy.</summary>
public static class TransportServiceCollectionExtensions
{
    /// <summary>
    /// Adds the <see cref="GatewayProxy"/> with the socket transport and round-robin policy, unless other
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
        services.TryAddSingleton<SocketTransport>();
        services.TryAddSingleton<IListenerFactory>(static sp => sp.GetRequiredService<SocketTransport>());
        services.TryAddSingleton<IUpstreamConnector>(static sp => sp.GetRequiredService<SocketTransport>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ILoadBalancingPolicy, RoundRobinPolicy>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ILoadBalancingPolicy, LeastRequestPolicy>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ILoadBalancingPolicy, RandomPolicy>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ILoadBalancingPolicy, ConsistentHashSourceIpPolicy>());
        services.TryAddSingleton<GatewayProxy>();
        return services;
    }
}
