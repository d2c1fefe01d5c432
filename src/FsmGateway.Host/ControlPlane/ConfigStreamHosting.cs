using System.Net;
using FsmGateway.Kubernetes;
using FsmGateway.Transport.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FsmGateway.Host.ControlPlane;

/// <summary>
/// Serves the config stream from a controller process: its own Kestrel endpoint (HTTP/2 only, never the admin port,
/// so the admin endpoints can stay local while the stream is open to the cluster), the gRPC service, and the data
/// planes' reports as the compiler's listener bindings.
/// </summary>
internal sealed partial class ConfigStreamHosting(Action<ConfigStreamServerOptions> configure)
{
    private const string StreamPath = "/fsmgateway.controlplane.v1.ConfigStream";
    private ListenOptions? _listen;

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
        services.TryAddSingleton<IDataPlaneAuthorizer, AnyDataPlane>();
        services.AddGrpc();
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
                kestrel.Listen(address, stream.Port, listen =>
                {
                    listen.Protocols = HttpProtocols.Http2;
                    _listen = listen;
                });
            }
        });
    }

    public void Map(WebApplication app)
    {
        // The stream port serves the stream and nothing else (not /status), and the other ports never the stream.
        app.Use((context, next) =>
        {
            var onStreamPort = _listen?.IPEndPoint is { } stream && context.Connection.LocalPort == stream.Port;
            var isStream = context.Request.Path.StartsWithSegments(StreamPath, StringComparison.Ordinal);
            if (onStreamPort != isStream)
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
            LogServing(app.Logger, $"http://{_listen.IPEndPoint}");
        }
    }

    /// <summary>The port, for the start-up error that names which port could not be bound.</summary>
    public string Describe() => _listen is null ? string.Empty : $", or --stream-port for the config stream on {_listen.IPEndPoint}";

    [LoggerMessage(1, LogLevel.Information, "Config stream on {Url}")]
    private static partial void LogServing(ILogger logger, string url);
}
