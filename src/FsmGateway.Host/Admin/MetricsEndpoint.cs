using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace FsmGateway.Host.Admin;

/// <summary>
/// <c>/metrics</c> in the Prometheus text format: every <c>FsmGateway.*</c> meter, the .NET runtime's and the
/// process's instruments, through the OpenTelemetry SDK and its Prometheus exporter (ADR 0007). Served on the admin
/// port, and on the optional metrics port, which serves nothing else.
/// </summary>
internal static class MetricsEndpoint
{
    public const string Path = "/metrics";

    /// <summary>The meter of the process-wide instruments the SDK's instrumentation lacks (<c>process_start_time_seconds</c>).</summary>
    public const string HostMeterName = "FsmGateway.Host";

    private const string MetricsOnlyItem = "fsm-gateway.metrics-only";

    // Process-wide, as what it measures: one start time per process, however many hosts it runs.
    private static readonly Meter HostMeter = new(HostMeterName);

    static MetricsEndpoint()
    {
        using var self = Process.GetCurrentProcess();
        var started = new DateTimeOffset(self.StartTime.ToUniversalTime()).ToUnixTimeMilliseconds() / 1000.0;
        HostMeter.CreateObservableGauge("process.start_time", () => started, "s", "Start time of the process since the Unix epoch.");
    }

    public static void AddMetrics(IServiceCollection services) =>
        services.AddOpenTelemetry()
            .ConfigureResource(static r => r.AddService("fsm-gateway"))
            .WithMetrics(static metrics => metrics
                .AddMeter("FsmGateway.*")
                .AddRuntimeInstrumentation()
                .AddProcessInstrumentation()

                // Prometheus reserves the _count suffix for histograms and summaries (promtool's lint): these gauges,
                // named the OpenTelemetry way, are renamed (process_open_fds is Prometheus's own name for the last).
                .AddView("dotnet.assembly.count", "dotnet.assemblies")
                .AddView("dotnet.process.cpu.count", "dotnet.process.cpus")
                .AddView("dotnet.timer.count", "dotnet.timers")
                .AddView("process.thread.count", "process.threads")
                .AddView("process.unix.file_descriptor.count", "process.open_fds")

                // No cache: a scrape right after traffic sees that traffic (scrapes are rare and cheap to render).
                .AddPrometheusExporter(static o => o.ScrapeResponseCacheDurationMilliseconds = 0));

    /// <summary>Marks <paramref name="listen"/> as the metrics port: it answers <c>/metrics</c> and 404 to the rest.</summary>
    public static void MetricsOnly(ListenOptions listen) =>
        listen.Use(static next => connection =>
        {
            connection.Items[MetricsOnlyItem] = true;
            return next(connection);
        });

    public static void Map(WebApplication app)
    {
        app.Use(static (context, next) =>
            context.Features.Get<IConnectionItemsFeature>()?.Items.ContainsKey(MetricsOnlyItem) == true && context.Request.Path != Path
                ? Results.NotFound().ExecuteAsync(context)
                : next(context));
        app.MapPrometheusScrapingEndpoint(Path);
    }
}
