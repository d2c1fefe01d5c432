using System.Collections.Frozen;
using System.Globalization;
using System.Text.Json.Nodes;
using FsmGateway.Kubernetes.Api;
using FsmGateway.Resources;
using FsmGateway.Status;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Kubernetes.Controller;

/// <summary>
/// Writes GatewayClass, Gateway, TCPRoute and policy (GEP-713 <c>status.ancestors</c>) status through the status subresource, as a read-modify-write:
/// only when the desired status differs from what the object shows; <c>lastTransitionTime</c> kept while a
/// condition's status and reason stay the same; route <c>status.parents</c> entries of other controllers left as they
/// are; a 409 (the object changed since it was read) read again and retried.
/// </summary>
/// <remarks>
/// What was written is remembered per object with the uid it was written to, and an unchanged status is skipped only
/// while <paramref name="uids"/> (the config watch's view) shows that same uid: a Gateway deleted and created again
/// under its name, even within one debounce window or while a pass was busy (so that no status set without it came
/// between), is a new object with no status, and gets it written.
/// </remarks>
internal sealed partial class KubernetesStatusWriter(ServedVersions versions, ApiObjects api, string controllerName, ObservedUids uids, TimeProvider time, ILogger logger, KubernetesMetrics? metrics = null)
{
    private const int MaxAttempts = 5;

    /// <summary>The kinds whose status is written (<see cref="ObservedUids"/> keeps their uids).</summary>
    public static FrozenSet<ResourceKind> WrittenKinds { get; } = Enum.GetValues<ResourceKind>()
        .Where(k => k is ResourceKind.GatewayClass or ResourceKind.Gateway or ResourceKind.TcpRoute || PolicyKind(k) is not null)
        .ToFrozenSet();

    /// <summary>The last status written per object and the uid of the object it was written to, so an unchanged status costs no request at all.</summary>
    private readonly Dictionary<ResourceKey, Written> _written = [];

    /// <summary>Forgets what was written, so the next publish compares with the cluster again (e.g. on gaining leadership).</summary>
    public void Reset()
    {
        _written.Clear();
        versions.Clear();
    }

    /// <summary>
    /// Writes every status of <paramref name="statuses"/> that differs, as the compiler decided it (addresses
    /// included). One object's failure is logged and does not stop the others; returns whether all were written (else
    /// the caller retries).
    /// </summary>
    public async Task<bool> WriteAsync(StatusSet statuses, CancellationToken cancellationToken)
    {
        // Objects no longer in the set are forgotten, so one re-created under the same name is written afresh.
        foreach (var key in _written.Keys.Where(k => !statuses.GatewayClasses.ContainsKey(k) && !statuses.Gateways.ContainsKey(k) && !statuses.Routes.ContainsKey(k) && !statuses.Policies.ContainsKey(k) && !statuses.Conditions.ContainsKey(k)).ToList())
        {
            _written.Remove(key);
        }

        var complete = true;
        foreach (var (key, status) in statuses.GatewayClasses)
        {
            complete &= await TryWriteAsync(ApiKind.GatewayClass, key, StatusJson.GatewayClass(status), MergeGatewayClass, cancellationToken).ConfigureAwait(false);
        }

        foreach (var (key, status) in statuses.Gateways)
        {
            complete &= await TryWriteAsync(ApiKind.Gateway, key, StatusJson.Gateway(status), MergeGateway, cancellationToken).ConfigureAwait(false);
        }

        foreach (var (key, status) in statuses.Routes)
        {
            var ours = new RouteStatus([.. status.Parents.Where(p => p.ControllerName == controllerName)]);
            complete &= await TryWriteAsync(ApiKind.TcpRoute, key, StatusJson.Route(ours), MergeRoute, cancellationToken).ConfigureAwait(false);
        }

        foreach (var (key, status) in statuses.Policies)
        {
            if (PolicyKind(key.Kind) is not { } kind)
            {
                continue;
            }

            var ours = new PolicyStatus([.. status.Ancestors.Where(a => a.ControllerName == controllerName)]);
            complete &= await TryWriteAsync(kind, key, StatusJson.Policy(ours), MergePolicy, cancellationToken).ConfigureAwait(false);
        }

        foreach (var (key, status) in statuses.Conditions)
        {
            if (PolicyKind(key.Kind) is not { } kind)
            {
                continue;
            }

            complete &= await TryWriteAsync(kind, key, StatusJson.Conditions(status), MergeConditions, cancellationToken).ConfigureAwait(false);
        }

        return complete;
    }

    private static ApiKind? PolicyKind(ResourceKind kind) => kind switch
    {
        ResourceKind.HealthCheckPolicy => ApiKind.HealthCheckPolicy,
        ResourceKind.BackendLbPolicy => ApiKind.BackendLbPolicy,
        ResourceKind.BackendTrafficPolicy => ApiKind.BackendTrafficPolicy,
        ResourceKind.ClientTrafficPolicy => ApiKind.ClientTrafficPolicy,
        ResourceKind.RouteRuleFilterPolicy => ApiKind.RouteRuleFilterPolicy,
        ResourceKind.RateLimitPolicy => ApiKind.RateLimitPolicy,
        ResourceKind.ListenerFilter => ApiKind.ListenerFilter,
        ResourceKind.Filter => ApiKind.Filter,
        ResourceKind.ConcurrencyLimit => ApiKind.ConcurrencyLimit,
        ResourceKind.IPRestriction => ApiKind.IPRestriction,
        _ => null,
    };

    private async Task<bool> TryWriteAsync(ApiKind kind, ResourceKey key, JsonObject desired, Func<JsonObject?, JsonObject, JsonObject> merge, CancellationToken cancellationToken)
    {
        try
        {
            await WriteAsync(kind, key, desired, merge, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogWriteFailed(logger, e, key.ToString());
            return false;
        }
    }

    private async Task WriteAsync(ApiKind kind, ResourceKey key, JsonObject desired, Func<JsonObject?, JsonObject, JsonObject> merge, CancellationToken cancellationToken)
    {
        if (_written.TryGetValue(key, out var last) && JsonNode.DeepEquals(last.Status, desired) && last.Uid is not null && last.Uid == uids.UidOf(key))
        {
            return;
        }

        var rediscovered = false;
        for (var attempt = 1; ; attempt++)
        {
            if (await versions.ResourceAsync(kind, cancellationToken).ConfigureAwait(false) is not { } resource)
            {
                return;
            }

            var ns = kind.Namespaced ? key.Namespace : null;
            var current = await api.GetAsync(resource, ns, key.Name, cancellationToken).ConfigureAwait(false);
            if (current is null && !rediscovered)
            {
                // Maybe the version we cached is no longer served: ask discovery again before taking it for deleted.
                versions.Forget(kind);
                rediscovered = true;
                continue;
            }

            if (current is null)
            {
                // Deleted since it was compiled; nothing to write.
                _written.Remove(key);
                return;
            }

            var uid = current["metadata"]?["uid"] is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;
            var currentStatus = current["status"] as JsonObject;
            var merged = merge(currentStatus, (JsonObject)desired.DeepClone());
            if (JsonNode.DeepEquals(currentStatus ?? new JsonObject(), merged))
            {
                _written[key] = new Written(desired, uid);
                return;
            }

            current["status"] = merged;
            try
            {
                await api.ReplaceStatusAsync(resource, ns, key.Name, current, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                var conflict = ApiObjects.IsConflict(e);
                metrics?.StatusWritten(kind.ApiKindName, conflict ? KubernetesMetrics.WriteConflict : KubernetesMetrics.WriteError);
                if (!conflict || attempt >= MaxAttempts)
                {
                    throw;
                }

                LogConflict(logger, key.ToString(), attempt);
                continue;
            }

            metrics?.StatusWritten(kind.ApiKindName, KubernetesMetrics.WriteOk);
            _written[key] = new Written(desired, uid);
            LogWritten(logger, key.ToString(), Summary(merged));
            return;
        }
    }

    private JsonObject MergeGatewayClass(JsonObject? current, JsonObject desired)
    {
        var merged = (JsonObject?)current?.DeepClone() ?? [];
        merged["conditions"] = KeepTransitionTimes(current?["conditions"] as JsonArray, (JsonArray)desired["conditions"]!.DeepClone());
        return merged;
    }

    private JsonObject MergeGateway(JsonObject? current, JsonObject desired)
    {
        var merged = (JsonObject?)current?.DeepClone() ?? [];
        if (desired["addresses"] is JsonArray addresses)
        {
            merged["addresses"] = addresses.DeepClone();
        }
        else
        {
            merged.Remove("addresses");
        }

        merged["conditions"] = KeepTransitionTimes(current?["conditions"] as JsonArray, (JsonArray)desired["conditions"]!.DeepClone());
        var currentListeners = (current?["listeners"] as JsonArray ?? []).OfType<JsonObject>().ToList();
        var listeners = new JsonArray();
        foreach (var listener in ((JsonArray)desired["listeners"]!).OfType<JsonObject>())
        {
            var copy = (JsonObject)listener.DeepClone();
            var before = currentListeners.FirstOrDefault(l => l["name"]?.GetValue<string>() == copy["name"]?.GetValue<string>());
            copy["conditions"] = KeepTransitionTimes(before?["conditions"] as JsonArray, (JsonArray)copy["conditions"]!.DeepClone());
            listeners.Add((JsonNode)copy);
        }

        merged["listeners"] = listeners;
        return merged;
    }

    /// <summary>Our entries replace our previous ones; every other controller's entries stay as they are.</summary>
    private JsonObject MergeRoute(JsonObject? current, JsonObject desired)
    {
        var merged = (JsonObject?)current?.DeepClone() ?? [];
        var currentParents = (current?["parents"] as JsonArray ?? []).OfType<JsonObject>().ToList();
        var parents = new JsonArray();
        foreach (var other in currentParents.Where(p => p["controllerName"]?.GetValue<string>() != controllerName))
        {
            parents.Add(other.DeepClone());
        }

        foreach (var entry in ((JsonArray)desired["parents"]!).OfType<JsonObject>())
        {
            var copy = (JsonObject)entry.DeepClone();
            var before = currentParents.FirstOrDefault(p =>
                p["controllerName"]?.GetValue<string>() == controllerName && JsonNode.DeepEquals(p["parentRef"], copy["parentRef"]));
            copy["conditions"] = KeepTransitionTimes(before?["conditions"] as JsonArray, (JsonArray)copy["conditions"]!.DeepClone());
            parents.Add((JsonNode)copy);
        }

        merged["parents"] = parents;
        return merged;
    }

    /// <summary>
    /// GEP-713 <c>status.ancestors</c>: our entries replace our previous ones, other controllers' stay, and the list is
    /// cut at 16 entries (theirs first: when it is full, nothing is added). A policy that reaches no Gateway of ours
    /// and never had an entry of ours is left as it is.
    /// </summary>
    private JsonObject MergePolicy(JsonObject? current, JsonObject desired)
    {
        var merged = (JsonObject?)current?.DeepClone() ?? [];
        var currentAncestors = (current?["ancestors"] as JsonArray ?? []).OfType<JsonObject>().ToList();
        var ancestors = new JsonArray();
        foreach (var other in currentAncestors.Where(a => a["controllerName"]?.GetValue<string>() != controllerName))
        {
            ancestors.Add(other.DeepClone());
        }

        foreach (var entry in ((JsonArray)desired["ancestors"]!).OfType<JsonObject>())
        {
            if (ancestors.Count >= PolicyStatus.MaxAncestors)
            {
                break;
            }

            var copy = (JsonObject)entry.DeepClone();
            var before = currentAncestors.FirstOrDefault(a =>
                a["controllerName"]?.GetValue<string>() == controllerName && JsonNode.DeepEquals(a["ancestorRef"], copy["ancestorRef"]));
            copy["conditions"] = KeepTransitionTimes(before?["conditions"] as JsonArray, (JsonArray)copy["conditions"]!.DeepClone());
            ancestors.Add((JsonNode)copy);
        }

        if (ancestors.Count > 0 || merged.ContainsKey("ancestors"))
        {
            merged["ancestors"] = ancestors;
        }

        return merged;
    }

    /// <summary>
    /// <c>status.conditions</c> of a kind without ancestors (FSM's filter kinds, RateLimitPolicy): the condition types we
    /// write replace ours, conditions of other types stay, and we write no <c>Overridden</c> unless we mean it.
    /// </summary>
    private JsonObject MergeConditions(JsonObject? current, JsonObject desired)
    {
        var merged = (JsonObject?)current?.DeepClone() ?? [];
        var ourTypes = new HashSet<string>([ConditionTypes.Accepted, ConditionTypes.Overridden], StringComparer.Ordinal);
        var currentConditions = current?["conditions"] as JsonArray;
        var conditions = new JsonArray();
        foreach (var other in (currentConditions ?? []).OfType<JsonObject>().Where(c => c["type"]?.GetValue<string>() is not { } type || !ourTypes.Contains(type)))
        {
            conditions.Add(other.DeepClone());
        }

        foreach (var condition in KeepTransitionTimes(currentConditions, (JsonArray)desired["conditions"]!.DeepClone()).OfType<JsonObject>())
        {
            conditions.Add(condition.DeepClone());
        }

        merged["conditions"] = conditions;
        return merged;
    }

    /// <summary>Each desired condition gets the current one's <c>lastTransitionTime</c> when its status and reason are unchanged, else now.</summary>
    private JsonArray KeepTransitionTimes(JsonArray? current, JsonArray desired)
    {
        var now = time.GetUtcNow().UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        foreach (var condition in desired.OfType<JsonObject>())
        {
            var type = condition["type"]?.GetValue<string>();
            var before = current?.OfType<JsonObject>().FirstOrDefault(c => c["type"]?.GetValue<string>() == type);
            var unchanged = before is not null
                && before["status"]?.GetValue<string>() == condition["status"]?.GetValue<string>()
                && before["reason"]?.GetValue<string>() == condition["reason"]?.GetValue<string>();
            condition["lastTransitionTime"] = unchanged && before!["lastTransitionTime"] is { } kept ? kept.DeepClone() : now;
        }

        return desired;
    }

    /// <summary>A status written, and the uid of the object it was written to (null when the object showed none).</summary>
    private sealed record Written(JsonObject Status, string? Uid);

    private static string Summary(JsonObject status) =>
        status["parents"] is JsonArray parents ? $"{parents.Count} parent entr{(parents.Count == 1 ? "y" : "ies")}"
        : status["ancestors"] is JsonArray ancestors ? $"{ancestors.Count} ancestor entr{(ancestors.Count == 1 ? "y" : "ies")}"
        : string.Join(" ", (status["conditions"] as JsonArray ?? []).OfType<JsonObject>().Select(c => $"{c["type"]}={c["status"]}"));

    [LoggerMessage(1, LogLevel.Information, "Wrote the status of {Object}: {Conditions}")]
    private static partial void LogWritten(ILogger logger, string @object, string conditions);

    /// <summary>Type and message at Warning; the stack at Debug.</summary>
    private static void LogWriteFailed(ILogger logger, Exception exception, string @object)
    {
        LogWriteFailedBriefly(logger, @object, ErrorText.Of(exception));
        LogWriteFailedInFull(logger, exception, @object);
    }

    [LoggerMessage(3, LogLevel.Warning, "Status of {Object} could not be written: {Error}; retrying later")]
    private static partial void LogWriteFailedBriefly(ILogger logger, string @object, string error);

    [LoggerMessage(4, LogLevel.Debug, "Status of {Object} could not be written; in full")]
    private static partial void LogWriteFailedInFull(ILogger logger, Exception exception, string @object);

    [LoggerMessage(2, LogLevel.Debug, "Status of {Object} changed while it was written (409, attempt {Attempt}); reading it again")]
    private static partial void LogConflict(ILogger logger, string @object, int attempt);
}
