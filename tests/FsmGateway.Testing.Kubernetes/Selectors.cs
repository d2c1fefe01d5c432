using System.Text.Json.Nodes;

namespace FsmGateway.Testing.Kubernetes;

/// <summary>A parsed label selector (equality and set-based) or field selector (metadata.name / metadata.namespace).</summary>
internal sealed class Selector
{
    private enum Op
    {
        Equals,
        NotEquals,
        In,
        NotIn,
        Exists,
        DoesNotExist,
    }

    private sealed record Requirement(string Key, Op Op, IReadOnlyList<string> Values);

    private readonly List<Requirement> _requirements;
    private readonly bool _fields;

    private Selector(List<Requirement> requirements, bool fields)
    {
        _requirements = requirements;
        _fields = fields;
    }

    public static readonly Selector Everything = new([], fields: false);

    public bool IsEmpty => _requirements.Count == 0;

    public static Selector ParseLabels(string? text) => Parse(text, fields: false);

    public static Selector ParseFields(string? text)
    {
        var s = Parse(text, fields: true);
        foreach (var r in s._requirements)
        {
            if (r.Key is not ("metadata.name" or "metadata.namespace") || r.Op is not (Op.Equals or Op.NotEquals))
            {
                throw FakeApiException.BadRequest($"field label not supported: {r.Key}");
            }
        }
        return s;
    }

    public bool Matches(JsonObject obj)
    {
        foreach (var r in _requirements)
        {
            string? value;
            bool present;
            if (_fields)
            {
                var meta = obj["metadata"] as JsonObject;
                value = (r.Key == "metadata.name" ? meta?["name"] : meta?["namespace"])?.GetValue<string>() ?? "";
                present = true;
            }
            else
            {
                var labels = obj["metadata"]?["labels"] as JsonObject;
                present = labels is not null && labels.TryGetPropertyValue(r.Key, out _);
                value = present ? labels![r.Key]?.ToString() : null;
            }
            var ok = r.Op switch
            {
                Op.Equals => present && value == r.Values[0],
                Op.NotEquals => !present || value != r.Values[0],
                Op.In => present && r.Values.Contains(value),
                Op.NotIn => !present || !r.Values.Contains(value),
                Op.Exists => present,
                Op.DoesNotExist => !present,
                _ => false,
            };
            if (!ok)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>The value of <c>metadata.name=x</c>, if the selector has one.</summary>
    public string? ExactName => _fields ? _requirements.FirstOrDefault(r => r.Key == "metadata.name" && r.Op == Op.Equals)?.Values[0] : null;

    private static Selector Parse(string? text, bool fields)
    {
        var list = new List<Requirement>();
        if (string.IsNullOrWhiteSpace(text))
        {
            return new(list, fields);
        }
        foreach (var raw in SplitTop(text))
        {
            var part = raw.Trim();
            if (part.Length == 0)
            {
                continue;
            }
            list.Add(ParseOne(part, text));
        }
        return new(list, fields);
    }

    private static Requirement ParseOne(string part, string whole)
    {
        if (part.StartsWith('!'))
        {
            return new(CheckKey(part[1..].Trim(), whole), Op.DoesNotExist, []);
        }
        var ne = part.IndexOf("!=", StringComparison.Ordinal);
        if (ne > 0)
        {
            return new(CheckKey(part[..ne].Trim(), whole), Op.NotEquals, [part[(ne + 2)..].Trim()]);
        }
        var eq = part.IndexOf("==", StringComparison.Ordinal);
        if (eq > 0)
        {
            return new(CheckKey(part[..eq].Trim(), whole), Op.Equals, [part[(eq + 2)..].Trim()]);
        }
        eq = part.IndexOf('=', StringComparison.Ordinal);
        if (eq > 0)
        {
            return new(CheckKey(part[..eq].Trim(), whole), Op.Equals, [part[(eq + 1)..].Trim()]);
        }
        var paren = part.IndexOf('(', StringComparison.Ordinal);
        if (paren > 0 && part.EndsWith(')'))
        {
            var head = part[..paren].Trim();
            var values = part[(paren + 1)..^1].Split(',').Select(v => v.Trim()).Where(v => v.Length > 0).ToArray();
            var space = head.LastIndexOf(' ');
            if (space > 0)
            {
                var key = CheckKey(head[..space].Trim(), whole);
                switch (head[(space + 1)..])
                {
                    case "in":
                        return new(key, Op.In, values);
                    case "notin":
                        return new(key, Op.NotIn, values);
                }
            }
            throw FakeApiException.BadRequest($"unable to parse requirement: {whole}");
        }
        return new(CheckKey(part, whole), Op.Exists, []);
    }

    private static string CheckKey(string key, string whole)
    {
        if (key.Length == 0 || key.Any(c => char.IsWhiteSpace(c) || c is '(' or ')' or '=' or '!' or ','))
        {
            throw FakeApiException.BadRequest($"unable to parse requirement: invalid label key \"{key}\" in selector \"{whole}\"");
        }
        return key;
    }

    private static IEnumerable<string> SplitTop(string text)
    {
        var depth = 0;
        var start = 0;
        for (var i = 0; i < text.Length; i++)
        {
            switch (text[i])
            {
                case '(':
                    depth++;
                    break;
                case ')':
                    depth--;
                    break;
                case ',' when depth == 0:
                    yield return text[start..i];
                    start = i + 1;
                    break;
            }
        }
        yield return text[start..];
    }
}
