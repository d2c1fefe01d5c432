using System.Buffers;
using System.Collections.Immutable;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using System.Text.Unicode;
using FsmGateway.Kubernetes.Mapping;
using FsmGateway.Resources;

namespace FsmGateway.Kubernetes.Manifests;

/// <summary>
/// Reads Kubernetes manifests, the same multi-document YAML (or JSON) that <c>kubectl apply -f</c> takes, into the
/// model. Never throws for bad input: every problem becomes a <see cref="ManifestError"/> naming the file, the
/// document and the field; kinds FsmGateway does not read are skipped with a note.
/// </summary>
public static partial class ManifestReader
{
    private static readonly string[] ManifestExtensions = [".yaml", ".yml", ".json"];

    /// <summary>Reads every manifest at <paramref name="paths"/>: files, or folders whose <c>.yaml</c>, <c>.yml</c> and <c>.json</c> files are read in name order (not recursively).</summary>
    /// <param name="paths">Files or folders.</param>
    /// <param name="defaultNamespace">The namespace for namespaced objects that name none.</param>
    /// <returns>Everything read, every note and every error.</returns>
    public static ManifestSet ReadPaths(IEnumerable<string> paths, string defaultNamespace = "default")
    {
        ArgumentNullException.ThrowIfNull(paths);
        var results = new List<ManifestSet>();
        foreach (var path in paths)
        {
            if (Directory.Exists(path))
            {
                results.AddRange(ManifestFilesIn(path).Select(f => ReadFile(f, defaultNamespace)));
            }
            else
            {
                results.Add(ReadFile(path, defaultNamespace));
            }
        }

        return ManifestSet.Combine(results);
    }

    /// <summary>The manifest files of a folder (<c>.yaml</c>, <c>.yml</c>, <c>.json</c>; not recursive), in name order.</summary>
    internal static IEnumerable<string> ManifestFilesIn(string folder) =>
        Directory.EnumerateFiles(folder)
            .Where(static f => ManifestExtensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase))
            .Order(StringComparer.Ordinal);

    /// <summary>Reads one manifest file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="defaultNamespace">The namespace for namespaced objects that name none.</param>
    /// <returns>What the file holds, with notes and errors.</returns>
    public static ManifestSet ReadFile(string path, string defaultNamespace = "default")
    {
        ArgumentNullException.ThrowIfNull(path);

        // The folder source's reader: only regular files (a FIFO, a device or a link loop is an error, never a read
        // that blocks or never ends), at most MaxFileBytes.
        var outcome = ManifestFile.Read(path, MaxFileBytes);
        if (outcome.Bytes is not { } bytes)
        {
            return ManifestSet.Failed(new ManifestError(path, null, null, null, outcome.Problem ?? "cannot read: no such file or folder"));
        }

        return ReadBytes(bytes, path, defaultNamespace);
    }

    /// <summary>Reads a file's bytes (UTF-8; a leading byte-order mark dropped), as <see cref="ReadFile"/> does once it has them.</summary>
    internal static ManifestSet ReadBytes(byte[] bytes, string path, string defaultNamespace) =>
        Decode(bytes) is { } text
            ? ReadText(text, path, defaultNamespace)
            : ManifestSet.Failed(NotUtf8(bytes, path));

    /// <summary>The bytes as UTF-8 (a leading byte-order mark dropped), or <see langword="null"/> when they are not UTF-8.</summary>
    private static string? Decode(byte[] bytes)
    {
        var span = bytes.AsSpan();
        if (span.StartsWith("\uFEFF"u8))
        {
            span = span[3..];
        }

        var chars = new char[span.Length];
        return Utf8.ToUtf16(span, chars, out _, out var written, replaceInvalidSequences: false) == OperationStatus.Done
            ? new string(chars, 0, written)
            : null;
    }

    /// <summary>Names the document and line of the first byte that is not UTF-8 (YAML and JSON manifests are UTF-8).</summary>
    private static ManifestError NotUtf8(byte[] bytes, string path)
    {
        var chars = new char[bytes.Length];
        Utf8.ToUtf16(bytes, chars, out var valid, out var written, replaceInvalidSequences: false);
        var before = new string(chars, 0, written);
        var document = SplitDocuments(before).Count();
        var line = before.Count(static c => c == '\n') + 1;
        return new ManifestError(path, document, line, null, $"byte 0x{bytes[valid]:x2} at offset {valid} is not UTF-8; manifests must be UTF-8 text");
    }

    /// <summary>The largest manifest file read (a Kubernetes object is at most about 1.5 MiB; a file holds several).</summary>
    public const int MaxFileBytes = 16 * 1024 * 1024;

    /// <summary>Reads manifest text.</summary>
    /// <param name="text">One or more YAML documents separated by <c>---</c> lines.</param>
    /// <param name="source">What to call the text in messages (usually the file path).</param>
    /// <param name="defaultNamespace">The namespace for namespaced objects that name none.</param>
    /// <returns>What the text holds, with notes and errors.</returns>
    public static ManifestSet ReadText(string text, string source, string defaultNamespace = "default")
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(source);
        if (text.Length > MaxFileBytes)
        {
            return ManifestSet.Failed(new ManifestError(source, null, null, null, $"larger than {MaxFileBytes / (1024 * 1024)} MiB; not read"));
        }

        var resources = ImmutableArray.CreateBuilder<Resource>();
        var notes = ImmutableArray.CreateBuilder<string>();
        var errors = ImmutableArray.CreateBuilder<ManifestError>();
        var locations = ImmutableArray.CreateBuilder<ManifestLocation>();
        var documentNumber = 0;
        var aliases = new YamlToJson.AliasBudget();
        foreach (var (documentText, firstLine) in SplitDocuments(text))
        {
            documentNumber++;
            JsonNode? root;
            var lines = new Dictionary<JsonNode, int>(ReferenceEqualityComparer.Instance);
            try
            {
                root = YamlToJson.Parse(documentText, lines, aliases);
            }
            catch (ManifestSyntaxException e)
            {
                errors.Add(new ManifestError(source, documentNumber, firstLine + e.Line - 1, e.Field, e.Message));
                continue;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A fault of ours, not of the input; still a located error, never an escape that ends the reader's caller.
                errors.Add(new ManifestError(source, documentNumber, firstLine, null, $"could not be read ({ErrorText.Of(e)})"));
                continue;
            }

            if (root is null)
            {
                continue;
            }

            if (root is not JsonObject obj)
            {
                errors.Add(new ManifestError(source, documentNumber, firstLine, null, "expected a Kubernetes object (a mapping with apiVersion and kind)"));
                continue;
            }

            foreach (var (item, field) in Items(obj))
            {
                try
                {
                    var mapped = ResourceMapper.Map(item, defaultNamespace);
                    var at = new ManifestLocation(source, documentNumber, firstLine - 1 + lines.GetValueOrDefault(item, 1));
                    if (mapped.Resource is { } resource)
                    {
                        resources.Add(resource);
                        locations.Add(at with { Line = firstLine - 1 + LineOf(item, "metadata.name", lines) });
                        foreach (var (unknown, line) in KnownFields.Unknown(item, resource.Key.Kind).Select(f => (f, firstLine - 1 + LineOf(item, f, lines))).OrderBy(static u => u.Item2))
                        {
                            notes.Add(new ManifestLocation(source, documentNumber, line).Note(field + unknown, $"unknown field, not in the {LogText.Escape(KindOf(item))} schema; ignored"));
                        }
                    }
                    else
                    {
                        notes.Add(at.Note(null, mapped.SkipNote!));
                    }
                }
                catch (ResourceMappingException e)
                {
                    var line = firstLine - 1 + LineOf(item, e.Field, lines);
                    errors.Add(new ManifestError(source, documentNumber, line, field + e.Field, $"{e.ObjectDescription}: {e.Problem}"));
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // As above: a fault of ours, reported where it happened.
                    errors.Add(new ManifestError(source, documentNumber, firstLine - 1 + lines.GetValueOrDefault(item, 1), field.TrimEnd('.') is { Length: > 0 } f ? f : null, $"could not be mapped ({ErrorText.Of(e)})"));
                }
            }
        }

        return ManifestSet.Combine([new ManifestSet(resources.ToImmutable(), notes.ToImmutable(), errors.ToImmutable()) { Locations = locations.ToImmutable() }]);
    }

    private static string KindOf(JsonObject item) => item["kind"] is JsonValue kind && kind.TryGetValue<string>(out var text) ? text : "object";

    /// <summary>A <c>kind: List</c> document (what <c>kubectl get -o yaml</c> prints) holds its objects in <c>items</c>.</summary>
    private static IEnumerable<(JsonObject Item, string FieldPrefix)> Items(JsonObject document)
    {
        if (document["kind"] is JsonValue kind && kind.TryGetValue<string>(out var kindText) && kindText == "List" && document["items"] is JsonArray items)
        {
            for (var i = 0; i < items.Count; i++)
            {
                if (items[i] is JsonObject item)
                {
                    yield return (item, $"items[{i}].");
                }
            }

            yield break;
        }

        yield return (document, string.Empty);
    }

    /// <summary>The line of the deepest node on <paramref name="field"/>'s path (<c>spec.listeners[1].port</c>) that exists.</summary>
    private static int LineOf(JsonObject root, string field, Dictionary<JsonNode, int> lines)
    {
        JsonNode? node = root;
        var line = lines.GetValueOrDefault(root, 1);
        foreach (var segment in FieldSegments().Matches(field).Select(static m => m.Value))
        {
            node = segment[0] == '[' && node is JsonArray array && int.TryParse(segment[1..^1], out var index) && index < array.Count
                ? array[index]
                : node is JsonObject obj && segment[0] != '[' ? obj[segment] : null;
            if (node is null)
            {
                break;
            }

            line = lines.GetValueOrDefault(node, line);
        }

        return line;
    }

    [GeneratedRegex(@"[^.\[\]]+|\[\d+\]")]
    private static partial Regex FieldSegments();

    /// <summary>Splits at lines that start with <c>---</c>, as kubectl does, remembering where each document starts.</summary>
    private static IEnumerable<(string Text, int FirstLine)> SplitDocuments(string text)
    {
        var lines = text.ReplaceLineEndings("\n").Split('\n');
        var current = new List<string>();
        var firstLine = 1;
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].StartsWith("---", StringComparison.Ordinal) && (lines[i].Length == 3 || char.IsWhiteSpace(lines[i][3])))
            {
                yield return (string.Join('\n', current), firstLine);
                current.Clear();
                firstLine = i + 2;
                continue;
            }

            current.Add(lines[i]);
        }

        yield return (string.Join('\n', current), firstLine);
    }
}
