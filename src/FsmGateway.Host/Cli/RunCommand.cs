using System.CommandLine;
using System.Net;
using FsmGateway.Host.Admin;
using FsmGateway.Host.Gateway;
using FsmGateway.Kubernetes;
using FsmGateway.Resources;
using FsmGateway.Transport;
using FsmGateway.Transport.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Host.Cli;

/// <summary>
/// <c>run</c>: the gateway on one machine. Config comes from manifest files and folders (watched and hot-reloaded),
/// or, with no <c>--config</c>, from the embedded seed example (the FSM TCP-routing guide's Gateway and TCPRoute, with
/// the httpbin Service pointing at 127.0.0.1:8080).
/// </summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var config = new Option<string[]>("--config", "-c")
        {
            Description = "Manifest files or folders to serve, watched for changes. Without it, the embedded seed example is served.",
            AllowMultipleArgumentsPerToken = true,
        };
        var ns = new Option<string>("--namespace", "-n") { Description = "The namespace for objects that name none.", DefaultValueFactory = _ => "default" };
        var controllerName = new Option<string>("--controller-name") { Description = "The controller name whose GatewayClasses are ours.", DefaultValueFactory = _ => GatewayApi.DefaultControllerName };
        var adminAddress = new Option<string>("--admin-address") { Description = "Address of the admin endpoints (/healthz, /readyz, /status).", DefaultValueFactory = _ => "127.0.0.1" };
        var adminPort = new Option<int>("--admin-port") { Description = "Port of the admin endpoints; 0 picks a free one.", DefaultValueFactory = _ => 9901 };
        var drainTimeout = new Option<string>("--drain-timeout") { Description = "How long open connections may finish on shutdown or listener removal (e.g. 30s, 500ms).", DefaultValueFactory = _ => "30s" };
        var idleTimeout = new Option<string>("--idle-timeout") { Description = "Close connections idle this long (e.g. 1h); 0 for never.", DefaultValueFactory = _ => "1h" };
        var connectTimeout = new Option<string>("--connect-timeout") { Description = "Upstream connect timeout per attempt.", DefaultValueFactory = _ => "5s" };
        var logLevel = new Option<LogLevel>("--log-level") { Description = "Minimum log level.", DefaultValueFactory = _ => LogLevel.Information };

        var command = new Command("run", "Run the gateway: serve TCP listeners from manifests, hot-reloading them, until SIGTERM or Ctrl-C (then drain).")
        {
            config, ns, controllerName, adminAddress, adminPort, drainTimeout, idleTimeout, connectTimeout, logLevel,
        };
        command.SetAction((parse, cancellationToken) =>
        {
            var error = parse.InvocationConfiguration.Error;
            TimeSpan Duration(Option<string> option)
            {
                var text = parse.GetValue(option)!;
                return DurationParser.TryParse(text, out var value)
                    ? value
                    : throw new ArgumentException($"{option.Name}: '{text}' is not a duration (e.g. 30s, 500ms, 2m)");
            }

            try
            {
                var settings = new RunSettings(
                    parse.GetValue(config) ?? [],
                    parse.GetValue(ns)!,
                    parse.GetValue(controllerName)!,
                    parse.GetValue(adminAddress)!,
                    parse.GetValue(adminPort),
                    Duration(drainTimeout),
                    Duration(idleTimeout),
                    Duration(connectTimeout),
                    parse.GetValue(logLevel));
                return RunAsync(settings, error, cancellationToken);
            }
            catch (ArgumentException e)
            {
                error.WriteLine($"run: {e.Message}");
                return Task.FromResult(ExitCodes.BadInput);
            }
        });
        return command;
    }

    internal sealed record RunSettings(
        string[] ConfigPaths,
        string Namespace,
        string ControllerName,
        string AdminAddress,
        int AdminPort,
        TimeSpan DrainTimeout,
        TimeSpan IdleTimeout,
        TimeSpan ConnectTimeout,
        LogLevel LogLevel);

    internal static async Task<int> RunAsync(RunSettings settings, TextWriter error, CancellationToken cancellationToken)
    {
        foreach (var path in settings.ConfigPaths)
        {
            if (!File.Exists(path) && !Directory.Exists(path))
            {
                error.WriteLine($"run: config path '{path}' does not exist");
                return ExitCodes.BadInput;
            }
        }

        if (!IPAddress.TryParse(settings.AdminAddress, out var adminAddress))
        {
            error.WriteLine($"run: --admin-address '{settings.AdminAddress}' is not an IP address");
            return ExitCodes.BadInput;
        }

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
        });
        builder.Logging.SetMinimumLevel(settings.LogLevel);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(adminAddress, settings.AdminPort));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = settings.DrainTimeout + TimeSpan.FromSeconds(5));
        var gateway = builder.Services.AddFsmGateway(o =>
            {
                o.ControllerName = settings.ControllerName;
                o.StopWhenNothingBinds = true;
            })
            .ConfigureProxy(o =>
            {
                o.DrainTimeout = settings.DrainTimeout;
                o.IdleTimeout = settings.IdleTimeout == TimeSpan.Zero ? null : settings.IdleTimeout;
                o.ConnectTimeout = settings.ConnectTimeout;
            })
            .AddStatusSink<LogStatusSink>();
        if (settings.ConfigPaths.Length > 0)
        {
            gateway.LoadFromManifests(settings.ConfigPaths, settings.Namespace);
        }
        else
        {
            gateway.AddConfigSource(EmbeddedExample.CreateSource(settings.Namespace));
        }

        await using var app = builder.Build();
        AdminEndpoints.Map(app);
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
        {
            error.WriteLine($"run: cannot serve the admin endpoints on {settings.AdminAddress}:{settings.AdminPort}: {e.Message} (choose another with --admin-port)");
            return ExitCodes.PortUnavailable;
        }

        app.Logger.LogInformation("Admin endpoints on {Urls}", string.Join(", ", app.Urls));
        await app.WaitForShutdownAsync(CancellationToken.None).ConfigureAwait(false);
        return app.Services.GetRequiredService<GatewayRuntimeState>().StartupFailure is null ? ExitCodes.Ok : ExitCodes.PortUnavailable;
    }
}
