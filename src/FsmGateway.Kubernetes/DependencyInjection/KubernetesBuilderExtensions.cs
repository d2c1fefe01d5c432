using System.Diagnostics.Metrics;
using FsmGateway.Configuration;
using FsmGateway.Kubernetes.Api;
using FsmGateway.Kubernetes.Controller;
using FsmGateway.Kubernetes.ControlPlane;
using FsmGateway.Status;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace FsmGateway.Kubernetes;

/// <summary>The Kubernetes API server as config, and as the place status and provisioned data planes are written.</summary>
public static class KubernetesBuilderExtensions
{
    /// <summary>
    /// Serves the Gateway API objects of a cluster: GatewayClass, Gateway, TCPRoute, ReferenceGrant, Service,
    /// EndpointSlice and Namespace are listed and watched cluster-wide, one config source per kind, at the versions the
    /// cluster serves. Read-only; add <see cref="AddKubernetesController"/> to write status.
    /// </summary>
    /// <param name="builder">The gateway builder.</param>
    /// <param name="configure">Where the API server is (kubeconfig, in-cluster) and how to watch it.</param>
    /// <returns>The same builder.</returns>
    public static IFsmGatewayBuilder AddKubernetes(this IFsmGatewayBuilder builder, Action<KubernetesOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        services.AddOptions<KubernetesOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<KubernetesOptions>, KubernetesOptionsValidator>());
        if (configure is not null)
        {
            services.Configure(configure);
        }

        // Called again (e.g. by AddKubernetesController): the options above still apply; the sources are added once.
        if (services.Any(d => d.ServiceType == typeof(KubernetesSourcesAdded)))
        {
            return builder;
        }

        services.AddSingleton<KubernetesSourcesAdded>();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new ApiServerReachability(sp.GetRequiredService<TimeProvider>(), sp.GetService<IMeterFactory>()));
        services.TryAddSingleton(sp => new KubernetesMetrics(sp.GetService<IMeterFactory>()));
        services.TryAddSingleton<KubernetesConnection>();
        foreach (var kind in ApiKind.Watched)
        {
            services.AddSingleton<IConfigSource>(sp => new KubernetesWatchSource(
                sp.GetRequiredService<KubernetesConnection>().Client,
                kind,
                sp.GetRequiredService<IOptions<KubernetesOptions>>().Value,
                sp.GetRequiredService<TimeProvider>(),
                sp.GetService<ILoggerFactory>()?.CreateLogger<KubernetesWatchSource>() ?? NullLogger<KubernetesWatchSource>.Instance,
                sp.GetRequiredService<ApiServerReachability>(),
                metrics: sp.GetRequiredService<KubernetesMetrics>(),
                uids: sp.GetService<ObservedUids>()));
        }

        return builder;
    }

    /// <summary>
    /// Makes this process the cluster's controller for our GatewayClasses: the elected leader (through a Lease) writes
    /// GatewayClass, Gateway and TCPRoute status and, when <see cref="KubernetesControllerOptions.DataPlaneImage"/> is
    /// set, provisions a data plane (Deployment and LoadBalancer Service) per accepted Gateway. Adds
    /// <see cref="AddKubernetes"/> too when it was not called. Call once.
    /// </summary>
    /// <param name="builder">The gateway builder.</param>
    /// <param name="configure">Leader election and provisioning settings.</param>
    /// <returns>The same builder.</returns>
    public static IFsmGatewayBuilder AddKubernetesController(this IFsmGatewayBuilder builder, Action<KubernetesControllerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        builder.AddKubernetes();
        services.AddOptions<KubernetesControllerOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<KubernetesControllerOptions>, KubernetesControllerOptionsValidator>());
        if (configure is not null)
        {
            services.Configure(configure);
        }

        if (services.Any(d => d.ServiceType == typeof(KubernetesControllerSink)))
        {
            return builder;
        }

        // The config watch tells the status writer each object's uid (a re-created object is a new one to write to).
        services.TryAddSingleton<ObservedUids>();
        services.TryAddSingleton(sp => new Leadership(
            sp.GetRequiredService<KubernetesConnection>().Client,
            sp.GetRequiredService<IOptions<KubernetesControllerOptions>>(),
            sp.GetRequiredService<ApiServerReachability>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetService<ILogger<Leadership>>() ?? NullLogger<Leadership>.Instance,
            sp.GetService<IMeterFactory>()));
        services.AddHostedService(sp => sp.GetRequiredService<Leadership>());
        services.TryAddSingleton(sp => new ReplicaReportLeases(
            sp.GetRequiredService<KubernetesConnection>().Client,
            sp.GetRequiredService<IOptions<KubernetesControllerOptions>>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetService<ILogger<ReplicaReportLeases>>() ?? NullLogger<ReplicaReportLeases>.Instance));
        services.TryAddSingleton<IReplicaReportExchange>(sp => sp.GetRequiredService<ReplicaReportLeases>());
        services.AddHostedService(sp => sp.GetRequiredService<ReplicaReportLeases>());
        services.TryAddSingleton(sp =>
        {
            var client = sp.GetRequiredService<KubernetesConnection>().Client;
            var options = sp.GetRequiredService<IOptions<KubernetesControllerOptions>>().Value;
            var controllerName = sp.GetRequiredService<IOptions<GatewayControllerOptions>>().Value.ControllerName;
            var api = new ApiObjects(client);
            var versions = new ServedVersions(client);
            var loggers = sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance;
            var metrics = sp.GetRequiredService<KubernetesMetrics>();

            // Registered by the host that serves the config stream securely (ADR 0010): the pods then get its CA and a token.
            // Not with pods told to read the API server (no controller address): they would get a CA and token for nothing.
            var authority = options.DataPlaneControllerAddress is null ? null : sp.GetService<StreamAuthority>();
            var writer = new KubernetesStatusWriter(versions, api, controllerName, sp.GetRequiredService<ObservedUids>(), sp.GetRequiredService<TimeProvider>(), loggers.CreateLogger<KubernetesStatusWriter>(), metrics);
            var provisioner = options.DataPlaneImage is { } image
                ? new GatewayProvisioner(versions, api, new ProvisioningOptions(image, options.DataPlaneReplicas, controllerName, options.DataPlaneDrainTimeout, options.DataPlanePreStopDelay) { ControllerAddress = options.DataPlaneControllerAddress, SecureStream = authority is not null }, loggers.CreateLogger<GatewayProvisioner>(), metrics, authority)
                : null;
            var owned = provisioner is null
                ? null
                : new OwnedObjectsWatch(client, sp.GetRequiredService<IOptions<KubernetesOptions>>().Value, sp.GetRequiredService<ApiServerReachability>(), sp.GetRequiredService<TimeProvider>(), loggers.CreateLogger<OwnedObjectsWatch>(), metrics);
            var legacyRbac = new LegacyDataPlaneRbac(api, controllerName, loggers.CreateLogger<LegacyDataPlaneRbac>(), metrics);
            return new KubernetesControllerSink(sp.GetRequiredService<Leadership>(), writer, provisioner, owned, options.ResyncPeriod, sp.GetRequiredService<ApiServerReachability>(), sp.GetRequiredService<TimeProvider>(), loggers.CreateLogger<KubernetesControllerSink>(), legacyRbac, provisioner is null ? null : authority);
        });
        services.AddSingleton<IStatusSink>(sp => sp.GetRequiredService<KubernetesControllerSink>());
        services.AddSingleton<IProvisionedDataPlanesSource>(sp => sp.GetRequiredService<KubernetesControllerSink>());
        services.AddHostedService(sp => sp.GetRequiredService<KubernetesControllerSink>());

        // The controller is ready only while the API server answers (the data plane keeps serving without it, so its
        // readiness does not follow the API server: a pod taken out of its Service would drop traffic for nothing).
        services.AddHealthChecks().AddCheck<ApiServerHealthCheck>(ApiServerHealthCheck.Name, tags: [ReadinessTag]);
        return builder;
    }

    /// <summary>
    /// The health-check tag of checks that decide readiness: the controller adds one (named <c>kubernetes-api</c>),
    /// unhealthy while the API server does not answer. A host's readiness probe should run the checks with this tag.
    /// </summary>
    public const string ReadinessTag = "ready";

    /// <summary>Marks that the watch sources are registered.</summary>
    private sealed class KubernetesSourcesAdded;
}
