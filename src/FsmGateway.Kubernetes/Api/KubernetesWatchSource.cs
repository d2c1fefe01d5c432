using System.Reactive.Linq;
using System.Text.Json.Nodes;
using FsmGateway.Configuration;
using FsmGateway.Kubernetes.Controller;
using FsmGateway.Kubernetes.Mapping;
using FsmGateway.Resources;
using k8s;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Kubernetes.Api;

/// <summary>
/// One kind, watched cluster-wide, as a config source named <c>kubernetes/{plural}</c>: a <see cref="ListWatch{T}"/>
/// (discovery, paged list, watch from the list's resourceVersion with bookmarks, reopened when it ends or falls silent,
/// re-listed on a 410 or an error event, with back-off that the API server's return cuts short) whose objects are mapped by <see cref="ResourceMapper"/>; the
/// first list ends with <see cref="ConfigEvent.SourceSynced"/>. A kind the cluster does not serve at start is logged,
/// counts as synced with no objects, and is looked for again periodically; one that stops being served keeps its
/// objects until it is served again. With <see cref="ObservedUids"/> (the controller's), each object's uid is told to it
/// before the event enters the pipeline.
/// </summary>
internal sealed partial class KubernetesWatchSource(
    IKubernetes client,
    ApiKind kind,
    KubernetesOptions options,
    TimeProvider time,
    ILogger logger,
    ApiServerReachability? reachability = null,
    Func<JsonObject, Resource?>? map = null,
    KubernetesMetrics? metrics = null,
    ObservedUids? uids = null) : IConfigSource
{
    private readonly Func<JsonObject, Resource?> _map = map ?? (json => ResourceMapper.Map(json, defaultNamespace: string.Empty).Resource);
    private int _unreadable;

    private readonly ResourceKind _kind = kind.Kind;
    private readonly ObservedUids? _uids = uids;
    private readonly ILogger _logger = logger;
    private readonly ApiServerReachability _reachability = reachability ?? new ApiServerReachability(time);
    private readonly WatchedResource _resource = new(kind.Group, kind.Plural, kind.ApiKindName, kind.Versions);

    public string Name { get; } = $"kubernetes/{kind.Plural}";

    /// <summary>Objects that could not be read (each time one was seen), since start.</summary>
    public int Unreadable => Volatile.Read(ref _unreadable);

    public IObservable<ConfigEvent> Events => Observable.Create<ConfigEvent>((observer, cancellationToken) =>
        new ListWatch<Resource>(client, _resource, new Handler(this, observer), options, _reachability, time, _logger, metrics)
            .RunAsync(cancellationToken));

    /// <summary>Maps each object to the model and reports it as config events.</summary>
    private sealed class Handler(KubernetesWatchSource source, IObserver<ConfigEvent> observer) : IListWatchHandler<Resource>
    {
        public Resource? Read(JsonObject json, string version)
        {
            try
            {
                return source._map(json);
            }
            catch (ResourceMappingException e)
            {
                // The API server validated the object against its schema; what we cannot read is reported and the
                // last readable version (if any) stays in force.
                Interlocked.Increment(ref source._unreadable);
                LogUnreadable(source._logger, e.Message);
                return null;
            }
#pragma warning disable CA1031 // One odd object must not stop the whole kind: any fault of the mapper skips that object only.
            catch (Exception e) when (e is not OutOfMemoryException)
#pragma warning restore CA1031
            {
                // A fault of ours, not of the object: escaping to ListWatch would fail every re-list on this object.
                Interlocked.Increment(ref source._unreadable);
                LogUnreadable(source._logger, $"{DescribeObject(json)} could not be mapped ({ErrorText.Of(e)})");
                LogUnreadableDetail(source._logger, e);
                return null;
            }
        }

        public void Upserted(ObjectName name, Resource item)
        {
            source._uids?.Upserted(item.Key, item.Metadata.Uid);
            observer.OnNext(new ConfigEvent.Upserted(source.Name, item));
        }

        public void Deleted(ObjectName name)
        {
            var key = new ResourceKey(source._kind, name.Namespace, name.Name);
            source._uids?.Deleted(key);
            observer.OnNext(new ConfigEvent.Deleted(source.Name, key));
        }

        public void Synced() => observer.OnNext(new ConfigEvent.SourceSynced(source.Name));
    }

    private static string DescribeObject(JsonObject json)
    {
        var metadata = json["metadata"] as JsonObject;
        string? Text(JsonNode? node) => node is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;
        return $"{LogText.Escape(Text(json["kind"]) ?? "object")} {LogText.Escape(Text(metadata?["namespace"]) ?? string.Empty)}/{LogText.Escape(Text(metadata?["name"]) ?? "?")}";
    }

    [LoggerMessage(9, LogLevel.Debug, "Kubernetes object cannot be read: the failure in full")]
    private static partial void LogUnreadableDetail(ILogger logger, Exception exception);

    [LoggerMessage(8, LogLevel.Error, "Kubernetes object cannot be read, so its last readable version (if any) stays in force: {Problem}")]
    private static partial void LogUnreadable(ILogger logger, string problem);
}
