using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
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

    /// <summary>The connection item that marks a request as arrived on the metrics port.</summary>
    public const string MetricsOnlyItem = "fsm-gateway.metrics-only";

    // Process-wide, as what it measures: one start time per process, however many hosts it runs.
    private static readonly Meter HostMeter = new(HostMeterName);

    static MetricsEndpoint()
    {
        using var self = Process.GetCurrentProcess();
        var started = new DateTimeOffset(self.StartTime.ToUniversalTime()).ToUnixTimeMilliseconds() / 1000.0;
        HostMeter.CreateObservableGauge("process.start_time", () => started, "s", "Start time of the process since the Unix epoch.");
    }

    /// <summary>
    /// The series limit (the SDK's cardinality limit) of the meters whose tag sets are few and fixed: the runtime's
    /// (generations, CPU modes, exception types), the process's, the host's and the config's (object kinds and condition
    /// reasons). The SDK allocates every metric stream's points for its whole limit when the instrument is published,
    /// about 100 bytes a series: at its default of 2,000 that is ~200 KiB per instrument, ~8 MiB of an idle data plane's
    /// ~41 MiB for the ~40 instruments (benchmarks/README.md, idle memory). <c>FsmGateway.Transport</c>'s instruments
    /// keep the default: their tag sets follow the config (listeners, routes, backends, endpoints). Beyond a limit the
    /// SDK adds into one <c>otel_metric_overflow="true"</c> series; nothing is dropped.
    /// </summary>
    public const int FixedSeriesLimit = 100;

    public static void AddMetrics(IServiceCollection services) =>
        services.AddOpenTelemetry()
            .ConfigureResource(static r => r.AddService("fsm-gateway"))
            .WithMetrics(static metrics => metrics
                .AddMeter("FsmGateway.*")
                .AddRuntimeInstrumentation()
                .AddProcessInstrumentation()

                // One view for every instrument: where two views match, the SDK exports the instrument twice.
                .AddView(View)

                // No cache: a scrape right after traffic sees that traffic (scrapes are rare and cheap to render).
                .AddPrometheusExporter(static o => o.ScrapeResponseCacheDurationMilliseconds = 0));

    /// <summary>The stream of <paramref name="instrument"/>: renamed, or with the small series limit, or as the SDK makes it (null).</summary>
    internal static MetricStreamConfiguration? View(Instrument instrument)
    {
        // Prometheus reserves the _count suffix for histograms and summaries (promtool's lint): these gauges, named the
        // OpenTelemetry way, are renamed (process_open_fds is Prometheus's own name for the last).
        var name = instrument.Name switch
        {
            "dotnet.assembly.count" => "dotnet.assemblies",
            "dotnet.process.cpu.count" => "dotnet.process.cpus",
            "dotnet.timer.count" => "dotnet.timers",
            "process.thread.count" => "process.threads",
            "process.unix.file_descriptor.count" => "process.open_fds",
            _ => null,
        };
        var fixedTags = instrument.Meter.Name is "System.Runtime" or "OpenTelemetry.Instrumentation.Process" or HostMeterName or "FsmGateway.Config";
        return name is null && !fixedTags
            ? null
            : new MetricStreamConfiguration { Name = name, CardinalityLimit = fixedTags ? FixedSeriesLimit : null };
    }

    /// <summary>On the metrics port (its connections carry <see cref="MetricsOnlyItem"/>), 404 for all but <see cref="Path"/>.</summary>
    public static Task OnlyMetricsOnTheMetricsPort(HttpContext context, RequestDelegate next) =>
        context.Features.Get<IConnectionItemsFeature>()?.Items.ContainsKey(MetricsOnlyItem) == true && context.Request.Path != Path
            ? Results.NotFound().ExecuteAsync(context)
            : next(context);
}
