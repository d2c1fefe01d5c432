using System.Text.Json.Nodes;

namespace FsmGateway.Kubernetes.Controller;

/// <summary>
/// What of a Gateway decides its data plane: its identity (for names and owner references), its listener ports (the
/// Service's), <c>spec.infrastructure.labels</c> and <c>annotations</c> (put on every object made for it) and
/// <c>spec.infrastructure.parametersRef</c> (a ConfigMap of <see cref="DataPlaneParameters"/>).
/// </summary>
/// <param name="Namespace">The Gateway's namespace.</param>
/// <param name="Name">The Gateway's name.</param>
/// <param name="Uid">Its uid, for owner references.</param>
/// <param name="ApiVersion">The API version it was read at, for owner references.</param>
/// <param name="Ports">The distinct listener ports, in spec order.</param>
/// <param name="Labels">The infrastructure labels, by key.</param>
/// <param name="Annotations">The infrastructure annotations, by key.</param>
/// <param name="ParametersRef">The infrastructure parametersRef, when there is one.</param>
internal sealed record DataPlaneGateway(
    string Namespace,
    string Name,
    string Uid,
    string ApiVersion,
    IReadOnlyList<int> Ports,
    IReadOnlyDictionary<string, string> Labels,
    IReadOnlyDictionary<string, string> Annotations,
    ParametersReference? ParametersRef)
{
    /// <summary>The Gateway as <c>namespace/name</c>.</summary>
    public string FullName => $"{Namespace}/{Name}";

    /// <summary>Reads a Gateway as the API server returns it. Fields of an unexpected shape count as absent.</summary>
    public static DataPlaneGateway Read(JsonObject gateway)
    {
        var metadata = gateway["metadata"] as JsonObject ?? [];
        var spec = gateway["spec"] as JsonObject;
        var infrastructure = spec?["infrastructure"] as JsonObject;
        var reference = infrastructure?["parametersRef"] as JsonObject;
        return new DataPlaneGateway(
            Text(metadata["namespace"]) ?? string.Empty,
            Text(metadata["name"]) ?? string.Empty,
            Text(metadata["uid"]) ?? string.Empty,
            Text(gateway["apiVersion"]) ?? "gateway.networking.k8s.io/v1",
            [.. (spec?["listeners"] as JsonArray ?? [])
                .OfType<JsonObject>()
                .Select(l => l["port"] is JsonValue v && v.TryGetValue<int>(out var port) ? port : 0)
                .Where(p => p is > 0 and <= 65535)
                .Distinct()],
            Map(infrastructure?["labels"]),
            Map(infrastructure?["annotations"]),
            reference is null ? null : new ParametersReference(Text(reference["group"]) ?? string.Empty, Text(reference["kind"]) ?? string.Empty, Text(reference["name"]) ?? string.Empty));
    }

    private static string? Text(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var text) ? text : null;

    private static SortedDictionary<string, string> Map(JsonNode? node)
    {
        var map = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in node as JsonObject ?? [])
        {
            if (Text(value) is { } text)
            {
                map[key] = text;
            }
        }

        return map;
    }
}

/// <summary>A Gateway's <c>spec.infrastructure.parametersRef</c> (a LocalParametersReference: same namespace).</summary>
/// <param name="Group">The referent's API group; empty for the core group.</param>
/// <param name="Kind">The referent's kind; only <c>ConfigMap</c> is supported.</param>
/// <param name="Name">The referent's name.</param>
internal sealed record ParametersReference(string Group, string Kind, string Name);
