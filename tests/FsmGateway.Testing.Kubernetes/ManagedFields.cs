using System.Text.Json.Nodes;

namespace FsmGateway.Testing.Kubernetes;

/// <summary>
/// Server-side apply's field ownership, simplified but honest: each write records which leaf fields which field manager
/// set, in <c>metadata.managedFields</c> (entries of manager, operation <c>Apply</c> or <c>Update</c>, and a
/// <c>fieldsV1</c> tree of <c>f:</c> and <c>k:</c> keys as the real server writes them). An apply sets the fields it
/// names, removes the fields the same manager applied before and names no more (unless another manager owns them too),
/// and fails with 409 when it would change a value another manager owns, unless forced (then it takes the field over).
/// A non-apply write (create, update, merge or JSON patch) makes its manager the owner of every field it changed.
/// Simplifications: lists of objects that all have a <c>uid</c> (owner references) or a <c>name</c> (containers, ports,
/// volumes, ...) are merged by that key, every other list is atomic (owned and replaced whole); <c>status</c> and the
/// server-set metadata are not tracked.
/// </summary>
internal static class ManagedFields
{
    private static readonly HashSet<string> UntrackedMetadata = ["name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp", "managedFields", "selfLink"];

    /// <summary>One manager's fields.</summary>
    internal sealed record Entry(string Manager, string Operation, string ApiVersion, SortedSet<string> Fields);

    /// <summary>The manager of a non-apply request: its <c>fieldManager</c>, else its user agent's first word (as the real server does).</summary>
    public static string ManagerOf(string? fieldManager, string? userAgent) =>
        !string.IsNullOrEmpty(fieldManager) ? fieldManager
        : string.IsNullOrEmpty(userAgent) ? "unknown"
        : userAgent.Split('/', ' ')[0];

    /// <summary>The tracked leaf fields of <paramref name="obj"/>, as paths of <c>f:</c>/<c>k:</c> segments joined by <c>\n</c>.</summary>
    public static SortedSet<string> Leaves(JsonObject obj)
    {
        var leaves = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var (key, value) in obj)
        {
            if (key is "apiVersion" or "kind" or "status")
            {
                continue;
            }

            if (key == "metadata" && value is JsonObject metadata)
            {
                foreach (var (metaKey, metaValue) in metadata)
                {
                    if (!UntrackedMetadata.Contains(metaKey))
                    {
                        Collect(metaValue, $"f:metadata\nf:{metaKey}", leaves);
                    }
                }

                continue;
            }

            Collect(value, $"f:{key}", leaves);
        }

        return leaves;
    }

    private static void Collect(JsonNode? node, string path, SortedSet<string> leaves)
    {
        switch (node)
        {
            case JsonObject o when o.Count > 0:
                foreach (var (key, value) in o)
                {
                    Collect(value, $"{path}\nf:{key}", leaves);
                }

                break;
            case JsonArray a when KeyOf(a) is { } key:
                foreach (var element in a.OfType<JsonObject>())
                {
                    var elementPath = $"{path}\n{ElementKey(element, key)}";
                    leaves.Add($"{elementPath}\n.");
                    foreach (var (field, value) in element)
                    {
                        Collect(value, $"{elementPath}\nf:{field}", leaves);
                    }
                }

                break;
            default:
                leaves.Add(path);
                break;
        }
    }

    /// <summary>The merge key of a list: <c>uid</c> or <c>name</c> when every element is an object with it; null for an atomic list.</summary>
    private static string? KeyOf(JsonArray array) =>
        array.Count == 0 || !array.All(e => e is JsonObject) ? null
        : array.All(e => e!["uid"] is JsonValue) ? "uid"
        : array.All(e => e!["name"] is JsonValue) ? "name"
        : null;

    private static string ElementKey(JsonObject element, string key) =>
        $"k:{new JsonObject { [key] = element[key]!.DeepClone() }.ToJsonString()}";

    /// <summary>The value at a leaf path, or null when absent; <paramref name="found"/> says which.</summary>
    public static JsonNode? ValueAt(JsonObject obj, string path, out bool found)
    {
        JsonNode? node = obj;
        found = false;
        foreach (var segment in path.Split('\n'))
        {
            if (segment == ".")
            {
                break;
            }

            node = Step(node, segment);
            if (node is null)
            {
                return null;
            }
        }

        found = true;
        return node;
    }

    private static JsonNode? Step(JsonNode? node, string segment)
    {
        if (segment.StartsWith("f:", StringComparison.Ordinal))
        {
            return node is JsonObject o && o.TryGetPropertyValue(segment[2..], out var v) ? v ?? JsonValue.Create((string?)null) : null;
        }

        var (key, value) = ParseElementKey(segment);
        return (node as JsonArray)?.OfType<JsonObject>().FirstOrDefault(e => JsonNode.DeepEquals(e[key], value));
    }

    private static (string Key, JsonNode? Value) ParseElementKey(string segment)
    {
        var single = JsonNode.Parse(segment[2..])!.AsObject().Single();
        return (single.Key, single.Value);
    }

    /// <summary>Removes the field at a leaf path (a keyed element when the path ends in <c>.</c>), if present.</summary>
    public static void RemoveAt(JsonObject obj, string path)
    {
        var segments = path.Split('\n');
        var last = segments[^1] == "." ? segments.Length - 2 : segments.Length - 1;
        JsonNode? parent = obj;
        for (var i = 0; i < last && parent is not null; i++)
        {
            parent = Step(parent, segments[i]);
        }

        var segment = segments[last];
        switch (parent)
        {
            case JsonObject o when segment.StartsWith("f:", StringComparison.Ordinal):
                o.Remove(segment[2..]);
                break;
            case JsonArray a when segment.StartsWith("k:", StringComparison.Ordinal):
                var (key, value) = ParseElementKey(segment);
                if (a.OfType<JsonObject>().FirstOrDefault(e => JsonNode.DeepEquals(e[key], value)) is { } element)
                {
                    a.Remove(element);
                }

                break;
        }
    }

    /// <summary>Sets <paramref name="applied"/>'s fields on <paramref name="target"/>: objects merged, keyed lists merged by key, anything else replaced.</summary>
    public static JsonNode? Merge(JsonNode? target, JsonNode? applied)
    {
        switch (target, applied)
        {
            case (JsonObject t, JsonObject a):
                var result = (JsonObject)t.DeepClone();
                foreach (var (key, value) in a)
                {
                    result.TryGetPropertyValue(key, out var current);
                    result[key] = Merge(current, value);
                }

                return result;
            case (JsonArray t, JsonArray a) when KeyOf(a) is { } key && KeyOf(t) == key:
                var merged = new JsonArray();
                var appliedByKey = a.OfType<JsonObject>().ToDictionary(e => e[key]!.ToJsonString());
                foreach (var element in t.OfType<JsonObject>())
                {
                    merged.Add(appliedByKey.Remove(element[key]!.ToJsonString(), out var replacement) ? Merge(element, replacement) : element.DeepClone());
                }

                foreach (var element in a.OfType<JsonObject>().Where(e => appliedByKey.ContainsKey(e[key]!.ToJsonString())))
                {
                    merged.Add(element.DeepClone());
                }

                return merged;
            default:
                return applied?.DeepClone();
        }
    }

    /// <summary>The entries recorded on an object.</summary>
    public static List<Entry> Read(JsonObject obj)
    {
        var entries = new List<Entry>();
        foreach (var node in obj["metadata"]?["managedFields"] as JsonArray ?? [])
        {
            if (node is JsonObject e && e["manager"]?.GetValue<string>() is { } manager)
            {
                var fields = new SortedSet<string>(StringComparer.Ordinal);
                Flatten(e["fieldsV1"] as JsonObject ?? [], string.Empty, fields);
                entries.Add(new Entry(manager, e["operation"]?.GetValue<string>() ?? "Update", e["apiVersion"]?.GetValue<string>() ?? string.Empty, fields));
            }
        }

        return entries;
    }

    private static void Flatten(JsonObject tree, string prefix, SortedSet<string> fields)
    {
        foreach (var (key, value) in tree)
        {
            var path = prefix.Length == 0 ? key : $"{prefix}\n{key}";
            if (value is JsonObject { Count: > 0 } child)
            {
                Flatten(child, path, fields);
            }
            else
            {
                fields.Add(path);
            }
        }
    }

    /// <summary>Writes the entries (those with fields) into the object's <c>metadata.managedFields</c>.</summary>
    public static void Write(JsonObject obj, IEnumerable<Entry> entries)
    {
        var array = new JsonArray();
        foreach (var entry in entries.Where(e => e.Fields.Count > 0))
        {
            var tree = new JsonObject();
            foreach (var path in entry.Fields)
            {
                var node = tree;
                foreach (var segment in path.Split('\n'))
                {
                    if (node[segment] is not JsonObject next)
                    {
                        next = [];
                        node[segment] = next;
                    }

                    node = next;
                }
            }

            array.Add(new JsonObject
            {
                ["manager"] = entry.Manager,
                ["operation"] = entry.Operation,
                ["apiVersion"] = entry.ApiVersion,
                ["fieldsType"] = "FieldsV1",
                ["fieldsV1"] = tree,
            });
        }

        var metadata = (JsonObject)obj["metadata"]!;
        metadata.Remove("managedFields");
        if (array.Count > 0)
        {
            metadata["managedFields"] = array;
        }
    }

    /// <summary>
    /// A non-apply write by <paramref name="manager"/> changed <paramref name="before"/> into <paramref name="after"/>:
    /// it owns every field it added or changed, and nobody owns a field it removed.
    /// </summary>
    public static List<Entry> Updated(JsonObject? before, JsonObject after, string manager, string apiVersion)
    {
        var entries = before is null ? [] : Read(before);
        var old = before is null ? new SortedSet<string>(StringComparer.Ordinal) : Leaves(before);
        var now = Leaves(after);
        var changed = now.Where(p => !old.Contains(p) || !JsonNode.DeepEquals(ValueAt(before!, p, out _), ValueAt(after, p, out _))).ToList();
        var removed = old.Where(p => !now.Contains(p)).ToList();
        foreach (var entry in entries)
        {
            entry.Fields.ExceptWith(changed);
            entry.Fields.ExceptWith(removed);
        }

        if (changed.Count > 0)
        {
            var mine = entries.FirstOrDefault(e => e.Manager == manager && e.Operation == "Update");
            if (mine is null)
            {
                mine = new Entry(manager, "Update", apiVersion, new SortedSet<string>(StringComparer.Ordinal));
                entries.Add(mine);
            }

            mine.Fields.UnionWith(changed);
        }

        return entries;
    }

    /// <summary>
    /// Server-side apply of <paramref name="applied"/> by <paramref name="manager"/> onto <paramref name="existing"/>:
    /// the merged object with its managedFields, or a 409 naming each conflicting manager and field when another
    /// manager owns a field this apply would change and <paramref name="force"/> is off.
    /// </summary>
    public static JsonObject Apply(JsonObject existing, JsonObject applied, string manager, bool force, string apiVersion)
    {
        var entries = Read(existing);
        var wanted = Leaves(applied);
        var conflicts = new List<(Entry Entry, string Path)>();
        foreach (var entry in entries.Where(e => !(e.Manager == manager && e.Operation == "Apply")))
        {
            foreach (var path in entry.Fields.Where(wanted.Contains))
            {
                if (!path.EndsWith("\n.", StringComparison.Ordinal)
                    && !JsonNode.DeepEquals(ValueAt(existing, path, out _), ValueAt(applied, path, out _)))
                {
                    conflicts.Add((entry, path));
                }
            }
        }

        if (conflicts.Count > 0 && !force)
        {
            var lines = conflicts.Select(c => $"conflict with \"{c.Entry.Manager}\"{(c.Entry.Operation == "Update" ? $" using {c.Entry.ApiVersion}" : string.Empty)}: {Display(c.Path)}");
            throw new FakeApiException(409, "Conflict", $"Apply failed with {conflicts.Count} conflict{(conflicts.Count == 1 ? string.Empty : "s")}: {string.Join("\n", lines)}");
        }

        foreach (var (entry, path) in conflicts)
        {
            entry.Fields.Remove(path);
        }

        var mine = entries.FirstOrDefault(e => e.Manager == manager && e.Operation == "Apply");
        var result = (JsonObject)existing.DeepClone();
        if (mine is not null)
        {
            var sharedOrKept = entries.Where(e => !ReferenceEquals(e, mine)).SelectMany(e => e.Fields).ToHashSet(StringComparer.Ordinal);

            // Deepest first, so an element goes after its fields.
            foreach (var path in mine.Fields.Where(p => !wanted.Contains(p) && !sharedOrKept.Contains(p)).OrderByDescending(p => p.Length))
            {
                RemoveAt(result, path);
            }
        }
        else
        {
            mine = new Entry(manager, "Apply", apiVersion, new SortedSet<string>(StringComparer.Ordinal));
            entries.Add(mine);
        }

        var appliedBody = (JsonObject)applied.DeepClone();
        appliedBody.Remove("status");
        result = (JsonObject)Merge(result, appliedBody)!;
        mine.Fields.Clear();
        mine.Fields.UnionWith(wanted);
        Write(result, entries);
        return result;
    }

    /// <summary>A path as the real server names it in conflicts: <c>.spec.replicas</c>, <c>.spec.template.spec.containers[name="gateway"].image</c>.</summary>
    private static string Display(string path) => string.Concat(path.Split('\n').Where(s => s != ".").Select(s =>
        s.StartsWith("f:", StringComparison.Ordinal) ? $".{s[2..]}" : $"[{string.Join(",", JsonNode.Parse(s[2..])!.AsObject().Select(p => $"{p.Key}={p.Value!.ToJsonString()}"))}]"));
}
