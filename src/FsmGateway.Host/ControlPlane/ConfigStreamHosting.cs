using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Security;
using FsmGateway.Kubernetes;
using FsmGateway.Kubernetes.Api;
using FsmGateway.Kubernetes.ControlPlane;
using FsmGateway.Transport.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FsmGateway.Host.ControlPlane;

/// <summary>
/// Serves the config stream from a controller process: its own Kestrel endpoint (HTTP/2 only, never the admin port,
/// so the admin endpoints can stay local while the stream is open to the cluster), the gRPC service, and the data
/// planes' reports as the compiler's listener bindings. By default over TLS with a serving certificate from the
/// controller's CA (<see cref="StreamAuthority"/>) and with each data plane's ServiceAccount token reviewed
/// (<see cref="ServiceAccountAuthorizer"/>); <see cref="ConfigStreamServerOptions.Insecure"/> serves plain HTTP/2 to anyone.
/// </summary>
internal sealed partial class ConfigStreamHosting(Action<ConfigStreamServerOptions> configure)
{
    private const string StreamPath = "/fsmgateway.controlplane.v1.ConfigStream";
    private ListenOptions? _listen;
    private bool _secure;

    public void ConfigureServices(WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<ConfigStreamServerOptions>().Configure(configure).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ConfigStreamServerOptions>, ConfigStreamServerOptionsValidator>());
        // With several replicas, each shares its data planes' reports through the exchange (ADR 0010); a report
        // outlives its stream by the lease duration, as another replica's outlive that replica.
        services.AddSingleton(sp => new DataPlaneReports(
            sp.GetRequiredService<IOptions<ConfigStreamServerOptions>>().Value.Provisions,
            sp.GetService<IReplicaReportExchange>(),
            sp.GetService<IOptions<KubernetesControllerOptions>>()?.Value.LeaseDuration,
            sp.GetService<TimeProvider>(),
            sp.GetService<ILogger<DataPlaneReports>>()));
        services.AddSingleton<IListenerBindingsSource>(sp => sp.GetRequiredService<DataPlaneReports>());
        services.AddSingleton(sp => new GatewayClosureFeed(
            sp.GetRequiredService<GatewayRuntimeState>().AppliedSnapshots,
            sp.GetRequiredService<IOptions<FsmGatewayOptions>>(),
            sp.GetRequiredService<IOptions<GatewayControllerOptions>>(),
            sp.GetRequiredService<ILogger<GatewayClosureFeed>>()));
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new ConfigStreamMetrics(sp.GetService<IMeterFactory>()));
        var probe = new ConfigStreamServerOptions();
        configure(probe);
        _secure = !probe.Insecure;
        if (_secure)
        {
            services.TryAddSingleton(sp =>
            {
                var stream = sp.GetRequiredService<IOptions<ConfigStreamServerOptions>>().Value;
                var controller = sp.GetService<IOptions<KubernetesControllerOptions>>()?.Value;

                // Only the leader moves a CA rotation on; the bundle is published when the provisioner has written it
                // to every ConfigMap (when there is a provisioner that hands it to pods).
                var leadership = sp.GetService<FsmGateway.Kubernetes.Controller.Leadership>();
                return new StreamAuthority(
                    sp.GetRequiredService<KubernetesConnection>().Client,
                    stream.Namespace,
                    stream.ServingNames(),
                    sp.GetRequiredService<IOptions<GatewayControllerOptions>>().Value.ControllerName,
                    sp.GetRequiredService<TimeProvider>(),
                    sp.GetRequiredService<ILogger<StreamAuthority>>(),
                    stream.CaRotation,
                    leadership is null ? null : () => leadership.IsLeader,
                    publishedThroughConfigMaps: controller is { DataPlaneImage: not null, DataPlaneControllerAddress: not null });
            });
            services.AddHostedService(sp => sp.GetRequiredService<StreamAuthority>());
            services.TryAddSingleton<ITokenReviewer>(sp => new KubernetesTokenReviewer(sp.GetRequiredService<KubernetesConnection>().Client));
            services.TryAddSingleton<IDataPlaneAuthorizer>(sp => new ServiceAccountAuthorizer(sp.GetRequiredService<ITokenReviewer>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ConfigStreamMetrics>(), sp.GetRequiredService<IOptions<ConfigStreamServerOptions>>().Value.MaxConcurrentTokenReviews));
        }
        else
        {
            services.TryAddSingleton<IDataPlaneAuthorizer, AnyDataPlane>();
        }

        // A data plane sends only a Hello and small Reports: a larger message ends its stream (ResourceExhausted).
        services.AddGrpc().AddServiceOptions<ConfigStreamService>(grpc => grpc.MaxReceiveMessageSize = ConfigStreamService.MaxReceiveMessageSize);
        builder.WebHost.ConfigureKestrel((context, kestrel) =>
        {
            var options = kestrel.ApplicationServices.GetRequiredService<IOptions<ConfigStreamServerOptions>>();
            ConfigStreamServerOptions stream;
            try
            {
                stream = options.Value;
            }
            catch (OptionsValidationException)
            {
                // Reported at start by the options validation, naming the option.
                return;
            }

            if (IPAddress.TryParse(stream.Address, out var address) && stream.Port is >= 0 and <= 65535)
            {
                // The controller pings its data planes too (not only they it): a stream whose peer died without
                // closing its connection (its node gone) ends, and its report stops counting, within delay + timeout.
                // Kestrel's limits are per server: only HTTP/2 connections are pinged, and a ping costs an idle one nothing.
                kestrel.Limits.Http2.KeepAlivePingDelay = stream.KeepAlivePingDelay;
                kestrel.Limits.Http2.KeepAlivePingTimeout = stream.KeepAlivePingTimeout;
                kestrel.Listen(address, stream.Port, listen =>
                {
                    listen.Protocols = HttpProtocols.Http2;
                    if (_secure)
                    {
                        // The certificate is asked for per handshake: the CA may still be loading when the port opens
                        // (the handshake waits for it), and a certificate near its end is replaced without a restart.
                        var authority = kestrel.ApplicationServices.GetRequiredService<StreamAuthority>();
                        listen.UseHttps(new TlsHandshakeCallbackOptions
                        {
                            OnConnection = async connection => new SslServerAuthenticationOptions
                            {
                                ServerCertificate = await authority.ServingAsync(connection.CancellationToken).ConfigureAwait(false),
                                ApplicationProtocols = [SslApplicationProtocol.Http2],
                            },
                        });
                    }

                    _listen = listen;
                });
            }
        });
    }

    public void Map(WebApplication app)
    {
        // Kestrel listens on the stream port only (the admin endpoints are on AdminHttpServer), which serves the stream
        // and nothing else.
        app.Use(static (context, next) =>
        {
            if (!context.Request.Path.StartsWithSegments(StreamPath, StringComparison.Ordinal))
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
            }

            return next(context);
        });
        app.MapGrpcService<ConfigStreamService>();
    }

    public void Started(WebApplication app)
    {
        if (_listen is not null)
        {
            LogServing(app.Logger, $"{(_secure ? "https" : "http")}://{_listen.IPEndPoint}", _secure ? "TLS, data planes authenticated by ServiceAccount token" : "plain HTTP/2, no authentication (--stream-insecure)");
        }
    }

    /// <summary>The address and port the stream listens on, for the start-up error that names which port could not be bound; null when it listens nowhere.</summary>
    public string? Endpoint => _listen?.IPEndPoint?.ToString();

    [LoggerMessage(1, LogLevel.Information, "Config stream on {Url} ({Security})")]
    private static partial void LogServing(ILogger logger, string url, string security);
}
