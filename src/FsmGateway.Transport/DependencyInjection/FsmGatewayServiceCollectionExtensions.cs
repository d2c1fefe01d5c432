using System.Diagnostics.CodeAnalysis;
using FsmGateway.Transport.AccessLog;
using FsmGateway.Transport.Connections;
using FsmGateway.Transport.Hosting;
using FsmGateway.Transport.LoadBalancing;
using FsmGateway.Transport.Proxy;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace FsmGateway.Transport;

/// <summary>The front door for embedders: <c>services.AddFsmGateway().LoadFromMemory(...)</c>.</summary>
public static class FsmGatewayServiceCollectionExtensions
{
    /// <summary>
    /// Adds the gateway: the config pipeline (sources → snapshots → compile → apply), the proxy on the socket
    /// transport, and a hosted service that runs it with the application and drains it on shutdown. Add config with
    /// the returned builder (<c>LoadFromMemory</c>, <c>LoadFromObservable</c>, <c>LoadFromManifests</c>, <c>AddConfigSource</c>).
    /// </summary>
    /// <param name="services">The application's services.</param>
    /// <param name="configure">Adjusts the gateway options.</param>
    /// <returns>A builder for the rest of the configuration.</returns>
    public static IFsmGatewayBuilder AddFsmGateway(this IServiceCollection services, Action<FsmGatewayOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddFsmGatewayTransport();
        services.AddOptions<FsmGatewayOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<FsmGatewayOptions>, FsmGatewayOptionsValidator>());
        services.AddOptions<GatewayControllerOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<GatewayControllerOptions>, GatewayControllerOptionsValidator>());
        if (configure is not null)
        {
            services.Configure(configure);
        }

        services.TryAddSingleton<GatewayRuntimeState>();
        services.AddHostedService<GatewayHostedService>();

        // Liveness and readiness for the host's probes (ASP.NET Core: MapHealthChecks with a tag predicate).
        if (!services.Any(static d => d.ServiceType == typeof(GatewayHealthChecksAdded)))
        {
            services.AddSingleton<GatewayHealthChecksAdded>();
            services.AddHealthChecks()
                .AddCheck<ConfigPipelineHealthCheck>(GatewayHealthChecks.ConfigPipeline, tags: [GatewayHealthChecks.LiveTag])
                .AddCheck<ServingHealthCheck>(GatewayHealthChecks.Serving, tags: [GatewayHealthChecks.ReadyTag]);
        }

        return new FsmGatewayBuilder(services);
    }

    /// <summary>Adjusts the proxy: timeouts, drain deadline, buffer size, load-balancing policy.</summary>
    /// <param name="builder">The gateway builder.</param>
    /// <param name="configure">Changes the options.</param>
    /// <returns>The same builder.</returns>
    public static IFsmGatewayBuilder ConfigureProxy(this IFsmGatewayBuilder builder, Action<ProxyOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.Configure(configure);
        return builder;
    }

    /// <summary>
    /// Turns on the access log (one line per connection, off the data path) and adjusts it: set
    /// <see cref="AccessLogOptions.Destination"/> to <c>stdout</c>, <c>stderr</c> or a file path. Checked at start-up
    /// with the proxy options (<c>ProxyOptions.AccessLog</c>).
    /// </summary>
    /// <param name="builder">The gateway builder.</param>
    /// <param name="configure">Sets the destination, format and queue.</param>
    /// <returns>The same builder.</returns>
    public static IFsmGatewayBuilder AddAccessLog(this IFsmGatewayBuilder builder, Action<AccessLogOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        builder.Services.Configure<ProxyOptions>(o => configure(o.AccessLog));
        return builder;
    }

    /// <summary>
    /// Registers a load-balancing policy. Select it by name with
    /// <c>ConfigureProxy(o => o.LoadBalancingPolicy = "...")</c>; two policies with one name fail at start-up.
    /// </summary>
    /// <typeparam name="TPolicy">The policy.</typeparam>
    /// <param name="builder">The gateway builder.</param>
    /// <returns>The same builder.</returns>
    public static IFsmGatewayBuilder AddLoadBalancingPolicy<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TPolicy>(this IFsmGatewayBuilder builder)
        where TPolicy : class, ILoadBalancingPolicy
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<ILoadBalancingPolicy, TPolicy>());
        return builder;
    }

    /// <summary>Replaces how listeners are bound (the default is TCP sockets).</summary>
    /// <typeparam name="TFactory">The listener factory.</typeparam>
    /// <param name="builder">The gateway builder.</param>
    /// <returns>The same builder.</returns>
    public static IFsmGatewayBuilder UseListenerFactory<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TFactory>(this IFsmGatewayBuilder builder)
        where TFactory : class, IListenerFactory
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.Replace(ServiceDescriptor.Singleton<IListenerFactory, TFactory>());
        return builder;
    }

    /// <summary>Replaces how upstream connections are opened (the default is TCP sockets).</summary>
    /// <typeparam name="TConnector">The upstream connector.</typeparam>
    /// <param name="builder">The gateway builder.</param>
    /// <returns>The same builder.</returns>
    public static IFsmGatewayBuilder UseUpstreamConnector<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TConnector>(this IFsmGatewayBuilder builder)
        where TConnector : class, IUpstreamConnector
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.Replace(ServiceDescriptor.Singleton<IUpstreamConnector, TConnector>());
        return builder;
    }

    /// <summary>Marks that the health checks are registered (a second AddFsmGateway must not register them twice).</summary>
    private sealed class GatewayHealthChecksAdded;

    private sealed class FsmGatewayBuilder(IServiceCollection services) : IFsmGatewayBuilder
    {
        public IServiceCollection Services { get; } = services;
    }
}
