using System.Net;
using FsmGateway.Transport.Hosting;
using FsmGateway.Routing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace FsmGateway.Host.Admin;

/// <summary>The admin endpoints: liveness, readiness, and the current compilation for humans.</summary>
internal static class AdminEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", static () => Results.Text("ok\n"));
        app.MapGet("/readyz", static (GatewayRuntimeState state) => state.IsReady
            ? Results.Text("ready\n")
            : Results.Text("waiting for the first config sync\n", statusCode: StatusCodes.Status503ServiceUnavailable));
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
