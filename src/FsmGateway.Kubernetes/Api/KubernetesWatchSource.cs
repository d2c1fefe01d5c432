using System.Net;
using System.Reactive.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;
using FsmGateway.Configuration;
using FsmGateway.Kubernetes.Mapping;
using FsmGateway.Resources;
using k8s;
using k8s.Autorest;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Kubernetes.Api;

/// <summary>
/// One kind, watched cluster-wide, as a config source named <c>kubernetes/{plural}</c>: discovery finds the version
/// served; a paged list sends the current objects and then <see cref="ConfigEvent.SourceSynced"/>; a watch from the
/// list's resourceVersion (with bookmarks) sends the changes. A watch that ends is reopened from the last
/// resourceVersion seen; one that falls silent is taken for dead and reopened; a 410 (the resourceVersion is too old)
/// or any error event re-lists, and objects that vanished meanwhile are reported deleted. Failures back off
/// exponentially. A kind the cluster does not serve at start is logged, counts as synced with no objects, and is
/// looked for again periodically; one that stops being served keeps its objects until it is served again.
/// </summary>
internal sealed partial class KubernetesWatchSource(
    IKubernetes client,
    ApiKind kind,
    KubernetesOptions options,
    TimeProvider time,
    ILogger logger,
    ApiServerReachability? reachability = null) : IConfigSource
{
    private readonly IKubernetes _client = client;
    private readonly ApiKind _kind = kind;
    private readonly KubernetesOptions _options = options;
    private readonly TimeProvider _time = time;
    private readonly ILogger _logger = logger;
    private readonly ApiServerReachability _reachability = reachability ?? new ApiServerReachability(time);

    public string Name { get; } = $"kubernetes/{kind.Plural}";

    public IObservable<ConfigEvent> Events => Observable.Create<ConfigEvent>((observer, cancellationToken) =>
        new Session(this, observer).RunAsync(cancellationToken));

    /// <summary>One subscription: what it has reported, and the list/watch loop.</summary>
    private sealed class Session(KubernetesWatchSource source, IObserver<ConfigEvent> observer)
    {
        private readonly Dictionary<ResourceKey, Resource> _known = [];
        private readonly KubernetesOptions _options = source._options;
        private readonly ILogger _logger = source._logger;
        private readonly Backoff _backoff = new(source._options.MinRetryDelay, source._options.MaxRetryDelay);
        private bool _synced;
        private string? _missingLogged;

        public async Task RunAsync(CancellationToken cancellationToken)
        {
            var kind = source._kind;
            while (!cancellationToken.IsCancellationRequested)
            {
                try
                {
                    var version = await ApiDiscovery.ServedVersionAsync(source._client, kind, cancellationToken).ConfigureAwait(false);
                    if (version is null)
                    {
                        KindMissing();
                        await Task.Delay(_options.MissingKindRetryInterval, source._time, cancellationToken).ConfigureAwait(false);
                        continue;
                    }

                    if (_missingLogged is not null)
                    {
                        LogKindAppeared(_logger, kind.ToString(), version);
                        _missingLogged = null;
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
                    var delay = Failed(e, resourceVersion: null);
                    await source._reachability.DelayAsync(delay, cancellationToken).ConfigureAwait(false);
                }
            }
        }

        /// <summary>Lists every page; reports what is new, changed or gone since the last list; returns the list's resourceVersion.</summary>
        private async Task<string> ListAsync(string version, CancellationToken cancellationToken)
        {
            var kind = source._kind;
            var listed = new Dictionary<ResourceKey, Resource>();
            string? continueToken = null;
            string resourceVersion;
            do
            {
                using var response = await source._client.CustomObjects.ListCustomObjectForAllNamespacesWithHttpMessagesAsync(
                    kind.Group, version, kind.Plural, continueParameter: continueToken, limit: _options.PageSize, cancellationToken: cancellationToken).ConfigureAwait(false);
                var list = ToJsonObject(response.Body) ?? throw new InvalidOperationException($"Listing {kind} returned no object");
                foreach (var item in list["items"]?.AsArray() ?? new JsonArray())
                {
                    if (item is not JsonObject json)
                    {
                        continue;
                    }

                    if (Map(json, version) is { } resource)
                    {
                        listed[resource.Key] = resource;
                    }
                    else if (KeyOf(json) is { } key && _known.TryGetValue(key, out var lastReadable))
                    {
                        // Unreadable now: its last readable version stays in force, as on the watch.
                        listed[key] = lastReadable;
                    }
                }

                resourceVersion = list["metadata"]?["resourceVersion"]?.GetValue<string>() ?? string.Empty;
                continueToken = list["metadata"]?["continue"]?.GetValue<string>() is { Length: > 0 } next ? next : null;
            }
            while (continueToken is not null);

            foreach (var key in _known.Keys.Where(k => !listed.ContainsKey(k)).ToList())
            {
                _known.Remove(key);
                observer.OnNext(new ConfigEvent.Deleted(source.Name, key));
            }

            foreach (var (key, resource) in listed)
            {
                Upsert(resource);
            }

            Succeeded();
            if (!_synced)
            {
                _synced = true;
                LogSynced(_logger, kind.ToString(), version, listed.Count, resourceVersion);
                observer.OnNext(new ConfigEvent.SourceSynced(source.Name));
            }
            else
            {
                LogRelisted(_logger, kind.ToString(), listed.Count, resourceVersion);
            }

            return resourceVersion;
        }

        /// <summary>Watches from <paramref name="resourceVersion"/>, reopening as needed, until the version expires (410): then returns, to re-list.</summary>
        private async Task WatchUntilExpiredAsync(string version, string resourceVersion, CancellationToken cancellationToken)
        {
            var kind = source._kind;
            var timeoutSeconds = (int)Math.Max(1, _options.WatchTimeout.TotalSeconds);
            while (true)
            {
                Exception? watchError = null;
                using var inactivity = new CancellationTokenSource(_options.WatchInactivityTimeout, source._time);
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, inactivity.Token);
                try
                {
                    var events = source._client.CustomObjects.WatchListCustomObjectForAllNamespacesAsync(
                        kind.Group, version, kind.Plural, allowWatchBookmarks: true, resourceVersion: resourceVersion,
                        timeoutSeconds: timeoutSeconds, onError: e => watchError ??= e, cancellationToken: linked.Token);
                    await foreach (var (type, item) in events.ConfigureAwait(false))
                    {
                        inactivity.CancelAfter(_options.WatchInactivityTimeout);
                        Succeeded();
                        var json = ToJsonObject(item);
                        switch (type)
                        {
                            case WatchEventType.Added or WatchEventType.Modified when json is not null && Map(json, version) is { } resource:
                                Upsert(resource);
                                break;
                            case WatchEventType.Deleted when json is not null && KeyOf(json) is { } key && _known.Remove(key):
                                observer.OnNext(new ConfigEvent.Deleted(source.Name, key));
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
                    LogWatchSilent(_logger, kind.ToString(), _options.WatchInactivityTimeout.TotalSeconds, resourceVersion);
                    continue;
                }
                catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Gone)
                {
                    LogExpired(_logger, kind.ToString(), resourceVersion);
                    return;
                }
                catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
                {
                    // The kind is no longer served (its CRD was deleted): discover again.
                    throw;
                }
                catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    // A dropped connection or a failing server: reopen the watch from where it was, after a back-off.
                    var delay = Failed(e, resourceVersion);
                    await source._reachability.DelayAsync(delay, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                if (watchError is KubernetesException { Status.Code: (int)HttpStatusCode.Gone })
                {
                    LogExpired(_logger, kind.ToString(), resourceVersion);
                    return;
                }

                if (watchError is not null)
                {
                    // An error event, or a line that could not be read: an event may be lost, so re-list.
                    LogWatchError(_logger, kind.ToString(), resourceVersion, ErrorText.Of(watchError));
                    LogFailureDetail(_logger, watchError, kind.ToString());
                    return;
                }
            }
        }

        private void Upsert(Resource resource)
        {
            if (_known.TryGetValue(resource.Key, out var previous) && previous.Equals(resource))
            {
                return;
            }

            _known[resource.Key] = resource;
            observer.OnNext(new ConfigEvent.Upserted(source.Name, resource));
        }

        /// <summary>
        /// The cluster serves none of the kind's versions. At start that means "no objects" (synced, empty). Later it
        /// may be a passing discovery failure, so what is known stays in force: a CRD really deleted deletes its
        /// objects first, and the watch has reported those.
        /// </summary>
        private void KindMissing()
        {
            var kind = source._kind;
            var versions = string.Join(", ", kind.Versions.Select(kind.ApiVersion));
            if (_missingLogged is null)
            {
                _missingLogged = versions;
                LogKindMissing(_logger, kind.ToString(), kind.ApiKindName, versions, _options.MissingKindRetryInterval.TotalSeconds);
            }

            if (!_synced)
            {
                _synced = true;
                observer.OnNext(new ConfigEvent.SourceSynced(source.Name));
            }
        }

        private Resource? Map(JsonObject json, string version)
        {
            // Items of built-in lists omit apiVersion and kind.
            json["apiVersion"] ??= source._kind.ApiVersion(version);
            json["kind"] ??= source._kind.ApiKindName;
            try
            {
                var mapped = ResourceMapper.Map(json, defaultNamespace: string.Empty);
                return mapped.Resource;
            }
            catch (ResourceMappingException e)
            {
                // The API server validated the object against its schema; what we cannot read is reported and the
                // last readable version (if any) stays in force.
                LogUnreadable(_logger, e.Message);
                return null;
            }
        }

        private ResourceKey? KeyOf(JsonObject json)
        {
            var metadata = json["metadata"];
            return metadata?["name"]?.GetValue<string>() is { } name
                ? new ResourceKey(source._kind.Kind, metadata["namespace"]?.GetValue<string>() ?? string.Empty, name)
                : null;
        }

        /// <summary>
        /// A failed request: the first of an outage is logged at Warning (type and message), the retries that follow
        /// at Debug, each with its stack at Debug. Returns the back-off before the next attempt.
        /// </summary>
        private TimeSpan Failed(Exception e, string? resourceVersion)
        {
            var first = _backoff.Failures == 0;
            var delay = _backoff.Next();
            var kind = source._kind.ToString();
            var error = ErrorText.Of(e);
            if (first)
            {
                if (resourceVersion is null)
                {
                    LogRetrying(_logger, kind, error, delay.TotalMilliseconds);
                }
                else
                {
                    LogWatchFailed(_logger, kind, resourceVersion, error, delay.TotalMilliseconds);
                }
            }
            else
            {
                LogRetryingAgain(_logger, kind, _backoff.Failures, error, delay.TotalMilliseconds);
            }

            LogFailureDetail(_logger, e, kind);
            return delay;
        }

        /// <summary>The API server answered: the next failure waits the shortest back-off, and is logged at Warning again.</summary>
        private void Succeeded()
        {
            if (_backoff.Failures > 0)
            {
                LogRecovered(_logger, source._kind.ToString(), _backoff.Failures);
                _backoff.Reset();
            }
        }

        private static JsonObject? ToJsonObject(object? body) => body switch
        {
            JsonElement element when element.ValueKind == JsonValueKind.Object => JsonObject.Create(element),
            JsonObject json => json,
            null => null,
            _ => JsonSerializer.SerializeToNode(body) as JsonObject,
        };
    }

    [LoggerMessage(1, LogLevel.Information, "Kubernetes {Resource}: synced {Count} object(s) at {ApiVersion}, resourceVersion {ResourceVersion}")]
    private static partial void LogSynced(ILogger logger, string resource, string apiVersion, int count, string resourceVersion);

    [LoggerMessage(2, LogLevel.Information, "Kubernetes {Resource}: re-listed {Count} object(s), resourceVersion {ResourceVersion}")]
    private static partial void LogRelisted(ILogger logger, string resource, int count, string resourceVersion);

    [LoggerMessage(3, LogLevel.Warning, "Kubernetes {Resource}: resourceVersion {ResourceVersion} is too old (410 Gone); re-listing")]
    private static partial void LogExpired(ILogger logger, string resource, string resourceVersion);

    [LoggerMessage(4, LogLevel.Warning, "Kubernetes {Resource}: the watch sent nothing for {Seconds} s, not even a bookmark; reopening it from resourceVersion {ResourceVersion}")]
    private static partial void LogWatchSilent(ILogger logger, string resource, double seconds, string resourceVersion);

    [LoggerMessage(5, LogLevel.Warning, "Kubernetes {Resource}: the API server failed: {Error}; retrying in {DelayMs:F0} ms, with back-off (retries are logged at Debug until it answers)")]
    private static partial void LogRetrying(ILogger logger, string resource, string error, double delayMs);

    [LoggerMessage(9, LogLevel.Warning, "Kubernetes {Resource}: the watch failed: {Error}; reopening it from resourceVersion {ResourceVersion} in {DelayMs:F0} ms, with back-off (retries are logged at Debug until it answers)")]
    private static partial void LogWatchFailed(ILogger logger, string resource, string resourceVersion, string error, double delayMs);

    [LoggerMessage(10, LogLevel.Warning, "Kubernetes {Resource}: the watch reported an error at resourceVersion {ResourceVersion}: {Error}; re-listing so that nothing is missed")]
    private static partial void LogWatchError(ILogger logger, string resource, string resourceVersion, string error);

    [LoggerMessage(11, LogLevel.Debug, "Kubernetes {Resource}: attempt {Attempt} failed: {Error}; retrying in {DelayMs:F0} ms")]
    private static partial void LogRetryingAgain(ILogger logger, string resource, int attempt, string error, double delayMs);

    [LoggerMessage(12, LogLevel.Debug, "Kubernetes {Resource}: the failure in full")]
    private static partial void LogFailureDetail(ILogger logger, Exception exception, string resource);

    [LoggerMessage(13, LogLevel.Information, "Kubernetes {Resource}: the API server answers again, after {Failures} failed attempt(s)")]
    private static partial void LogRecovered(ILogger logger, string resource, int failures);

    [LoggerMessage(6, LogLevel.Error, "Kubernetes {Resource}: the cluster serves no {Kind} at {Versions}; is the Gateway API CRD installed? Treating it as empty and looking again every {Seconds} s")]
    private static partial void LogKindMissing(ILogger logger, string resource, string kind, string versions, double seconds);

    [LoggerMessage(7, LogLevel.Information, "Kubernetes {Resource}: now served at {ApiVersion}")]
    private static partial void LogKindAppeared(ILogger logger, string resource, string apiVersion);

    [LoggerMessage(8, LogLevel.Error, "Kubernetes object cannot be read, so its last readable version (if any) stays in force: {Problem}")]
    private static partial void LogUnreadable(ILogger logger, string problem);
}
