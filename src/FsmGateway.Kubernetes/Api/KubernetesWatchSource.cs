using System.Reactive.Linq;
using System.Text.Json.Nodes;
using FsmGateway.Configuration;
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
/// objects until it is served again.
/// </summary>
internal sealed partial class KubernetesWatchSource(
    IKubernetes client,
    ApiKind kind,
    KubernetesOptions options,
    TimeProvider time,
    ILogger logger,
    ApiServerReachability? reachability = null) : IConfigSource
{
    private readonly ResourceKind _kind = kind.Kind;
    private readonly ILogger _logger = logger;
    private readonly ApiServerReachability _reachability = reachability ?? new ApiServerReachability(time);
    private readonly WatchedResource _resource = new(kind.Group, kind.Plural, kind.ApiKindName, kind.Versions);

    public string Name { get; } = $"kubernetes/{kind.Plural}";

    public IObservable<ConfigEvent> Events => Observable.Create<ConfigEvent>((observer, cancellationToken) =>
        new ListWatch<Resource>(client, _resource, new Handler(this, observer), options, _reachability, time, _logger)
            .RunAsync(cancellationToken));

    /// <summary>Maps each object to the model and reports it as config events.</summary>
    private sealed class Handler(KubernetesWatchSource source, IObserver<ConfigEvent> observer) : IListWatchHandler<Resource>
    {
        public Resource? Read(JsonObject json, string version)
        {
            try
            {
                return ResourceMapper.Map(json, defaultNamespace: string.Empty).Resource;
            }
            catch (ResourceMappingException e)
            {
                // The API server validated the object against its schema; what we cannot read is reported and the
                // last readable version (if any) stays in force.
                LogUnreadable(source._logger, e.Message);
                return null;
            }
        }

        public void Upserted(ObjectName name, Resource item) => observer.OnNext(new ConfigEvent.Upserted(source.Name, item));

        public void Deleted(ObjectName name) =>
            observer.OnNext(new ConfigEvent.Deleted(source.Name, new ResourceKey(source._kind, name.Namespace, name.Name)));

        public void Synced() => observer.OnNext(new ConfigEvent.SourceSynced(source.Name));
    }

    [LoggerMessage(8, LogLevel.Error, "Kubernetes object cannot be read, so its last readable version (if any) stays in force: {Problem}")]
    private static partial void LogUnreadable(ILogger logger, string problem);
}
