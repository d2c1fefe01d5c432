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
        app.MapGet("/status", static (GatewayRuntimeState state) => state.LastCompilation is { } last
            ? Results.Text(CompilationResultJson.ToJson(last) + "\n", "application/json")
            : Results.Text("waiting for the first config sync\n", statusCode: StatusCodes.Status503ServiceUnavailable));
    }
}
