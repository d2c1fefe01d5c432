using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using FsmGateway.Routing;
using FsmGateway.Transport.Health;
using FsmGateway.Transport.Proxy;

namespace FsmGateway.Host.Admin;

/// <summary>
/// The body of <c>/status</c>: the compilation last applied, as <c>fsm-gateway compile</c> prints it
/// (<c>resources</c>, <c>routingTable</c>, <c>diagnostics</c>), plus <c>endpoints</c>: every endpoint being served and
/// its health now. The fields are documented in docs/operations/observability.md; new ones are only ever added.
/// </summary>
internal static class StatusJson
{
    private static readonly JsonSerializerOptions Indented = new()
    {
        WriteIndented = true,
        IndentSize = 2,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static string ToJson(CompilationResult result, GatewayProxy? proxy)
    {
        var root = CompilationResultJson.ToJsonNode(result);
        root["endpoints"] = proxy is null ? new JsonArray() : Endpoints(proxy.GetEndpointHealth());
        return root.ToJsonString(Indented);
    }

    public static JsonArray Endpoints(IEnumerable<EndpointHealthReport> endpoints) =>
        new([.. endpoints.Select(static e => (JsonNode)new JsonObject
        {
            ["backend"] = new JsonObject
            {
                ["namespace"] = e.BackendNamespace,
                ["name"] = e.BackendName,
                ["port"] = e.BackendPort,
            },
            ["address"] = e.Address,
            ["port"] = e.Port,
            ["healthy"] = e.Healthy,
            ["reason"] = e.Reason,
            ["activeConnections"] = e.ActiveConnections,
            ["active"] = e.Active is { } active
                ? new JsonObject
                {
                    ["protocol"] = active.Protocol,
                    ["up"] = active.Up,
                    ["lastProbeAt"] = Time(active.LastProbeAt),
                    ["lastProbePassed"] = active.LastProbePassed,
                    ["lastError"] = active.LastError,
                    ["consecutiveFailures"] = active.ConsecutiveFailures,
                    ["consecutiveSuccesses"] = active.ConsecutiveSuccesses,
                }
                : null,
            ["passive"] = new JsonObject
            {
                ["ejected"] = e.Passive.Ejected,
                ["ejectedUntil"] = Time(e.Passive.EjectedUntil),
                ["ejectionReason"] = e.Passive.EjectionReason,
                ["consecutiveFailures"] = e.Passive.ConsecutiveFailures,
                ["ejections"] = e.Passive.Ejections,
                ["failures"] = e.Passive.Failures,
            },
        })]);

    private static string? Time(DateTimeOffset? at) => at?.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);
}
