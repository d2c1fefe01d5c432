using System.Net;
using System.Text.Json;
using FsmGateway.Host.Admin;
using FsmGateway.Host.Gateway;
using FsmGateway.Transport;
using FsmGateway.Transport.Hosting;
#if !DATA_PLANE
using Microsoft.AspNetCore.Builder;
#endif
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FsmGateway.Host.Cli;

/// <summary>
/// Runs a gateway process in any mode: logging, the admin endpoints, the gateway with the mode's config sources and
/// options, until SIGTERM or Ctrl-C (then drain). Returns the process exit code.
/// </summary>
internal static partial class GatewayServer
{
    public static async Task<int> RunAsync(
        string command,
        ServeSettings settings,
        Action<FsmGatewayOptions> configureGateway,
        Action<IFsmGatewayBuilder> configureSources,
        TextWriter error,
        CancellationToken cancellationToken,
        ControlPlane.ConfigStreamHosting? configStream = null)
    {
        if (!IPAddress.TryParse(settings.AdminAddress, out var adminAddress))
        {
            error.WriteLine($"{command}: --admin-address '{LogText.Escape(settings.AdminAddress)}' is not an IP address");
            return ExitCodes.BadInput;
        }

        var metricsAddressText = settings.MetricsAddress ?? settings.AdminAddress;
        IPAddress? metricsAddress = null;
        if (settings.MetricsPort is not null && !IPAddress.TryParse(metricsAddressText, out metricsAddress))
        {
            error.WriteLine($"{command}: --metrics-address '{LogText.Escape(metricsAddressText)}' is not an IP address");
            return ExitCodes.BadInput;
        }

        if (settings.MetricsPort is { } samePort && samePort != 0 && samePort == settings.AdminPort && metricsAddress!.Equals(adminAddress))
        {
            error.WriteLine($"{command}: --metrics-port {samePort} is the admin port; choose another (/metrics is on the admin port anyway)");
            return ExitCodes.BadInput;
        }

        // The admin endpoints and /metrics are served by a small HTTP/1.1 server of our own (AdminHttpServer) in every
        // mode, not by Kestrel: linking ASP.NET Core's server and web hosting cost the Native AOT data plane ~9 MiB of its
        // idle RSS (benchmarks/README.md, "Idle RSS, round five"). The controller runs the web host and Kestrel for its
        // config stream only (a gRPC service on its own port).
#if DATA_PLANE
        var builder = CreateGenericBuilder();
#else
        IHostApplicationBuilder builder = configStream is null ? CreateGenericBuilder() : WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
#endif
        builder.Logging.ClearProviders();
        if (settings.LogFormat == LogFormat.Json)
        {
            // One object a line: Timestamp (UTC, ISO 8601), EventId (from the [LoggerMessage] definitions), LogLevel,
            // Category, Message, State (the message's named values); Exception only where one is logged (at Debug).
            builder.Logging.AddJsonConsole(o =>
            {
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";
                o.JsonWriterOptions = new JsonWriterOptions { Indented = false };
            });
        }
        else
        {
            builder.Logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
            });
        }

        builder.Logging.SetMinimumLevel(settings.LogLevel);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Warning);
        builder.Logging.AddFilter("System.Net.Http.HttpClient", LogLevel.Warning);

        // The generic host logs a failed start or a crashed background service with the whole stack trace at Error.
        // Both are reported here instead (type and message, the option or port named); the trace is for --log-level Debug.
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", settings.LogLevel <= LogLevel.Debug ? settings.LogLevel : LogLevel.None);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = settings.DrainTimeout + TimeSpan.FromSeconds(5));
        builder.Services.Configure<GatewayControllerOptions>(o => o.ControllerName = settings.ControllerName);
        var gateway = builder.Services.AddFsmGateway(o => configureGateway(o))
            .ConfigureProxy(o =>
            {
                o.DrainTimeout = settings.DrainTimeout;
                o.IdleTimeout = settings.IdleTimeout == TimeSpan.Zero ? null : settings.IdleTimeout;
                o.ConnectTimeout = settings.ConnectTimeout;
                o.EndpointMetrics = settings.EndpointMetrics;
                o.Transport = settings.Transport;
                o.ListenerShards = settings.ListenerShards;
            })
            .AddStatusSink<LogStatusSink>()
            .AddStatusSink<StartupMemoryRelease>();
        configureSources(gateway);
        if (settings.Metrics)
        {
            MetricsEndpoint.AddMetrics(builder.Services);
        }

        var adminEndpoint = new IPEndPoint(adminAddress, settings.AdminPort);
        var metricsEndpoint = settings.MetricsPort is { } port ? new IPEndPoint(metricsAddress!, port) : null;
#if DATA_PLANE
        var app = builder.Build();
#else
        var app = configStream is null ? ((HostApplicationBuilder)builder).Build() : BuildWithConfigStream((WebApplicationBuilder)builder, configStream);
#endif
        await using var served = new Served(app, CreateAdminServer(app.Services, settings.Metrics));
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(builder.Environment.ApplicationName);
        IPEndPoint adminBound;
        IPEndPoint? metricsBound;
        // What is being bound, for the error that names the port that could not be and the option that moves it: the
        // admin port, the metrics port, then (as the host starts) the config stream's.
        (string What, string Option)? binding = ($"the admin endpoints on {settings.AdminAddress}:{settings.AdminPort}", "--admin-port");
        try
        {
            // Bound before the gateway starts (port 0: a free port).
            adminBound = served.Admin.Listen(adminEndpoint);
            binding = ($"the metrics endpoint on {LogText.Escape(metricsAddressText)}:{settings.MetricsPort}", "--metrics-port");
            metricsBound = metricsEndpoint is null ? null : served.Admin.Listen(metricsEndpoint, MetricsEndpoint.MetricsOnlyItem);
            binding = configStream?.Endpoint is { } stream ? ($"the config stream on {stream}", "--stream-port") : null;
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException && binding is { } failed)
        {
            error.WriteLine($"{command}: cannot serve {failed.What}: {LogText.Escape(e.Message)} (choose another with {failed.Option})");
            return ExitCodes.PortUnavailable;
        }
        catch (OptionsValidationException e)
        {
            foreach (var failure in e.Failures)
            {
                error.WriteLine($"{command}: invalid option: {LogText.Escape(failure)}");
            }

            return ExitCodes.BadInput;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            error.WriteLine($"{command}: cannot start: {ErrorText.Of(e)}");
            return ExitCodes.Crashed;
        }

        // Which background loops had already ended when the host began to stop: a loop that ended before any stop was
        // asked for, by an exception or by a cancellation that was not shutdown's, is what stopped the host.
        var backgroundServices = app.Services.GetServices<IHostedService>().OfType<BackgroundService>().ToList();
        BackgroundService? endedFirst = null;
        using var stopping = app.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.Register(() =>
            endedFirst = backgroundServices.FirstOrDefault(static s => s.ExecuteTask is { IsFaulted: true } or { IsCanceled: true }));

#if !DATA_PLANE
        configStream?.Started((WebApplication)app);
#endif
        LogAdminEndpoints(logger, $"http://{adminBound}");
        if (metricsBound is not null)
        {
            LogMetricsEndpoint(logger, $"http://{metricsBound}{MetricsEndpoint.Path}");
        }

        await app.WaitForShutdownAsync(CancellationToken.None).ConfigureAwait(false);
        if (app.Services.GetRequiredService<GatewayRuntimeState>().StartupFailure is not null)
        {
            return ExitCodes.PortUnavailable;
        }

        // A background loop that ended with an exception stopped the host (BackgroundServiceExceptionBehavior.StopHost):
        // a failure, never a clean stop, so a supervisor restarts the process. Every loop of ours catches and retries;
        // this is for what none of them foresaw.
        // A loop cancelled before any stop was asked for did not end by shutdown either: also a crash.
        var crashed = backgroundServices.FirstOrDefault(static s => s.ExecuteTask is { IsFaulted: true }) ?? endedFirst;
        if (crashed is not null)
        {
            var why = crashed.ExecuteTask!.Exception?.GetBaseException() is { } failure
                ? ErrorText.Of(failure)
                : "it was cancelled, though no shutdown was requested";
            error.WriteLine($"{command}: {crashed.GetType().Name} failed, which stopped the process: {why}");
            return ExitCodes.Crashed;
        }

        return ExitCodes.Ok;
    }

    private static HostApplicationBuilder CreateGenericBuilder() => Microsoft.Extensions.Hosting.Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings
    {
        ContentRootPath = AppContext.BaseDirectory,

        // The web host's default, so the host's own log lines keep their category.
        ApplicationName = typeof(GatewayServer).Assembly.GetName().Name,
    });

    /// <summary>The admin endpoints (and with <paramref name="metrics"/> <c>/metrics</c>) of <paramref name="services"/>' host on <see cref="AdminHttpServer"/>, listening nowhere yet.</summary>
    private static AdminHttpServer CreateAdminServer(IServiceProvider services, bool metrics)
    {
        var pipeline = AdminEndpoints.CreatePipeline(services, metrics);
        return new AdminHttpServer(
            features => pipeline(new DefaultHttpContext(features) { RequestServices = services }),
            new AdminHttpServerLimits(),
            services.GetService<TimeProvider>() ?? TimeProvider.System,
            services.GetRequiredService<ILogger<AdminHttpServer>>());
    }

#if !DATA_PLANE
    /// <summary>The controller's web host: Kestrel serves the config stream's gRPC service on the stream port, and nothing else.</summary>
    private static WebApplication BuildWithConfigStream(WebApplicationBuilder builder, ControlPlane.ConfigStreamHosting configStream)
    {
        configStream.ConfigureServices(builder);
        var app = builder.Build();
        configStream.Map(app);
        return app;
    }
#endif

    /// <summary>The host and the admin server in front of it: the server stops first, then the host.</summary>
    private sealed record Served(IHost Host, AdminHttpServer Admin) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Admin.DisposeAsync().ConfigureAwait(false);
            if (Host is IAsyncDisposable asyncHost)
            {
                await asyncHost.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                Host.Dispose();
            }
        }
    }

    [LoggerMessage(1, LogLevel.Information, "Admin endpoints on {Urls}")]
    private static partial void LogAdminEndpoints(ILogger logger, string urls);

    [LoggerMessage(2, LogLevel.Information, "Metrics on {Url}")]
    private static partial void LogMetricsEndpoint(ILogger logger, string url);
}
