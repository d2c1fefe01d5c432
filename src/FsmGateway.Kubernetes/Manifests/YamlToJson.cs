using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace FsmGateway.Kubernetes.Manifests;

/// <summary>
/// Turns one YAML document into the JSON tree the API server would see, resolving plain scalars the way
/// Kubernetes' YAML reader does (YAML 1.2 core schema): quoted scalars stay strings.
/// </summary>
internal static partial class YamlToJson
{
    /// <summary>Converts <paramref name="node"/>, recording in <paramref name="lines"/> the 1-based line each JSON node came from.</summary>
    public static JsonNode? Convert(YamlNode node, Dictionary<JsonNode, int> lines)
    {
        JsonNode? json = node switch
        {
            YamlMappingNode mapping => Mapping(mapping, lines),
            YamlSequenceNode sequence => new JsonArray([.. sequence.Children.Select(child => Convert(child, lines))]),
            YamlScalarNode scalar => Scalar(scalar),
            _ => throw new YamlException(node.Start, node.End, $"unsupported YAML node {node.NodeType}"),
        };
        if (json is not null)
        {
            lines[json] = (int)node.Start.Line;
        }

        return json;
    }

    private static JsonObject Mapping(YamlMappingNode mapping, Dictionary<JsonNode, int> lines)
    {
        var json = new JsonObject();
        foreach (var (keyNode, valueNode) in mapping.Children)
        {
            if (keyNode is not YamlScalarNode { Value: { } key })
            {
                throw new YamlException(keyNode.Start, keyNode.End, "mapping keys must be plain strings");
            }

            if (json.ContainsKey(key))
            {
                throw new YamlException(keyNode.Start, keyNode.End, $"duplicate key '{key}'");
            }

            json[key] = Convert(valueNode, lines);
        }

        return json;
    }

    private static JsonNode? Scalar(YamlScalarNode scalar)
    {
        var text = scalar.Value ?? string.Empty;
        if (scalar.Style is not ScalarStyle.Plain || !scalar.Tag.IsEmpty)
        {
            return JsonValue.Create(text);
        }

        return text switch
        {
            "" or "~" or "null" or "Null" or "NULL" => null,
            "true" or "True" or "TRUE" => JsonValue.Create(true),
            "false" or "False" or "FALSE" => JsonValue.Create(false),
            _ when IntegerPattern().IsMatch(text) && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer) => JsonValue.Create(integer),
            _ when FloatPattern().IsMatch(text) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var real) => JsonValue.Create(real),
            _ => JsonValue.Create(text),
        };
    }

    [GeneratedRegex("^[-+]?[0-9]+$")]
    private static partial Regex IntegerPattern();

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")]
    private static partial Regex FloatPattern();
}
