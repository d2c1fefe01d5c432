using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Kubernetes.Api;

/// <summary>A resource to list and watch cluster-wide: where it lives and the versions it may be served at, most preferred first.</summary>
/// <param name="Group">The API group; empty for the core group.</param>
/// <param name="Plural">The resource name in URLs.</param>
/// <param name="ApiKindName">The Kubernetes kind, e.g. <c>Deployment</c>.</param>
/// <param name="Versions">The versions understood, most preferred first; the one used is found through discovery.</param>
/// <param name="LabelSelector">When set, only objects matching it are listed and watched.</param>
internal sealed record WatchedResource(string Group, string Plural, string ApiKindName, string[] Versions, string? LabelSelector = null)
{
    public string ApiVersion(string version) => Group.Length == 0 ? version : $"{Group}/{version}";

    public override string ToString() => Group.Length == 0 ? Plural : $"{Plural}.{Group}";
}

/// <summary>What a <see cref="ListWatch{T}"/> reads from each object and reports.</summary>
/// <typeparam name="T">What is kept of an object; a change is reported only when it differs (<see cref="EqualityComparer{T}.Default"/>).</typeparam>
internal interface IListWatchHandler<T>
    where T : class
{
    /// <summary>What is kept of <paramref name="json"/> (read at <paramref name="version"/>), or null when it cannot be read: its last readable version then stays in force.</summary>
    T? Read(JsonObject json, string version);

    /// <summary>An object is new, or what is kept of it changed.</summary>
    void Upserted(ObjectName name, T item);

    /// <summary>An object is gone.</summary>
    void Deleted(ObjectName name);

    /// <summary>The first list is complete (or the resource is not served at start, which counts as empty).</summary>
    void Synced();
}

/// <summary>An object's namespace (empty when cluster-scoped) and name.</summary>
internal readonly record struct ObjectName(string Namespace, string Name);

/// <summary>
/// One resource, kept in step with the cluster, as an informer does: discovery finds the version served; a paged list
/// reports the current objects and then "synced"; a watch from the list's resourceVersion (with bookmarks) reports the
/// changes. A watch that ends is reopened from the last resourceVersion seen; one that falls silent is taken for dead
/// and reopened; a 410 (the resourceVersion is too old) re-lists at once, any other error event re-lists after a back-off, and objects that vanished
/// meanwhile are reported deleted. Failures back off exponentially (cut short when the API server answers again,
/// <see cref="ApiServerReachability.DelayAsync"/>); the first failure of an outage is logged at Warning, retries at Debug. A resource the cluster does not serve at start is
/// logged, counts as synced with no objects, and is looked for again periodically; one that stops being served keeps
/// its objects until it is served again.
/// </summary>
internal sealed partial class ListWatch<T>(
    IKubernetes client,
    WatchedResource resource,
    IListWatchHandler<T> handler,
    KubernetesOptions options,
    ApiServerReachability reachability,
    TimeProvider time,
    ILogger logger,
    KubernetesMetrics? metrics = null)
    where T : class
{
    private readonly Dictionary<ObjectName, T> _known = [];
    private readonly Backoff _backoff = new(options.MinRetryDelay, options.MaxRetryDelay);

    // Error events in a row (reset by an object event or a watch that ends cleanly): a 410 re-lists at once, any other re-lists after this back-off.
    private readonly Backoff _errorEvents = new(options.MinRetryDelay, options.MaxRetryDelay);
    private bool _synced;
    private string? _missingLogged;

    /// <summary>Why the next list, if it is not the first, is made: the reason <see cref="KubernetesMetrics.Relisted"/> counts.</summary>
    private string _relistReason = KubernetesMetrics.RelistFailed;

    /// <summary>Lists and watches until <paramref name="cancellationToken"/> is cancelled. Run once per instance.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var version = await ApiDiscovery.ServedVersionAsync(client, resource.Group, resource.Plural, resource.Versions, cancellationToken).ConfigureAwait(false);
                if (version is null)
                {
                    ResourceMissing();
                    await Task.Delay(options.MissingKindRetryInterval, time, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                if (_missingLogged is not null)
                {
                    ListWatchLog.KindAppeared(logger, resource.ToString(), version);
                    _missingLogged = null;
                    _relistReason = KubernetesMetrics.RelistAppeared;
                }

                var resourceVersion = await ListAsync(version, cancellationToken).ConfigureAwait(false);
                await WatchUntilExpiredAsync(version, resourceVersion, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                _relistReason = KubernetesMetrics.RelistFailed;
                var delay = Failed(e, resourceVersion: null);
                await reachability.DelayAsync(delay, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Lists every page; reports what is new, changed or gone since the last list; returns the list's resourceVersion.</summary>
    private async Task<string> ListAsync(string version, CancellationToken cancellationToken)
    {
        var listed = new Dictionary<ObjectName, T>();
        string? continueToken = null;
        string resourceVersion;
        do
        {
            using var response = await client.CustomObjects.ListCustomObjectForAllNamespacesWithHttpMessagesAsync(
                resource.Group, version, resource.Plural, continueParameter: continueToken, labelSelector: resource.LabelSelector, limit: options.PageSize, cancellationToken: cancellationToken).ConfigureAwait(false);
            var list = ToJsonObject(response.Body) ?? throw new InvalidOperationException($"Listing {resource} returned no object");
            foreach (var item in list["items"]?.AsArray() ?? new JsonArray())
            {
                if (item is not JsonObject json || NameOf(json) is not { } name)
                {
                    continue;
                }

                if (Read(json, version) is { } read)
                {
                    listed[name] = read;
                }
                else if (_known.TryGetValue(name, out var lastReadable))
                {
                    // Unreadable now: its last readable version stays in force, as on the watch.
                    listed[name] = lastReadable;
                }
            }

            resourceVersion = list["metadata"]?["resourceVersion"]?.GetValue<string>() ?? string.Empty;
            continueToken = list["metadata"]?["continue"]?.GetValue<string>() is { Length: > 0 } next ? next : null;
        }
        while (continueToken is not null);

        foreach (var name in _known.Keys.Where(k => !listed.ContainsKey(k)).ToList())
        {
            _known.Remove(name);
            handler.Deleted(name);
        }

        foreach (var (name, item) in listed)
        {
            Upsert(name, item);
        }

        Succeeded();
        if (!_synced)
        {
            _synced = true;
            ListWatchLog.Synced(logger, resource.ToString(), version, listed.Count, resourceVersion);
            handler.Synced();
        }
        else
        {
            ListWatchLog.Relisted(logger, resource.ToString(), listed.Count, resourceVersion);
            metrics?.Relisted(resource.ApiKindName, _relistReason);
        }

        _relistReason = KubernetesMetrics.RelistFailed;

        return resourceVersion;
    }

    /// <summary>Watches from <paramref name="resourceVersion"/>, reopening as needed, until the version expires (410): then returns, to re-list.</summary>
    private async Task WatchUntilExpiredAsync(string version, string resourceVersion, CancellationToken cancellationToken)
    {
        var timeoutSeconds = (int)Math.Max(1, options.WatchTimeout.TotalSeconds);
        string? reopening = null;
        while (true)
        {
            if (reopening is not null)
            {
                metrics?.WatchRestarted(resource.ApiKindName, reopening);
            }

            reopening = KubernetesMetrics.WatchEnded;
            Exception? watchError = null;
            using var inactivity = new CancellationTokenSource(options.WatchInactivityTimeout, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, inactivity.Token);
            try
            {
                var events = client.CustomObjects.WatchListCustomObjectForAllNamespacesAsync(
                    resource.Group, version, resource.Plural, allowWatchBookmarks: true, labelSelector: resource.LabelSelector, resourceVersion: resourceVersion,
                    timeoutSeconds: timeoutSeconds, onError: e => watchError ??= e, cancellationToken: linked.Token);
                await foreach (var (type, item) in events.ConfigureAwait(false))
                {
                    inactivity.CancelAfter(options.WatchInactivityTimeout);
                    Succeeded();
                    if (type != WatchEventType.Bookmark)
                    {
                        _errorEvents.Reset();
                    }

                    var json = ToJsonObject(item);
                    var name = json is null ? null : NameOf(json);
                    switch (type)
                    {
                        case WatchEventType.Added or WatchEventType.Modified when name is { } changed && Read(json!, version) is { } read:
                            Upsert(changed, read);
                            break;
                        case WatchEventType.Deleted when name is { } gone && _known.Remove(gone):
                            handler.Deleted(gone);
                            break;
                    }

                    // Only once the event is handled: a failure above reopens the watch before it, not after.
                    if (json?["metadata"]?["resourceVersion"]?.GetValue<string>() is { Length: > 0 } seen)
                    {
                        resourceVersion = seen;
                    }
                }
            }
            catch (OperationCanceledException) when (inactivity.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                ListWatchLog.WatchSilent(logger, resource.ToString(), options.WatchInactivityTimeout.TotalSeconds, resourceVersion);
                reopening = KubernetesMetrics.WatchSilent;
                continue;
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Gone)
            {
                ListWatchLog.Expired(logger, resource.ToString(), resourceVersion);
                _relistReason = KubernetesMetrics.RelistExpired;
                return;
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
            {
                // The resource is no longer served (its CRD was deleted): discover again.
                throw;
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // A dropped connection or a failing server: reopen the watch from where it was, after a back-off.
                var delay = Failed(e, resourceVersion);
                await reachability.DelayAsync(delay, cancellationToken).ConfigureAwait(false);
                reopening = KubernetesMetrics.WatchFailed;
                continue;
            }

            if (watchError is KubernetesException { Status.Code: (int)HttpStatusCode.Gone })
            {
                ListWatchLog.Expired(logger, resource.ToString(), resourceVersion);
                _relistReason = KubernetesMetrics.RelistExpired;
                return;
            }

            if (watchError is not null)
            {
                // An error event, or a line that could not be read: an event may be lost, so re-list, but after a
                // back-off of its own (the list's success does not reset it), so that a server that keeps sending
                // error events does not get list and watch in a tight loop.
                var delay = _errorEvents.Next();
                if (_errorEvents.Failures == 1)
                {
                    ListWatchLog.WatchError(logger, resource.ToString(), resourceVersion, ErrorText.Of(watchError), delay.TotalMilliseconds);
                }
                else
                {
                    ListWatchLog.WatchErrorAgain(logger, resource.ToString(), _errorEvents.Failures, ErrorText.Of(watchError), delay.TotalMilliseconds);
                }

                ListWatchLog.FailureDetail(logger, watchError, resource.ToString());
                await Task.Delay(delay, time, cancellationToken).ConfigureAwait(false);
                _relistReason = KubernetesMetrics.RelistErrorEvent;
                return;
            }

            // The watch ran its course without an error event.
            _errorEvents.Reset();
        }
    }

    private void Upsert(ObjectName name, T item)
    {
        if (_known.TryGetValue(name, out var previous) && EqualityComparer<T>.Default.Equals(previous, item))
        {
            return;
        }

        _known[name] = item;
        handler.Upserted(name, item);
    }

    /// <summary>
    /// The cluster serves none of the resource's versions. At start that means "no objects" (synced, empty). Later it
    /// may be a passing discovery failure, so what is known stays in force: a CRD really deleted deletes its objects
    /// first, and the watch has reported those.
    /// </summary>
    private void ResourceMissing()
    {
        var versions = string.Join(", ", resource.Versions.Select(resource.ApiVersion));
        if (_missingLogged is null)
        {
            _missingLogged = versions;
            ListWatchLog.KindMissing(logger, resource.ToString(), resource.ApiKindName, versions, options.MissingKindRetryInterval.TotalSeconds);
        }

        if (!_synced)
        {
            _synced = true;
            handler.Synced();
        }
    }

    private T? Read(JsonObject json, string version)
    {
        // Items of built-in lists omit apiVersion and kind.
        json["apiVersion"] ??= resource.ApiVersion(version);
        json["kind"] ??= resource.ApiKindName;
        return handler.Read(json, version);
    }

    private static ObjectName? NameOf(JsonObject json)
    {
        var metadata = json["metadata"];
        return metadata?["name"]?.GetValue<string>() is { } name
            ? new ObjectName(metadata["namespace"]?.GetValue<string>() ?? string.Empty, name)
            : null;
    }

    /// <summary>
    /// A failed request: the first of an outage is logged at Warning (type and message), the retries that follow at
    /// Debug, each with its stack at Debug. Returns the back-off before the next attempt.
    /// </summary>
    private TimeSpan Failed(Exception e, string? resourceVersion)
    {
        var first = _backoff.Failures == 0;
        var delay = _backoff.Next();
        var name = resource.ToString();
        var error = ErrorText.Of(e);
        if (first)
        {
            if (resourceVersion is null)
            {
                ListWatchLog.Retrying(logger, name, error, delay.TotalMilliseconds);
            }
            else
            {
                ListWatchLog.WatchFailed(logger, name, resourceVersion, error, delay.TotalMilliseconds);
            }
        }
        else
        {
            ListWatchLog.RetryingAgain(logger, name, _backoff.Failures, error, delay.TotalMilliseconds);
        }

        ListWatchLog.FailureDetail(logger, e, name);
        return delay;
    }

    /// <summary>The API server answered: the next failure waits the shortest back-off, and is logged at Warning again.</summary>
    private void Succeeded()
    {
        if (_backoff.Failures > 0)
        {
            ListWatchLog.Recovered(logger, resource.ToString(), _backoff.Failures);
            _backoff.Reset();
        }
    }

    private static JsonObject? ToJsonObject(object? body) => body switch
    {
        JsonElement element when element.ValueKind == JsonValueKind.Object => JsonObject.Create(element),
        JsonObject json => json,
        null => null,
        // Anything else is a model object of the client: serialised with its own options (its converters, no reflection of ours).
        _ => JsonNode.Parse(KubernetesJson.Serialize(body)) as JsonObject,
    };
}

/// <summary>The log lines of <see cref="ListWatch{T}"/> (a generic type cannot hold them).</summary>
internal static partial class ListWatchLog
{
    [LoggerMessage(1, LogLevel.Information, "Kubernetes {Resource}: synced {Count} object(s) at {ApiVersion}, resourceVersion {ResourceVersion}")]
    public static partial void Synced(ILogger logger, string resource, string apiVersion, int count, string resourceVersion);

    [LoggerMessage(2, LogLevel.Information, "Kubernetes {Resource}: re-listed {Count} object(s), resourceVersion {ResourceVersion}")]
    public static partial void Relisted(ILogger logger, string resource, int count, string resourceVersion);

    [LoggerMessage(3, LogLevel.Warning, "Kubernetes {Resource}: resourceVersion {ResourceVersion} is too old (410 Gone); re-listing")]
    public static partial void Expired(ILogger logger, string resource, string resourceVersion);

    [LoggerMessage(4, LogLevel.Warning, "Kubernetes {Resource}: the watch sent nothing for {Seconds} s, not even a bookmark; reopening it from resourceVersion {ResourceVersion}")]
    public static partial void WatchSilent(ILogger logger, string resource, double seconds, string resourceVersion);

    [LoggerMessage(5, LogLevel.Warning, "Kubernetes {Resource}: the API server failed: {Error}; retrying in {DelayMs:F0} ms, with back-off (retries are logged at Debug until it answers)")]
    public static partial void Retrying(ILogger logger, string resource, string error, double delayMs);

    [LoggerMessage(9, LogLevel.Warning, "Kubernetes {Resource}: the watch failed: {Error}; reopening it from resourceVersion {ResourceVersion} in {DelayMs:F0} ms, with back-off (retries are logged at Debug until it answers)")]
    public static partial void WatchFailed(ILogger logger, string resource, string resourceVersion, string error, double delayMs);

    [LoggerMessage(10, LogLevel.Warning, "Kubernetes {Resource}: the watch reported an error at resourceVersion {ResourceVersion}: {Error}; re-listing in {DelayMs:F0} ms so that nothing is missed, with back-off while error events go on (logged at Debug)")]
    public static partial void WatchError(ILogger logger, string resource, string resourceVersion, string error, double delayMs);

    [LoggerMessage(14, LogLevel.Debug, "Kubernetes {Resource}: error event {Count} in a row: {Error}; re-listing in {DelayMs:F0} ms")]
    public static partial void WatchErrorAgain(ILogger logger, string resource, int count, string error, double delayMs);

    [LoggerMessage(11, LogLevel.Debug, "Kubernetes {Resource}: attempt {Attempt} failed: {Error}; retrying in {DelayMs:F0} ms")]
    public static partial void RetryingAgain(ILogger logger, string resource, int attempt, string error, double delayMs);

    [LoggerMessage(12, LogLevel.Debug, "Kubernetes {Resource}: the failure in full")]
    public static partial void FailureDetail(ILogger logger, Exception exception, string resource);

    [LoggerMessage(13, LogLevel.Information, "Kubernetes {Resource}: the API server answers again, after {Failures} failed attempt(s)")]
    public static partial void Recovered(ILogger logger, string resource, int failures);

    [LoggerMessage(6, LogLevel.Error, "Kubernetes {Resource}: the cluster serves no {Kind} at {Versions}; is the Gateway API CRD installed? Treating it as empty and looking again every {Seconds} s")]
    public static partial void KindMissing(ILogger logger, string resource, string kind, string versions, double seconds);

    [LoggerMessage(7, LogLevel.Information, "Kubernetes {Resource}: now served at {ApiVersion}")]
    public static partial void KindAppeared(ILogger logger, string resource, string apiVersion);
}
