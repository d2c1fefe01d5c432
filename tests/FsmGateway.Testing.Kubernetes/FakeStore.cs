using System.Globalization;
using System.Text.Json.Nodes;

namespace FsmGateway.Testing.Kubernetes;

/// <summary>A stored change, kept for watches that resume from a resourceVersion.</summary>
internal sealed record StoredEvent(long ResourceVersion, string StoreKey, string Type, JsonObject Object, JsonObject? Previous);

/// <summary>
/// The state of the fake API server: typed resources, objects, one global resourceVersion, the event history and the open watches.
/// Everything happens under one lock; stored objects are never mutated (every write stores a fresh object), and callers get clones.
/// </summary>
internal sealed class FakeStore
{
    private readonly Lock _gate = new();
    private readonly FakeApiServerOptions _options;
    private readonly Dictionary<(string Group, string Version, string Plural), ResourceType> _types = [];
    private readonly Dictionary<string, SortedDictionary<string, JsonObject>> _objects = [];
    private readonly Dictionary<string, (string StoreKey, string Key)> _byUid = [];
    private readonly List<StoredEvent> _history = [];
    private readonly List<Watcher> _watchers = [];
    private readonly Dictionary<string, (long ResourceVersion, List<JsonObject> Items)> _snapshots = [];
    private long _resourceVersion = 1;
    private long _compactedTo = 1;
    private int _nextClusterIp = 10;

    public FakeStore(FakeApiServerOptions options)
    {
        _options = options;
        foreach (var t in ResourceType.BuiltIn())
        {
            _types[(t.Group, t.Version, t.Plural)] = t;
        }
    }

    public Lock Gate => _gate;

    public long ResourceVersion
    {
        get
        {
            lock (_gate)
            {
                return _resourceVersion;
            }
        }
    }

    // ---- types ----

    public ResourceType? Find(string group, string version, string plural)
    {
        lock (_gate)
        {
            return _types.GetValueOrDefault((group, version, plural));
        }
    }

    public ResourceType FindByKind(string apiVersion, string kind)
    {
        var slash = apiVersion.IndexOf('/', StringComparison.Ordinal);
        var group = slash < 0 ? "" : apiVersion[..slash];
        var version = slash < 0 ? apiVersion : apiVersion[(slash + 1)..];
        lock (_gate)
        {
            return _types.Values.FirstOrDefault(t => t.Group == group && t.Version == version && t.Kind == kind)
                ?? _types.Values.FirstOrDefault(t => t.Group == group && t.Kind == kind)
                ?? throw new FakeApiException(404, "NotFound", $"no matches for kind \"{kind}\" in version \"{apiVersion}\"");
        }
    }

    public List<ResourceType> Types()
    {
        lock (_gate)
        {
            return [.. _types.Values];
        }
    }

    // ---- reads ----

    public JsonObject Get(ResourceType t, string? ns, string name)
    {
        lock (_gate)
        {
            return Render(t, Lookup(t, ns, name) ?? throw FakeApiException.NotFound(t, name));
        }
    }

    public JsonObject? TryGet(ResourceType t, string? ns, string name)
    {
        lock (_gate)
        {
            var o = Lookup(t, ns, name);
            return o is null ? null : Render(t, o);
        }
    }

    public JsonObject List(ResourceType t, string? ns, Selector labels, Selector fields, int? limit, string? continueToken)
    {
        lock (_gate)
        {
            long rv;
            List<JsonObject> items;
            int start;
            string? snapshotId = null;
            if (!string.IsNullOrEmpty(continueToken))
            {
                (snapshotId, start) = DecodeContinue(continueToken);
                if (!_snapshots.TryGetValue(snapshotId, out var snap))
                {
                    throw FakeApiException.Expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.");
                }
                (rv, items) = snap;
            }
            else
            {
                rv = _resourceVersion;
                start = 0;
                items = [.. Scan(t, ns).Where(o => labels.Matches(o) && fields.Matches(o))];
            }
            var pageSize = limit is > 0 ? limit : null;
            if (_options.PageSizeLimit is > 0 and var cap && (pageSize is null || pageSize > cap))
            {
                pageSize = cap;
            }
            var end = pageSize is null ? items.Count : Math.Min(items.Count, start + pageSize.Value);
            var metadata = new JsonObject { ["resourceVersion"] = rv.ToString(CultureInfo.InvariantCulture) };
            if (end < items.Count)
            {
                if (snapshotId is null)
                {
                    snapshotId = Guid.NewGuid().ToString("N");
                    _snapshots[snapshotId] = (rv, items);
                }
                metadata["continue"] = EncodeContinue(snapshotId, end, rv);
                metadata["remainingItemCount"] = items.Count - end;
            }
            else if (snapshotId is not null)
            {
                _snapshots.Remove(snapshotId);
            }
            var array = new JsonArray();
            for (var i = start; i < end; i++)
            {
                array.Add(Render(t, items[i]));
            }
            return new JsonObject
            {
                ["apiVersion"] = t.ApiVersion,
                ["kind"] = t.ListKind,
                ["metadata"] = metadata,
                ["items"] = array,
            };
        }
    }

    private static string EncodeContinue(string id, int offset, long rv) =>
        Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(new JsonObject { ["v"] = "meta.k8s.io/v1", ["rv"] = rv, ["id"] = id, ["start"] = offset }.ToJsonString()));

    private static (string Id, int Offset) DecodeContinue(string token)
    {
        try
        {
            var o = JsonNode.Parse(Convert.FromBase64String(token))!.AsObject();
            return (o["id"]!.GetValue<string>(), o["start"]!.GetValue<int>());
        }
        catch (Exception e) when (e is FormatException or System.Text.Json.JsonException or InvalidOperationException or NullReferenceException)
        {
            throw FakeApiException.BadRequest("continue key is not valid: " + e.Message);
        }
    }

    // ---- writes ----

    /// <summary>POST: a new object. <paramref name="keepStatus"/> is for store seeding (HTTP create drops the status of types with a status subresource).</summary>
    public JsonObject Create(ResourceType t, string? ns, JsonObject body, bool keepStatus = false, string? manager = null)
    {
        lock (_gate)
        {
            var obj = (JsonObject)body.DeepClone();
            var meta = Meta(obj);
            if (manager is not null)
            {
                // A client's create: its manager owns every field it set (a managedFields in the body is ignored).
                meta.Remove("managedFields");
                ManagedFields.Write(obj, ManagedFields.Updated(null, obj, manager, t.ApiVersion));
            }
            var name = Str(meta, "name");
            if (string.IsNullOrEmpty(name))
            {
                var prefix = Str(meta, "generateName");
                if (string.IsNullOrEmpty(prefix))
                {
                    throw FakeApiException.Invalid(t, "", "metadata.name: Required value: name or generateName is required");
                }
                do
                {
                    name = prefix + RandomSuffix();
                }
                while (Lookup(t, ns ?? Str(meta, "namespace") ?? "default", name) is not null);
                meta["name"] = name;
            }
            ns = Namespace(t, ns, meta);
            if (Lookup(t, ns, name) is not null)
            {
                throw FakeApiException.AlreadyExists(t, name);
            }
            meta["uid"] = Guid.NewGuid().ToString();
            meta["creationTimestamp"] = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
            meta["generation"] = 1;
            meta.Remove("resourceVersion");
            meta.Remove("deletionTimestamp");
            meta.Remove("selfLink");
            if (t.HasStatus && !keepStatus)
            {
                obj.Remove("status");
            }
            Stamp(t, obj);
            Defaults(t, obj);
            var stored = Commit(t, "ADDED", ns, name, obj, previous: null);
            return Render(t, stored);
        }
    }

    /// <summary>PUT (or the result of a patch): replace the object, or with <paramref name="statusOnly"/> just its status.</summary>
    public JsonObject Update(ResourceType t, string? ns, string name, JsonObject body, bool statusOnly, bool keepStatus = false, string? manager = null)
    {
        lock (_gate)
        {
            ns = t.Namespaced ? ns ?? "default" : null;
            var existing = Lookup(t, ns, name) ?? throw FakeApiException.NotFound(t, name);
            var bodyMeta = body["metadata"] as JsonObject;
            var bodyRv = bodyMeta is null ? null : Str(bodyMeta, "resourceVersion");
            if (!string.IsNullOrEmpty(bodyRv) && bodyRv != Str(Meta(existing), "resourceVersion"))
            {
                throw FakeApiException.Conflict(t, name);
            }
            var bodyName = bodyMeta is null ? null : Str(bodyMeta, "name");
            if (!string.IsNullOrEmpty(bodyName) && bodyName != name)
            {
                throw FakeApiException.BadRequest($"the name of the object ({bodyName}) does not match the name on the URL ({name})");
            }
            JsonObject next;
            if (statusOnly)
            {
                next = (JsonObject)existing.DeepClone();
                next.Remove("status");
                if (body["status"] is { } status)
                {
                    next["status"] = status.DeepClone();
                }
            }
            else
            {
                next = (JsonObject)body.DeepClone();
                var meta = Meta(next);
                var old = Meta(existing);
                meta["name"] = name;
                if (ns is null)
                {
                    meta.Remove("namespace");
                }
                else
                {
                    meta["namespace"] = ns;
                }
                foreach (var key in new[] { "uid", "creationTimestamp", "deletionTimestamp", "generation" })
                {
                    meta.Remove(key);
                    if (old[key] is { } v)
                    {
                        meta[key] = v.DeepClone();
                    }
                }
                if (t.HasStatus && !(keepStatus && next.ContainsKey("status")))
                {
                    next.Remove("status");
                    if (existing["status"] is { } status)
                    {
                        next["status"] = status.DeepClone();
                    }
                }

                // A client's write: its manager owns what it changed. Otherwise (an apply's result, a seeding helper)
                // the body's managedFields stand, or the existing ones when it has none.
                if (manager is not null)
                {
                    meta.Remove("managedFields");
                    ManagedFields.Write(next, ManagedFields.Updated(existing, next, manager, t.ApiVersion));
                }
                else if (meta["managedFields"] is null && old["managedFields"] is { } fields)
                {
                    meta["managedFields"] = fields.DeepClone();
                }
            }
            Stamp(t, next);
            Meta(next)["resourceVersion"] = Str(Meta(existing), "resourceVersion");
            if (JsonNode.DeepEquals(next, existing))
            {
                return Render(t, existing); // a no-op write: no new resourceVersion, no event (as the real server)
            }
            if (!statusOnly && !JsonNode.DeepEquals(Spec(next), Spec(existing)))
            {
                var generation = Meta(existing)["generation"] is { } g ? long.Parse(g.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture) : 1;
                Meta(next)["generation"] = generation + 1;
            }
            Defaults(t, next);
            var stored = Commit(t, "MODIFIED", ns, name, next, existing);
            return Render(t, stored);
        }
    }

    /// <summary>
    /// PATCH: merge, strategic (as merge) or JSON patch on the object or its status, its changes owned by
    /// <paramref name="manager"/>; or server-side apply (<see cref="ManagedFields"/>), which creates when missing.
    /// </summary>
    public (JsonObject Result, bool Created) Patch(ResourceType t, string? ns, string name, string contentType, JsonNode? patch, bool statusOnly, string? manager = null, bool force = false)
    {
        lock (_gate)
        {
            ns = t.Namespaced ? ns ?? "default" : null;
            var existing = Lookup(t, ns, name);
            var apply = contentType.StartsWith("application/apply-patch", StringComparison.OrdinalIgnoreCase);
            if (apply)
            {
                return ApplyPatch(t, ns, name, existing, patch, statusOnly, manager, force);
            }
            if (existing is null)
            {
                throw FakeApiException.NotFound(t, name);
            }
            JsonNode? result;
            if (contentType.StartsWith("application/json-patch+json", StringComparison.OrdinalIgnoreCase))
            {
                result = JsonPatching.JsonPatch(existing, patch as JsonArray ?? throw FakeApiException.BadRequest("a JSON patch must be an array of operations"));
            }
            else if (contentType.StartsWith("application/merge-patch+json", StringComparison.OrdinalIgnoreCase)
                || contentType.StartsWith("application/strategic-merge-patch+json", StringComparison.OrdinalIgnoreCase))
            {
                if (patch is not JsonObject)
                {
                    throw FakeApiException.BadRequest("a merge patch must be a JSON object");
                }
                result = JsonPatching.MergePatch(existing, patch, strategic: !contentType.StartsWith("application/merge-patch", StringComparison.OrdinalIgnoreCase));
            }
            else
            {
                throw new FakeApiException(415, "UnsupportedMediaType", $"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {contentType})");
            }
            if (result is not JsonObject patched)
            {
                throw new FakeApiException(422, "Invalid", "the patch did not produce an object");
            }
            // A resourceVersion in the patch is a precondition; otherwise the patch applies to whatever is current.
            var patchRv = (patch as JsonObject)?["metadata"]?["resourceVersion"]?.ToString();
            Meta(patched)["resourceVersion"] = string.IsNullOrEmpty(patchRv) ? Str(Meta(existing), "resourceVersion") : patchRv;
            return (Update(t, ns, name, patched, statusOnly, manager: statusOnly ? null : manager), false);
        }
    }

    private (JsonObject Result, bool Created) ApplyPatch(ResourceType t, string? ns, string name, JsonObject? existing, JsonNode? patch, bool statusOnly, string? manager, bool force)
    {
        if (statusOnly)
        {
            throw FakeApiException.BadRequest("server-side apply of the status subresource is not implemented by the fake");
        }
        if (string.IsNullOrEmpty(manager))
        {
            throw new FakeApiException(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch");
        }
        if (patch is not JsonObject applied)
        {
            throw FakeApiException.BadRequest("an apply patch must be an object");
        }
        if (Str(applied, "kind") != t.Kind || Str(applied, "apiVersion") != t.ApiVersion)
        {
            throw FakeApiException.BadRequest($"an apply patch must name its apiVersion and kind ({t.ApiVersion} {t.Kind}), not '{Str(applied, "apiVersion")}' '{Str(applied, "kind")}'");
        }
        var appliedMeta = applied["metadata"] as JsonObject;
        var appliedName = appliedMeta is null ? null : Str(appliedMeta, "name");
        if (!string.IsNullOrEmpty(appliedName) && appliedName != name)
        {
            throw FakeApiException.BadRequest($"the name of the object ({appliedName}) does not match the name on the URL ({name})");
        }
        if (existing is null)
        {
            var created = ManagedFields.Apply(new JsonObject { ["metadata"] = new JsonObject() }, applied, manager, force, t.ApiVersion);
            Meta(created)["name"] = name;
            return (Create(t, ns, created), true);
        }
        var result = ManagedFields.Apply(existing, applied, manager, force, t.ApiVersion);
        Meta(result)["resourceVersion"] = Str(Meta(existing), "resourceVersion");
        return (Update(t, ns, name, result, statusOnly: false), false);
    }

    /// <summary>DELETE: removes the object and (like the garbage collector) its dependents; returns the final state, or null when absent.</summary>
    public JsonObject? Delete(ResourceType t, string? ns, string name)
    {
        lock (_gate)
        {
            ns = t.Namespaced ? ns ?? "default" : null;
            var existing = Lookup(t, ns, name);
            if (existing is null)
            {
                return null;
            }
            var final = DeleteStored(t.StoreKey, Key(ns, name));
            return Render(t, final);
        }
    }

    public JsonObject DeleteCollection(ResourceType t, string? ns, Selector labels, Selector fields)
    {
        lock (_gate)
        {
            var items = new JsonArray();
            foreach (var o in Scan(t, ns).Where(o => labels.Matches(o) && fields.Matches(o)).ToList())
            {
                var meta = Meta(o);
                if (_objects[t.StoreKey].ContainsKey(Key(Str(meta, "namespace"), Str(meta, "name")!)))
                {
                    items.Add(Render(t, DeleteStored(t.StoreKey, Key(Str(meta, "namespace"), Str(meta, "name")!))));
                }
            }
            return new JsonObject
            {
                ["apiVersion"] = t.ApiVersion,
                ["kind"] = t.ListKind,
                ["metadata"] = new JsonObject { ["resourceVersion"] = _resourceVersion.ToString(CultureInfo.InvariantCulture) },
                ["items"] = items,
            };
        }
    }

    private JsonObject DeleteStored(string storeKey, string key)
    {
        var existing = _objects[storeKey][key];
        _objects[storeKey].Remove(key);
        var meta = Meta(existing);
        var uid = Str(meta, "uid");
        if (uid is not null)
        {
            _byUid.Remove(uid);
        }
        var final = (JsonObject)existing.DeepClone();
        _resourceVersion++;
        Meta(final)["resourceVersion"] = _resourceVersion.ToString(CultureInfo.InvariantCulture);
        Record(new StoredEvent(_resourceVersion, storeKey, "DELETED", final, existing));

        if (storeKey == "apiextensions.k8s.io/customresourcedefinitions")
        {
            UnregisterCrd(final);
        }
        if (storeKey == "/namespaces")
        {
            var ns = Str(meta, "name");
            foreach (var (sk, objects) in _objects)
            {
                foreach (var k in objects.Where(p => Str(Meta(p.Value), "namespace") == ns).Select(p => p.Key).ToList())
                {
                    if (objects.ContainsKey(k))
                    {
                        DeleteStored(sk, k);
                    }
                }
            }
        }
        if (uid is not null)
        {
            // Garbage collection: dependents with no owner left go too, recursively.
            var dependents = _objects.SelectMany(p => p.Value.Select(o => (StoreKey: p.Key, o.Key, Obj: o.Value)))
                .Where(d => Owners(d.Obj).Contains(uid))
                .ToList();
            foreach (var d in dependents)
            {
                if (_objects.TryGetValue(d.StoreKey, out var objects) && objects.ContainsKey(d.Key) && !Owners(d.Obj).Any(_byUid.ContainsKey))
                {
                    DeleteStored(d.StoreKey, d.Key);
                }
            }
        }
        return final;
    }

    private static IEnumerable<string> Owners(JsonObject obj) =>
        (obj["metadata"]?["ownerReferences"] as JsonArray ?? []).Select(r => r?["uid"]?.ToString()).OfType<string>();

    // ---- CRDs ----

    private void RegisterCrd(JsonObject crd)
    {
        var spec = crd["spec"] as JsonObject ?? throw new FakeApiException(422, "Invalid", "CustomResourceDefinition without spec");
        var group = spec["group"]?.ToString() ?? throw new FakeApiException(422, "Invalid", "spec.group: Required value");
        var names = spec["names"] as JsonObject ?? throw new FakeApiException(422, "Invalid", "spec.names: Required value");
        var plural = names["plural"]?.ToString() ?? throw new FakeApiException(422, "Invalid", "spec.names.plural: Required value");
        var kind = names["kind"]?.ToString() ?? throw new FakeApiException(422, "Invalid", "spec.names.kind: Required value");
        var singular = names["singular"]?.ToString() ?? kind.ToLowerInvariant();
        var shortNames = (names["shortNames"] as JsonArray ?? []).Select(n => n!.ToString()).ToArray();
        var namespaced = spec["scope"]?.ToString() != "Cluster";
        foreach (var key in _types.Keys.Where(k => k.Group == group && k.Plural == plural).ToList())
        {
            _types.Remove(key);
        }
        foreach (var v in spec["versions"] as JsonArray ?? [])
        {
            if (v is JsonObject version && version["served"]?.GetValue<bool>() != false)
            {
                var hasStatus = version["subresources"]?["status"] is not null || spec["subresources"]?["status"] is not null;
                var name = version["name"]!.ToString();
                _types[(group, name, plural)] = new ResourceType(group, name, plural, singular, kind, namespaced, hasStatus, shortNames, FromCrd: true);
            }
        }
    }

    private void UnregisterCrd(JsonObject crd)
    {
        var group = crd["spec"]?["group"]?.ToString();
        var plural = crd["spec"]?["names"]?["plural"]?.ToString();
        if (group is null || plural is null)
        {
            return;
        }
        foreach (var key in _types.Keys.Where(k => k.Group == group && k.Plural == plural).ToList())
        {
            _types.Remove(key);
        }
        var storeKey = group + "/" + plural;
        if (_objects.TryGetValue(storeKey, out var objects))
        {
            foreach (var k in objects.Keys.ToList())
            {
                if (objects.ContainsKey(k))
                {
                    DeleteStored(storeKey, k);
                }
            }
        }
        foreach (var w in _watchers.Where(w => w.Type.StoreKey == storeKey))
        {
            w.Complete();
        }
    }

    private static JsonObject CrdStatus(JsonObject crd)
    {
        var now = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        JsonObject Condition(string type, string reason) => new()
        {
            ["type"] = type,
            ["status"] = "True",
            ["lastTransitionTime"] = now,
            ["reason"] = reason,
            ["message"] = reason,
        };
        return new JsonObject
        {
            ["acceptedNames"] = crd["spec"]?["names"]?.DeepClone(),
            ["conditions"] = new JsonArray(Condition("NamesAccepted", "NoConflicts"), Condition("Established", "InitialNamesAccepted")),
            ["storedVersions"] = new JsonArray((crd["spec"]?["versions"] as JsonArray ?? []).Where(v => v?["storage"]?.GetValue<bool>() == true).Select(v => (JsonNode?)JsonValue.Create(v!["name"]!.ToString())).ToArray()),
        };
    }

    // ---- watches ----

    /// <summary>Registers a watch: queues the replay (or the synthetic ADDED events) and, for a too old resourceVersion, a 410 ERROR.</summary>
    public Watcher Watch(ResourceType t, string? ns, Selector labels, Selector fields, string? resourceVersion, Microsoft.AspNetCore.Http.HttpContext? context, bool sendInitialEvents = false)
    {
        lock (_gate)
        {
            var w = new Watcher(t, ns, labels, fields, context);
            if (sendInitialEvents || string.IsNullOrEmpty(resourceVersion) || resourceVersion == "0")
            {
                foreach (var o in Scan(t, ns).Where(w.Matches))
                {
                    w.Enqueue("ADDED", o);
                }
                if (sendInitialEvents)
                {
                    w.EnqueueInitialEventsEnd(_resourceVersion);
                }
            }
            else
            {
                if (!long.TryParse(resourceVersion, NumberStyles.None, CultureInfo.InvariantCulture, out var from))
                {
                    throw new FakeApiException(400, "BadRequest", $"resourceVersion: Invalid value: \"{resourceVersion}\": must be a number");
                }
                if (from < _compactedTo)
                {
                    w.Fail(FakeApiException.Status(410, "Expired", $"too old resource version: {from} ({_compactedTo})"));
                    return w;
                }
                foreach (var e in _history.Where(e => e.ResourceVersion > from && e.StoreKey == t.StoreKey))
                {
                    w.Offer(e);
                }
            }
            _watchers.Add(w);
            return w;
        }
    }

    public void Unwatch(Watcher w)
    {
        lock (_gate)
        {
            _watchers.Remove(w);
        }
    }

    public List<Watcher> Watchers()
    {
        lock (_gate)
        {
            return [.. _watchers];
        }
    }

    /// <summary>The resourceVersion a bookmark may carry: the current one, if everything before it has been written out to this watcher.</summary>
    public long? BookmarkVersion(Watcher w)
    {
        lock (_gate)
        {
            return w.Pending == 0 ? _resourceVersion : null;
        }
    }

    public void Compact()
    {
        lock (_gate)
        {
            _compactedTo = _resourceVersion;
            _history.Clear();
            _snapshots.Clear();
            foreach (var w in _watchers)
            {
                w.Fail(FakeApiException.Status(410, "Expired", "The resourceVersion for the provided watch is too old."));
            }
            _watchers.Clear();
        }
    }

    // ---- internals (all under the lock) ----

    private JsonObject Commit(ResourceType t, string type, string? ns, string name, JsonObject obj, JsonObject? previous)
    {
        if (t.StoreKey == "apiextensions.k8s.io/customresourcedefinitions")
        {
            RegisterCrd(obj);
            obj["status"] = CrdStatus(obj);
        }
        _resourceVersion++;
        Meta(obj)["resourceVersion"] = _resourceVersion.ToString(CultureInfo.InvariantCulture);
        if (!_objects.TryGetValue(t.StoreKey, out var objects))
        {
            _objects[t.StoreKey] = objects = new SortedDictionary<string, JsonObject>(StringComparer.Ordinal);
        }
        var key = Key(ns, name);
        objects[key] = obj;
        _byUid[Str(Meta(obj), "uid")!] = (t.StoreKey, key);
        Record(new StoredEvent(_resourceVersion, t.StoreKey, type, obj, previous));
        return obj;
    }

    private void Record(StoredEvent e)
    {
        _history.Add(e);
        if (_history.Count > _options.EventHistoryLimit)
        {
            var drop = _history.Count - _options.EventHistoryLimit;
            _compactedTo = _history[drop - 1].ResourceVersion;
            _history.RemoveRange(0, drop);
        }
        foreach (var w in _watchers)
        {
            if (w.Type.StoreKey == e.StoreKey)
            {
                w.Offer(e);
            }
        }
    }

    private JsonObject? Lookup(ResourceType t, string? ns, string name) =>
        _objects.TryGetValue(t.StoreKey, out var objects) && objects.TryGetValue(Key(t.Namespaced ? ns ?? "default" : null, name), out var o) ? o : null;

    private IEnumerable<JsonObject> Scan(ResourceType t, string? ns) =>
        _objects.TryGetValue(t.StoreKey, out var objects)
            ? objects.Values.Where(o => ns is null || !t.Namespaced || Str(Meta(o), "namespace") == ns)
            : [];

    private static string Key(string? ns, string name) => (ns ?? "") + "/" + name;

    private static string? Namespace(ResourceType t, string? pathNs, JsonObject meta)
    {
        if (!t.Namespaced)
        {
            meta.Remove("namespace");
            return null;
        }
        var bodyNs = Str(meta, "namespace");
        if (pathNs is not null && !string.IsNullOrEmpty(bodyNs) && bodyNs != pathNs)
        {
            throw FakeApiException.BadRequest("the namespace of the provided object does not match the namespace sent on the request");
        }
        var ns = pathNs ?? (string.IsNullOrEmpty(bodyNs) ? "default" : bodyNs);
        meta["namespace"] = ns;
        return ns;
    }

    private void Defaults(ResourceType t, JsonObject obj)
    {
        if (t.StoreKey == "/services" && obj["spec"] is JsonObject spec && spec["clusterIP"] is null && spec["type"]?.ToString() != "ExternalName")
        {
            var ip = $"10.96.{_nextClusterIp / 250}.{(_nextClusterIp % 250) + 1}";
            _nextClusterIp++;
            spec["clusterIP"] = ip;
            spec["clusterIPs"] = new JsonArray(ip);
            spec["type"] ??= "ClusterIP";
        }
    }

    private static void Stamp(ResourceType t, JsonObject obj)
    {
        obj["apiVersion"] = t.ApiVersion;
        obj["kind"] = t.Kind;
    }

    internal static JsonObject Render(ResourceType t, JsonObject stored)
    {
        var copy = (JsonObject)stored.DeepClone();
        // apiVersion and kind first, as the real server writes them.
        copy.Remove("apiVersion");
        copy.Remove("kind");
        var result = new JsonObject { ["apiVersion"] = t.ApiVersion, ["kind"] = t.Kind };
        foreach (var (k, v) in copy.ToList())
        {
            copy.Remove(k);
            result[k] = v;
        }
        return result;
    }

    private static JsonObject Spec(JsonObject obj)
    {
        var copy = (JsonObject)obj.DeepClone();
        copy.Remove("metadata");
        copy.Remove("status");
        copy.Remove("apiVersion");
        copy.Remove("kind");
        return copy;
    }

    internal static JsonObject Meta(JsonObject obj)
    {
        if (obj["metadata"] is JsonObject m)
        {
            return m;
        }
        m = [];
        obj["metadata"] = m;
        return m;
    }

    internal static long? ToLong(JsonNode? node) =>
        node is JsonValue v && long.TryParse(v.ToJsonString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l) ? l : null;

    internal static string? Str(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    private static string RandomSuffix()
    {
        const string alphabet = "bcdfghjklmnpqrstvwxz2456789";
        return string.Create(5, 0, (span, _) =>
        {
            for (var i = 0; i < span.Length; i++)
            {
                span[i] = alphabet[Random.Shared.Next(alphabet.Length)];
            }
        });
    }
}
