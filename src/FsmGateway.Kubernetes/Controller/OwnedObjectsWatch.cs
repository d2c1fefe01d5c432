using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using FsmGateway.Kubernetes.Api;
using k8s;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Kubernetes.Controller;

/// <summary>
/// The controller's informer on what it provisions: the Deployments and Services labelled
/// <c>app.kubernetes.io/managed-by=fsm-gateway-controller</c>, listed and watched with the same machinery as the config
/// sources (<see cref="ListWatch{T}"/>: resume from the last resourceVersion, re-list on 410). Whenever what decides a
/// Gateway's data-plane status changes (a Deployment's available replicas, a Service's load-balancer ingress), what we
/// applied to it was changed by someone else, or such an object appears or goes away, <c>changed</c> is called with the Gateway it serves, so that the Gateway's status (and
/// its data plane, if someone deleted part of it) is brought up to date at once rather than at the next resync.
/// </summary>
internal sealed class OwnedObjectsWatch(IKubernetes client, KubernetesOptions options, ApiServerReachability reachability, TimeProvider time, ILogger logger, KubernetesMetrics? metrics = null)
{
    private const string Selector = $"{GatewayProvisioner.ManagedByLabel}={GatewayProvisioner.ManagedByValue}";

    public static WatchedResource Deployments { get; } = new(ApiResource.Deployment.Group, ApiResource.Deployment.Plural, ApiResource.Deployment.Kind, [ApiResource.Deployment.Version], Selector);

    public static WatchedResource Services { get; } = new(ApiResource.Service.Group, ApiResource.Service.Plural, ApiResource.Service.Kind, [ApiResource.Service.Version], Selector);

    /// <summary>ConfigMaps, cluster-wide: any may be named by a Gateway's <c>spec.infrastructure.parametersRef</c>, and the CA ConfigMaps we apply are among them. Only a hash of each one's data is kept.</summary>
    public static WatchedResource ConfigMaps { get; } = new(ApiResource.ConfigMap.Group, ApiResource.ConfigMap.Plural, ApiResource.ConfigMap.Kind, [ApiResource.ConfigMap.Version]);

    /// <summary>
    /// Watches the Deployments and Services until <paramref name="cancellationToken"/> is cancelled;
    /// <paramref name="changed"/> gets the Gateway (<c>namespace/name</c>) whose data plane changed. Watches the
    /// ConfigMaps too: <paramref name="parametersChanged"/> gets a ConfigMap (<c>namespace/name</c>) whose data changed
    /// or that appeared or went away, when <paramref name="isParameters"/> says it matters (a Gateway names it, or it is
    /// a CA ConfigMap we apply).
    /// </summary>
    public Task RunAsync(Action<string> changed, Func<string, bool> isParameters, Action<string> parametersChanged, CancellationToken cancellationToken) => Task.WhenAll(
        new ListWatch<DataPlaneState>(client, Deployments, new Handler(changed, Deployment), options, reachability, time, logger, metrics).RunAsync(cancellationToken),
        new ListWatch<DataPlaneState>(client, Services, new Handler(changed, Service), options, reachability, time, logger, metrics).RunAsync(cancellationToken),
        new ListWatch<ConfigMapState>(client, ConfigMaps, new ParametersHandler(isParameters, parametersChanged), options, reachability, time, logger, metrics).RunAsync(cancellationToken));

    private static DataPlaneState Deployment(JsonObject deployment) =>
        new(GatewayOf(deployment), Available: deployment["status"]?["availableReplicas"]?.GetValue<int>() is > 0, Addresses: string.Empty, Shape(deployment));

    private static DataPlaneState Service(JsonObject service) =>
        new(GatewayOf(service), Available: false, Addresses: string.Join(
            ',',
            (service["status"]?["loadBalancer"]?["ingress"] as JsonArray ?? [])
                .OfType<JsonObject>()
                .Select(i => i["ip"]?.GetValue<string>() ?? i["hostname"]?.GetValue<string>() ?? string.Empty)),
            Shape(service));

    /// <summary>
    /// What someone else may have changed of what we apply (spec, labels, annotations), hashed: a change starts a pass,
    /// whose apply restores our fields at once rather than at the next resync. Our own applies change it too, and the
    /// pass they start is a no-op apply (no new resourceVersion, so no further event).
    /// </summary>
    private static string Shape(JsonObject item) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(
        $"{item["spec"]?.ToJsonString()}|{item["metadata"]?["labels"]?.ToJsonString()}|{item["metadata"]?["annotations"]?.ToJsonString()}")));

    private static string? GatewayOf(JsonObject item) =>
        item["metadata"]?["annotations"]?[GatewayProvisioner.GatewayAnnotation]?.GetValue<string>();

    /// <summary>What of a provisioned object decides its Gateway's status: the Gateway it serves, and its availability or addresses.</summary>
    internal sealed record DataPlaneState(string? Gateway, bool Available, string Addresses, string Shape);

    /// <summary>What is kept of a ConfigMap: a hash of its data (the data itself may be large, and only its changes matter).</summary>
    internal sealed record ConfigMapState(string DataHash);

    private sealed class ParametersHandler(Func<string, bool> isParameters, Action<string> changed) : IListWatchHandler<ConfigMapState>
    {
        public ConfigMapState? Read(JsonObject json, string version) =>
            new(Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(json["data"]?.ToJsonString() ?? string.Empty))));

        public void Upserted(ObjectName name, ConfigMapState item) => Report(name);

        public void Deleted(ObjectName name) => Report(name);

        public void Synced()
        {
        }

        private void Report(ObjectName name)
        {
            var full = $"{name.Namespace}/{name.Name}";
            if (isParameters(full))
            {
                changed(full);
            }
        }
    }

    private sealed class Handler(Action<string> changed, Func<JsonObject, DataPlaneState> read) : IListWatchHandler<DataPlaneState>
    {
        private readonly Dictionary<ObjectName, string> _gateways = [];

        public DataPlaneState? Read(JsonObject json, string version)
        {
            try
            {
                return read(json);
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException)
            {
                // A field of an unexpected type (someone edited the object): nothing to report; the next pass repairs it.
                return null;
            }
        }

        public void Upserted(ObjectName name, DataPlaneState item)
        {
            if (item.Gateway is { } gateway)
            {
                _gateways[name] = gateway;
                changed(gateway);
            }
        }

        public void Deleted(ObjectName name)
        {
            if (_gateways.Remove(name, out var gateway))
            {
                changed(gateway);
            }
        }

        public void Synced()
        {
        }
    }
}
