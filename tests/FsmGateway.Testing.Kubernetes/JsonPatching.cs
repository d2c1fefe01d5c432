using System.Globalization;
using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace FsmGateway.Testing.Kubernetes;

/// <summary>RFC 7386 merge patch, RFC 6902 JSON patch (add/remove/replace/test/move/copy) and YAML to JSON.</summary>
internal static class JsonPatching
{
    public static JsonNode? MergePatch(JsonNode? target, JsonNode? patch, bool strategic = false)
    {
        if (patch is not JsonObject po)
        {
            return patch?.DeepClone();
        }
        var result = target is JsonObject to ? (JsonObject)to.DeepClone() : new JsonObject();
        foreach (var (key, value) in po)
        {
            if (strategic && key.StartsWith('$'))
            {
                continue;
            }
            if (value is null)
            {
                result.Remove(key);
                continue;
            }
            result.TryGetPropertyValue(key, out var current);
            result[key] = MergePatch(current, value, strategic);
        }
        return result;
    }

    public static JsonNode? JsonPatch(JsonNode? target, JsonArray operations)
    {
        var doc = target?.DeepClone();
        foreach (var opNode in operations)
        {
            if (opNode is not JsonObject op)
            {
                throw FakeApiException.BadRequest("json patch: operation is not an object");
            }
            var kind = op["op"]?.GetValue<string>();
            var path = op["path"]?.GetValue<string>() ?? throw FakeApiException.BadRequest("json patch: missing path");
            switch (kind)
            {
                case "add":
                    doc = Add(doc, path, op["value"]?.DeepClone());
                    break;
                case "remove":
                    doc = Remove(doc, path, out _);
                    break;
                case "replace":
                    doc = Remove(doc, path, out _);
                    doc = Add(doc, path, op["value"]?.DeepClone());
                    break;
                case "test":
                    if (!JsonNode.DeepEquals(Resolve(doc, path), op["value"]))
                    {
                        throw new FakeApiException(422, "Invalid", $"json patch: test operation failed at {path}");
                    }
                    break;
                case "move":
                {
                    var from = op["from"]?.GetValue<string>() ?? throw FakeApiException.BadRequest("json patch: missing from");
                    doc = Remove(doc, from, out var moved);
                    doc = Add(doc, path, moved);
                    break;
                }
                case "copy":
                {
                    var from = op["from"]?.GetValue<string>() ?? throw FakeApiException.BadRequest("json patch: missing from");
                    doc = Add(doc, path, Resolve(doc, from)?.DeepClone());
                    break;
                }
                default:
                    throw FakeApiException.BadRequest($"json patch: unsupported operation {kind}");
            }
        }
        return doc;
    }

    private static List<string> Pointer(string path)
    {
        if (path.Length == 0)
        {
            return [];
        }
        if (path[0] != '/')
        {
            throw FakeApiException.BadRequest($"json patch: invalid pointer {path}");
        }
        return path[1..].Split('/').Select(s => s.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal)).ToList();
    }

    private static JsonNode? Resolve(JsonNode? doc, string path)
    {
        var node = doc;
        foreach (var token in Pointer(path))
        {
            node = node switch
            {
                JsonObject o when o.TryGetPropertyValue(token, out var child) => child,
                JsonArray a when int.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i < a.Count => a[i],
                _ => throw new FakeApiException(422, "Invalid", $"json patch: path {path} does not exist"),
            };
        }
        return node;
    }

    private static JsonNode? Add(JsonNode? doc, string path, JsonNode? value)
    {
        var tokens = Pointer(path);
        if (tokens.Count == 0)
        {
            return value;
        }
        var parent = Resolve(doc, "/" + string.Join('/', tokens.Take(tokens.Count - 1).Select(Escape)));
        var last = tokens[^1];
        switch (parent)
        {
            case JsonObject o:
                o[last] = value;
                break;
            case JsonArray a when last == "-":
                a.Add(value);
                break;
            case JsonArray a when int.TryParse(last, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i <= a.Count:
                a.Insert(i, value);
                break;
            default:
                throw new FakeApiException(422, "Invalid", $"json patch: cannot add at {path}");
        }
        return doc;
    }

    private static JsonNode? Remove(JsonNode? doc, string path, out JsonNode? removed)
    {
        var tokens = Pointer(path);
        if (tokens.Count == 0)
        {
            removed = doc;
            return null;
        }
        var parent = Resolve(doc, "/" + string.Join('/', tokens.Take(tokens.Count - 1).Select(Escape)));
        var last = tokens[^1];
        switch (parent)
        {
            case JsonObject o when o.TryGetPropertyValue(last, out removed):
                o.Remove(last);
                break;
            case JsonArray a when int.TryParse(last, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i < a.Count:
                removed = a[i];
                a.RemoveAt(i);
                break;
            default:
                throw new FakeApiException(422, "Invalid", $"json patch: path {path} does not exist");
        }
        return doc;
    }

    private static string Escape(string token) => token.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);

    /// <summary>Every non-empty document of a (multi-document) YAML stream, as JSON.</summary>
    public static IEnumerable<JsonNode> YamlDocuments(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        foreach (var doc in stream.Documents)
        {
            var node = FromYaml(doc.RootNode);
            if (node is JsonObject { Count: > 0 } or JsonArray)
            {
                yield return node;
            }
        }
    }

    /// <summary>A request body: JSON, or else YAML (server-side apply bodies may be either).</summary>
    public static JsonNode? ParseBody(string text, bool allowYaml)
    {
        try
        {
            return JsonNode.Parse(text);
        }
        catch (System.Text.Json.JsonException) when (allowYaml)
        {
            return YamlDocuments(text).FirstOrDefault();
        }
        catch (System.Text.Json.JsonException e)
        {
            throw FakeApiException.BadRequest("the request body is not valid JSON: " + e.Message);
        }
    }

    private static JsonNode? FromYaml(YamlNode node)
    {
        switch (node)
        {
            case YamlMappingNode map:
            {
                var o = new JsonObject();
                foreach (var (k, v) in map.Children)
                {
                    o[((YamlScalarNode)k).Value ?? ""] = FromYaml(v);
                }
                return o;
            }
            case YamlSequenceNode seq:
            {
                var a = new JsonArray();
                foreach (var item in seq.Children)
                {
                    a.Add(FromYaml(item));
                }
                return a;
            }
            case YamlScalarNode scalar:
                return Scalar(scalar);
            default:
                return null;
        }
    }

    private static JsonNode? Scalar(YamlScalarNode scalar)
    {
        var value = scalar.Value ?? "";
        if (scalar.Style is not (ScalarStyle.Plain or ScalarStyle.Any))
        {
            return JsonValue.Create(value);
        }
        switch (value)
        {
            case "" or "~" or "null" or "Null" or "NULL":
                return null;
            case "true" or "True" or "TRUE":
                return JsonValue.Create(true);
            case "false" or "False" or "FALSE":
                return JsonValue.Create(false);
        }
        if (System.Text.RegularExpressions.Regex.IsMatch(value, "^[-+]?[0-9]+$")
            && long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l))
        {
            return JsonValue.Create(l);
        }
        if (System.Text.RegularExpressions.Regex.IsMatch(value, @"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
            && double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d))
        {
            return JsonValue.Create(d);
        }
        return JsonValue.Create(value);
    }
}
