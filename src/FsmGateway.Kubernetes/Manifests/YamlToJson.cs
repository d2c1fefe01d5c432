using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace FsmGateway.Kubernetes.Manifests;

/// <summary>
/// Turns one YAML document into the JSON tree the API server would see, resolving plain scalars the way
/// Kubernetes' YAML reader does (YAML 1.2 core schema): quoted scalars stay strings.
/// </summary>
/// <remarks>
/// Reads the parser's events into the tree with an explicit stack, never by recursion, so no input can overflow the
/// stack, and bounds what one document may cost: <see cref="MaxDepth"/> levels of nesting and <see cref="MaxNodes"/>
/// nodes, counting every node an alias copies (an alias "billion laughs" document is stopped at the budget, not
/// expanded). An alias may only name an anchor whose node is complete, so a node cannot contain itself.
/// </remarks>
internal static partial class YamlToJson
{
    /// <summary>The deepest nesting of mappings and sequences a document may have (a Kubernetes object needs about 20).</summary>
    public const int MaxDepth = 64;

    /// <summary>The most nodes (mappings, sequences, scalars, including copies made by aliases) one document may hold.</summary>
    public const int MaxNodes = 200_000;

    /// <summary>
    /// The most nodes aliases may copy in one file, over all its documents: without it, a file of many small "billion
    /// laughs" documents, each stopped at <see cref="MaxNodes"/>, would still cost minutes of CPU per read.
    /// </summary>
    public const int MaxAliasNodesPerFile = MaxNodes;

    /// <summary>What aliases may still copy in one file; one instance is shared by every document of the file.</summary>
    internal sealed class AliasBudget
    {
        /// <summary>Nodes aliases may still copy.</summary>
        public int Remaining { get; set; } = MaxAliasNodesPerFile;
    }

    /// <summary>
    /// Parses the first document of <paramref name="text"/>, recording in <paramref name="lines"/> the 1-based line each
    /// JSON node came from. Returns <see langword="null"/> for an empty document.
    /// </summary>
    /// <exception cref="ManifestSyntaxException">The text is not YAML, or exceeds a bound; the exception names line and field.</exception>
    public static JsonNode? Parse(string text, Dictionary<JsonNode, int> lines) => Parse(text, lines, new AliasBudget());

    /// <summary>As <see cref="Parse(string, Dictionary{JsonNode, int})"/>, with what aliases may copy shared with the other documents of the file.</summary>
    public static JsonNode? Parse(string text, Dictionary<JsonNode, int> lines, AliasBudget aliases)
    {
        var parser = new Parser(new StringReader(text));
        var builder = new Builder(lines, aliases);
        var last = Mark.Empty;
        try
        {
            while (parser.MoveNext())
            {
                last = parser.Current!.End;
                if (builder.Accept(parser.Current))
                {
                    break;
                }
            }
        }
        catch (YamlException e)
        {
            throw new ManifestSyntaxException(Line(e.Start), builder.Container, $"invalid YAML: {LogText.Escape(Innermost(e).Message)}");
        }
        catch (InvalidOperationException e)
        {
            // YamlDotNet's scanner throws this on some unterminated flow collections (`name: [foo` followed by block
            // lines): the input is not YAML, reported where the parser last succeeded.
            throw new ManifestSyntaxException(Line(last), builder.Container, $"invalid YAML after this line (the parser failed: {LogText.Escape(e.Message)})");
        }

        return builder.Root;
    }

    private static int Line(Mark mark) => (int)Math.Clamp(mark.Line, 1, int.MaxValue);

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null)
        {
            e = e.InnerException;
        }

        return e;
    }

    private static JsonNode? ScalarValue(Scalar scalar, string field)
    {
        var text = scalar.Value;
        if (scalar.Style is not ScalarStyle.Plain || !scalar.Tag.IsEmpty)
        {
            return JsonValue.Create(text);
        }

        var value = text switch
        {
            "" or "~" or "null" or "Null" or "NULL" => null,
            "true" or "True" or "TRUE" => JsonValue.Create(true),
            "false" or "False" or "FALSE" => JsonValue.Create(false),
            _ when IntegerPattern().IsMatch(text) && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer) => JsonValue.Create(integer),
            _ when FloatPattern().IsMatch(text) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var real) => JsonValue.Create(real),
            _ when NotANumberPattern().IsMatch(text) => JsonValue.Create(double.NaN),
            _ => JsonValue.Create(text),
        };

        // YAML's .inf and .nan, and numbers too large for a double, have no JSON form: Kubernetes' reader fails on them
        // ("json: unsupported value: +Inf"), so they are an error here too rather than a value that breaks later.
        return value is not null && value.TryGetValue<double>(out var number) && !double.IsFinite(number)
            ? throw new ManifestSyntaxException(Line(scalar.Start), field, $"'{LogText.Escape(text)}' is not a finite number, and JSON (so Kubernetes) has no other kind; quote it to make it a string")
            : value;
    }

    [GeneratedRegex("^[-+]?[0-9]+$")]
    private static partial Regex IntegerPattern();

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")]
    private static partial Regex FloatPattern();

    [GeneratedRegex(@"^([-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))$")]
    private static partial Regex NotANumberPattern();

    /// <summary>A mapping or sequence being read.</summary>
    private sealed class Frame(JsonNode node, string path, string? anchor, int line)
    {
        public JsonNode Node { get; } = node;

        public string Path { get; } = path;

        public string? Anchor { get; } = anchor;

        public int Line { get; } = line;

        /// <summary>The key read whose value comes next (mappings only).</summary>
        public string? PendingKey { get; set; }

        /// <summary>The nodes below this one, itself included.</summary>
        public int Size { get; set; } = 1;

        /// <summary>The levels below this one, itself included.</summary>
        public int Height { get; set; } = 1;
    }

    private sealed record Anchored(JsonNode? Node, int Size, int Height);

    private sealed class Builder(Dictionary<JsonNode, int> lines, AliasBudget aliases)
    {
        private readonly Stack<Frame> _stack = new();
        private readonly Dictionary<string, Anchored> _anchors = new(StringComparer.Ordinal);
        private int _nodes;
        private bool _started;

        public JsonNode? Root { get; private set; }

        /// <summary>The field being read, for messages (<c>spec.listeners[0].port</c>).</summary>
        public string? Field => _stack.TryPeek(out var top) ? ValueField(top) : null;

        /// <summary>The mapping or sequence being read, for syntax errors (which the parser finds ahead of the tree).</summary>
        public string? Container => _stack.TryPeek(out var top) ? top.Path : null;

        /// <summary>Takes one parser event; returns <see langword="true"/> once the first document is complete.</summary>
        public bool Accept(ParsingEvent e)
        {
            switch (e)
            {
                case DocumentStart:
                    _started = true;
                    return false;
                case DocumentEnd:
                    return _started;
                case MappingStart or SequenceStart:
                    Open((NodeEvent)e);
                    return false;
                case MappingEnd or SequenceEnd:
                    Close();
                    return false;
                case Scalar scalar:
                    if (_stack.TryPeek(out var top) && top.Node is JsonObject && top.PendingKey is null)
                    {
                        Key(top, scalar);
                    }
                    else
                    {
                        Count(1, scalar.Start);
                        var value = ScalarValue(scalar, Field ?? string.Empty);
                        Place(value, scalar.Start, size: 1, height: 0);
                        Remember(scalar.Anchor, value, 1, 0);
                    }

                    return false;
                case AnchorAlias alias:
                    Alias(alias);
                    return false;
                default:
                    return false;
            }
        }

        private void Open(NodeEvent e)
        {
            if (_stack.TryPeek(out var parent) && parent.Node is JsonObject && parent.PendingKey is null)
            {
                throw new ManifestSyntaxException(Line(e.Start), parent.Path.Length == 0 ? null : parent.Path, "a mapping key must be a string, not a mapping or a list");
            }

            if (_stack.Count >= MaxDepth)
            {
                throw new ManifestSyntaxException(Line(e.Start), Field, $"nested more than {MaxDepth} levels deep");
            }

            Count(1, e.Start);
            var path = parent is null ? string.Empty : ValueField(parent);
            JsonNode node = e is MappingStart ? new JsonObject() : new JsonArray();
            lines[node] = Line(e.Start);
            _stack.Push(new Frame(node, path, e.Anchor.IsEmpty ? null : e.Anchor.Value, Line(e.Start)));
        }

        private void Close()
        {
            var frame = _stack.Pop();
            Remember(frame.Anchor, frame.Node, frame.Size, frame.Height);
            PlaceContainer(frame);
        }

        private void PlaceContainer(Frame frame)
        {
            if (_stack.TryPeek(out var parent))
            {
                parent.Size += frame.Size;
                parent.Height = Math.Max(parent.Height, frame.Height + 1);
                Attach(parent, frame.Node);
            }
            else
            {
                Root = frame.Node;
            }
        }

        private void Key(Frame mapping, Scalar key)
        {
            var json = (JsonObject)mapping.Node;
            if (json.ContainsKey(key.Value))
            {
                throw new ManifestSyntaxException(Line(key.Start), Join(mapping.Path, key.Value), $"duplicate key '{LogText.Escape(key.Value)}'");
            }

            mapping.PendingKey = key.Value;
        }

        private void Alias(AnchorAlias alias)
        {
            if (_stack.TryPeek(out var top) && top.Node is JsonObject && top.PendingKey is null)
            {
                throw new ManifestSyntaxException(Line(alias.Start), top.Path.Length == 0 ? null : top.Path, "a mapping key must be a string, not an alias");
            }

            if (!_anchors.TryGetValue(alias.Value.Value, out var anchored))
            {
                var inside = _stack.Any(f => f.Anchor == alias.Value.Value);
                throw new ManifestSyntaxException(Line(alias.Start), Field, inside
                    ? $"alias *{LogText.Escape(alias.Value.Value)} refers to a node that contains it"
                    : $"alias *{LogText.Escape(alias.Value.Value)} names no anchor defined before it");
            }

            if (_stack.Count + anchored.Height > MaxDepth)
            {
                throw new ManifestSyntaxException(Line(alias.Start), Field, $"alias *{LogText.Escape(alias.Value.Value)} nests more than {MaxDepth} levels deep");
            }

            Count(anchored.Size, alias.Start);
            aliases.Remaining -= anchored.Size;
            if (aliases.Remaining < 0)
            {
                throw new ManifestSyntaxException(Line(alias.Start), Field, $"the file's aliases repeat more than {MaxAliasNodesPerFile} nodes in all");
            }

            // A node has one parent, so an alias gets a copy; its depth is bounded above, so the copy's recursion is too.
            Place(anchored.Node?.DeepClone(), alias.Start, anchored.Size, anchored.Height);
        }

        private void Place(JsonNode? value, Mark start, int size, int height)
        {
            if (value is not null)
            {
                lines[value] = Line(start);
            }

            if (_stack.TryPeek(out var parent))
            {
                parent.Size += size;
                parent.Height = Math.Max(parent.Height, height + 1);
                Attach(parent, value);
            }
            else
            {
                Root = value;
            }
        }

        private static void Attach(Frame parent, JsonNode? value)
        {
            if (parent.Node is JsonObject obj)
            {
                obj[parent.PendingKey!] = value;
                parent.PendingKey = null;
            }
            else
            {
                ((JsonArray)parent.Node).Add(value);
            }
        }

        private void Remember(AnchorName anchor, JsonNode? node, int size, int height)
        {
            if (!anchor.IsEmpty)
            {
                Remember(anchor.Value, node, size, height);
            }
        }

        private void Remember(string? anchor, JsonNode? node, int size, int height)
        {
            if (anchor is not null)
            {
                _anchors[anchor] = new Anchored(node, size, height);
            }
        }

        private void Count(int nodes, Mark start)
        {
            _nodes += nodes;
            if (_nodes > MaxNodes)
            {
                throw new ManifestSyntaxException(Line(start), Field, $"the document holds more than {MaxNodes} nodes (counting what aliases repeat)");
            }
        }

        private static string ValueField(Frame frame) => frame.Node switch
        {
            JsonObject => frame.PendingKey is { } key ? Join(frame.Path, key) : frame.Path,
            JsonArray array => $"{frame.Path}[{array.Count}]",
            _ => frame.Path,
        };

        private static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";
    }
}

/// <summary>A document that is not YAML, or exceeds a bound: where, and what is wrong.</summary>
internal sealed class ManifestSyntaxException(int line, string? field, string problem) : Exception(problem)
{
    /// <summary>The 1-based line within the document.</summary>
    public int Line { get; } = line;

    /// <summary>The field being read, when known.</summary>
    public string? Field { get; } = string.IsNullOrEmpty(field) ? null : field;
}
