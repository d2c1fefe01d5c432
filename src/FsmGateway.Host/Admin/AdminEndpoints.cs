using System.Net;
using System.Text;
using FsmGateway.Routing;
using FsmGateway.Transport.Hosting;
using FsmGateway.Transport.Proxy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace FsmGateway.Host.Admin;

/// <summary>
/// The admin endpoints: liveness (<c>/healthz</c>) and readiness (<c>/readyz</c>), each running the health checks of
/// its tag (<see cref="GatewayHealthChecks"/>; the Kubernetes controller adds one), and the current compilation for
/// humans (<c>/status</c>).
/// </summary>
internal static class AdminEndpoints
{
    /// <summary>
    /// The endpoints as one middleware pipeline, for <see cref="AdminHttpServer"/> in every mode (no routing, no web
    /// host): the health checks' middleware, <c>/status</c>, and with <paramref name="metrics"/> the Prometheus
    /// exporter's middleware on <see cref="MetricsEndpoint.Path"/> (and the metrics port's filter); anything else is 404.
    /// </summary>
    public static RequestDelegate CreatePipeline(IServiceProvider services, bool metrics)
    {
        var app = new ApplicationBuilder(services);

        // The health checks' and the exporter's middleware answer every path under theirs (/metrics/x, /healthz/x); only
        // the paths themselves are endpoints (as they were when Kestrel's routing served them).
        app.Use((context, next) => IsEndpoint(context.Request.Path, metrics) ? next(context) : NotFound(context));
        if (metrics)
        {
            app.Use(MetricsEndpoint.OnlyMetricsOnTheMetricsPort);
            app.UseOpenTelemetryPrometheusScrapingEndpoint(MetricsEndpoint.Path);
        }

        // A failed probe answers 503 with the reason, for the operator who curls it and for the kubelet's event.
        app.UseHealthChecks("/healthz", Probe(GatewayHealthChecks.LiveTag, "ok\n"));
        app.UseHealthChecks("/readyz", Probe(GatewayHealthChecks.ReadyTag, "ready\n"));

        // The whole routing table (every namespace's routes and backends) is for whoever is on the machine or pod
        // (kubectl port-forward arrives from loopback), not for every client that can reach the probe port.
        app.Use(static (context, next) => context.Request.Path == StatusPath ? Status(context).ExecuteAsync(context) : next(context));
        app.Run(NotFound);
        return app.Build();
    }

    private static bool IsEndpoint(PathString path, bool metrics) =>
        path == "/healthz" || path == "/readyz" || path == StatusPath || (metrics && path == MetricsEndpoint.Path);

    private static Task NotFound(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status404NotFound;
        return Task.CompletedTask;
    }

    private const string StatusPath = "/status";

    private static IResult Status(HttpContext context) =>
        context.Connection.RemoteIpAddress is { } client && !IPAddress.IsLoopback(client.IsIPv4MappedToIPv6 ? client.MapToIPv4() : client)
            ? Results.Text("/status answers local clients only (use kubectl port-forward)\n", statusCode: StatusCodes.Status403Forbidden)
            : context.RequestServices.GetRequiredService<GatewayRuntimeState>().LastCompilation is { } last
                ? Results.Text(StatusJson.ToJson(last, Proxy(context.RequestServices)) + "\n", "application/json")
                : Results.Text("waiting for the first config sync\n", statusCode: StatusCodes.Status503ServiceUnavailable);

    /// <summary>The proxy whose endpoint health /status shows; a controller has none (and must not build one to answer).</summary>
    private static GatewayProxy? Proxy(IServiceProvider services) =>
        services.GetRequiredService<IOptions<FsmGatewayOptions>>().Value.Mode == GatewayMode.Controller ? null : services.GetService<GatewayProxy>();

    private static HealthCheckOptions Probe(string tag, string healthyBody) => new()
    {
        Predicate = check => check.Tags.Contains(tag),
        ResultStatusCodes =
        {
            [HealthStatus.Healthy] = StatusCodes.Status200OK,
            [HealthStatus.Degraded] = StatusCodes.Status200OK,
            [HealthStatus.Unhealthy] = StatusCodes.Status503ServiceUnavailable,
        },
        ResponseWriter = (context, report) =>
        {
            context.Response.ContentType = "text/plain; charset=utf-8";
            var body = report.Status == HealthStatus.Unhealthy
                ? string.Concat(report.Entries
                    .Where(static e => e.Value.Status == HealthStatus.Unhealthy)
                    .Select(static e => $"{e.Key}: {(e.Value.Description ?? e.Value.Exception?.Message ?? "unhealthy").ReplaceLineEndings(" ")}\n"))
                : healthyBody;
            return context.Response.WriteAsync(body, Encoding.UTF8);
        },
    };
}
