using System.Text.Json.Nodes;

namespace FsmGateway.Kubernetes.Controller;

/// <summary>
/// Whether an object already holds everything a desired object says: every field of the desired one is present and
/// equal, recursively; arrays match element by element (same length). Fields the API server adds (defaults,
/// allocated ports, status) do not count as differences.
/// </summary>
internal static class JsonSubset
{
    public static bool Contains(JsonNode? actual, JsonNode? desired) => (actual, desired) switch
    {
        (_, null) => true,
        (JsonObject a, JsonObject d) => d.All(p => a.TryGetPropertyValue(p.Key, out var value) && Contains(value, p.Value)),
        (JsonArray a, JsonArray d) => a.Count == d.Count && a.Zip(d).All(pair => Contains(pair.First, pair.Second)),
        (JsonValue a, JsonValue d) => JsonNode.DeepEquals(a, d) || a.ToJsonString() == d.ToJsonString(),
        _ => false,
    };
}
