using System.Net;
using FsmGateway.Kubernetes;
using FsmGateway.Transport.Hosting;
using FsmGateway.Routing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace FsmGateway.Host.Admin;

/// <summary>The admin endpoints: liveness, readiness, and the current compilation for humans.</summary>
internal static class AdminEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", static () => Results.Text("ok\n"));
        app.MapGet("/readyz", static async (GatewayRuntimeState state, HealthCheckService health, CancellationToken cancellationToken) =>
        {
            // Ready means the gateway's own state says so and every readiness check (the controller's: the API server
            // answers) passes; each reason not to be is one line.
            var reasons = new List<string>();
            if (!state.IsReady)
            {
                reasons.Add("waiting for the first config sync");
            }

            var report = await health.CheckHealthAsync(static r => r.Tags.Contains(KubernetesBuilderExtensions.ReadinessTag), cancellationToken).ConfigureAwait(false);
            reasons.AddRange(report.Entries.Where(static e => e.Value.Status != HealthStatus.Healthy).Select(static e => $"{e.Key}: {e.Value.Description}"));
            return reasons.Count == 0
                ? Results.Text("ready\n")
                : Results.Text(string.Join('\n', reasons) + "\n", statusCode: StatusCodes.Status503ServiceUnavailable);
        });
        // The whole routing table (every namespace's routes and backends) is for whoever is on the machine or pod
        // (kubectl port-forward arrives from loopback), not for every client that can reach the probe port.
        app.MapGet("/status", static (HttpContext context, GatewayRuntimeState state) =>
            context.Connection.RemoteIpAddress is { } client && !IPAddress.IsLoopback(client.IsIPv4MappedToIPv6 ? client.MapToIPv4() : client)
                ? Results.Text("/status answers local clients only (use kubectl port-forward)\n", statusCode: StatusCodes.Status403Forbidden)
                : state.LastCompilation is { } last
                    ? Results.Text(CompilationResultJson.ToJson(last) + "\n", "application/json")
                    : Results.Text("waiting for the first config sync\n", statusCode: StatusCodes.Status503ServiceUnavailable));
    }
}
