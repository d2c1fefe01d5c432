using System.Collections.Frozen;
using System.Text.Json.Nodes;
using FsmGateway.Kubernetes.Api;
using FsmGateway.Kubernetes.ControlPlane;
using FsmGateway.Resources;
using FsmGateway.Status;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Kubernetes.Controller;

/// <summary>
/// For each accepted Gateway, the data plane that serves it, in the Gateway's namespace, built by
/// <see cref="DataPlaneManifests"/> and written with server-side apply as field manager
/// <see cref="ProvisioningOptions.FieldManager"/>: the API server creates what is missing, sets what differs and
/// removes what we set before and no longer want, so there is nothing to read and compare first. A field someone else
/// changed since is a conflict; when the object is ours (our controller annotation) it is applied again with force,
/// restoring our value; an object of the same name that we did not make is left alone. A Gateway that is ours but not
/// accepted keeps its data plane (and its load-balancer address); one that is gone or no longer ours loses it.
/// </summary>
/// <remarks>
/// With a <see cref="StreamAuthority"/> (the stream is secured) each namespace also gets the CA ConfigMap its pods
/// verify the controller against; a namespace's Gateways wait until the CA is loaded.
/// </remarks>
internal sealed partial class GatewayProvisioner(ServedVersions versions, ApiObjects api, ProvisioningOptions options, ILogger logger, KubernetesMetrics? metrics = null, StreamAuthority? authority = null)
{
    /// <summary>The label every provisioned object carries, with the value <see cref="ManagedByValue"/>.</summary>
    public const string ManagedByLabel = DataPlaneManifests.ManagedByLabel;

    public const string ManagedByValue = DataPlaneManifests.ManagedByValue;

    public const string GatewayAnnotation = DataPlaneManifests.GatewayAnnotation;

    private HashSet<ResourceKey>? _cleanedFor;

    /// <summary>The ConfigMaps (<c>namespace/name</c>) the Gateways of the latest pass name as parametersRef; read by the ConfigMap watch's thread.</summary>
    private volatile FrozenSet<string> _parameters = FrozenSet<string>.Empty;

    /// <summary>What each applied object looked like after our last apply (its spec and metadata we set), to tell an update from a no-op.</summary>
    private readonly Dictionary<(string Kind, string? Namespace, string Name), string> _applied = [];

    /// <summary>The Gateways whose PodDisruptionBudget we applied, so that one whose replicas drop to 1 loses it at once.</summary>
    private readonly HashSet<ResourceKey> _budgets = [];

    /// <summary>The CA ConfigMaps (<c>namespace/name</c>) the latest pass applies, one per Gateway namespace; read by the ConfigMap watch's thread.</summary>
    private volatile FrozenSet<string> _authorityConfigMaps = FrozenSet<string>.Empty;

    /// <summary>Whether a Gateway of the latest pass names ConfigMap <paramref name="configMap"/> (<c>namespace/name</c>) as its parametersRef.</summary>
    public bool IsParameters(string configMap) => _parameters.Contains(configMap);

    /// <summary>
    /// Whether <paramref name="configMap"/> (<c>namespace/name</c>) is the CA ConfigMap of a namespace the latest pass
    /// provisions: when its data changes or it goes away, a pass writes it back at once (someone deleted or edited it).
    /// </summary>
    public bool IsAuthorityConfigMap(string configMap) => _authorityConfigMaps.Contains(configMap);

    /// <summary>
    /// Brings every accepted Gateway's data plane to what it should be and removes those of Gateways no longer ours.
    /// One Gateway's failure is logged and does not stop the others. Returns what was found per Gateway, and whether
    /// everything succeeded.
    /// </summary>
    public async Task<(IReadOnlyDictionary<ResourceKey, ProvisionedDataPlane> Gateways, bool Complete)> ReconcileAsync(StatusSet statuses, bool fullCheck, CancellationToken cancellationToken)
    {
        var found = new Dictionary<ResourceKey, ProvisionedDataPlane>();
        if (await versions.ResourceAsync(ApiKind.Gateway, cancellationToken).ConfigureAwait(false) is not { } gatewayResource)
        {
            return (found, false);
        }

        var complete = true;
        var gateways = new List<DataPlaneGateway>();
        foreach (var (key, status) in statuses.Gateways)
        {
            // Unusable parameters are the compiler's verdict on what this pass reports, not a reason to stop looking.
            if (!status.Conditions.Any(c => c.Type == ConditionTypes.Accepted && (c.Status == ConditionStatus.True || c.Reason == ConditionReasons.InvalidParameters)))
            {
                continue;
            }

            try
            {
                if (await api.GetAsync(gatewayResource, key.Namespace, key.Name, cancellationToken).ConfigureAwait(false) is { } gateway)
                {
                    gateways.Add(DataPlaneGateway.Read(gateway));
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogFailed(logger, e, key.ToString());
                complete = false;
            }
        }

        // Before any ConfigMap is read: a change after this starts another pass, one before it is seen by this one.
        _parameters = gateways.Where(g => g.ParametersRef is not null).Select(g => $"{g.Namespace}/{g.ParametersRef!.Name}").ToFrozenSet(StringComparer.Ordinal);
        _authorityConfigMaps = authority is null
            ? FrozenSet<string>.Empty
            : gateways.Select(g => $"{g.Namespace}/{DataPlaneManifests.AuthorityConfigMapName}").ToFrozenSet(StringComparer.Ordinal);

        var usableAccounts = new HashSet<string>(StringComparer.Ordinal);

        // One bundle for the whole pass: when every namespace got it, the CA's rotation may go on (StreamAuthority).
        var bundle = authority?.AuthorityPem;
        var bundleEverywhere = bundle is not null;
        foreach (var byNamespace in gateways.GroupBy(g => g.Namespace))
        {
            try
            {
                if (await ApplyAsync(ApiResource.ServiceAccount, byNamespace.Key, DataPlaneManifests.ServiceAccountName, DataPlaneManifests.ServiceAccount(byNamespace.Key, byNamespace, options), cancellationToken).ConfigureAwait(false) is not null
                    && await AuthorityConfigMapAsync(byNamespace.Key, byNamespace, bundle, cancellationToken).ConfigureAwait(false))
                {
                    usableAccounts.Add(byNamespace.Key);
                }
                else
                {
                    complete = false;
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogFailed(logger, e, $"ServiceAccount {byNamespace.Key}/{DataPlaneManifests.ServiceAccountName}");
                complete = false;
            }

            bundleEverywhere &= usableAccounts.Contains(byNamespace.Key);
        }

        if (bundleEverywhere)
        {
            authority!.MarkPublished(bundle!);
        }

        foreach (var gateway in gateways)
        {
            var key = new ResourceKey(ResourceKind.Gateway, gateway.Namespace, gateway.Name);
            if (!usableAccounts.Contains(gateway.Namespace))
            {
                continue;
            }

            try
            {
                var (parameters, error) = await ParametersAsync(gateway, cancellationToken).ConfigureAwait(false);
                if (error is not null)
                {
                    LogInvalidParameters(logger, gateway.FullName, error);
                    found[key] = await CurrentAsync(gateway, error, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                var objects = DataPlaneManifests.Build(gateway, parameters, options);
                var name = DataPlaneManifests.DataPlaneName(gateway.Name);
                var deployment = await ApplyAsync(ApiResource.Deployment, gateway.Namespace, name, objects.Deployment, cancellationToken).ConfigureAwait(false);
                var service = await ApplyAsync(ApiResource.Service, gateway.Namespace, name, objects.Service, cancellationToken).ConfigureAwait(false);
                var budget = await BudgetAsync(key, name, objects.DisruptionBudget, cancellationToken).ConfigureAwait(false);
                if (deployment is null || service is null || !budget)
                {
                    complete = false;
                    continue;
                }

                found[key] = new ProvisionedDataPlane($"{gateway.Namespace}/{name}", AvailableReplicas(deployment), AddressesOf(service));
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogFailed(logger, e, key.ToString());
                complete = false;
            }
        }

        // Removal needs cluster-wide lists: only when the Gateways that are ours changed, or on a full check.
        var ours = statuses.Gateways.Keys.ToHashSet();
        if (fullCheck || _cleanedFor is null || !_cleanedFor.SetEquals(ours))
        {
            try
            {
                await RemoveUnusedAsync(ours, gateways, cancellationToken).ConfigureAwait(false);
                _cleanedFor = ours;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogFailed(logger, e, "removal of unused data planes");
                complete = false;
            }
        }

        return (found, complete);
    }

    /// <summary>
    /// Applies the namespace's CA ConfigMap when the stream is secured; false (try again later) while the CA is not
    /// loaded yet: pods started without it could not verify the controller.
    /// </summary>
    private async Task<bool> AuthorityConfigMapAsync(string ns, IEnumerable<DataPlaneGateway> owners, string? bundle, CancellationToken cancellationToken)
    {
        if (authority is null)
        {
            return true;
        }

        if (bundle is not { } pem)
        {
            LogAuthorityPending(logger, ns);
            return false;
        }

        var configMap = DataPlaneManifests.AuthorityConfigMap(ns, owners, pem, options);
        return await ApplyAsync(ApiResource.ConfigMap, ns, DataPlaneManifests.AuthorityConfigMapName, configMap, cancellationToken).ConfigureAwait(false) is not null;
    }

    /// <summary>
    /// The Gateway's parameters: none without a parametersRef; else those of the ConfigMap it names in its namespace,
    /// or the error (naming the object and field) that makes them unusable.
    /// </summary>
    private async Task<(DataPlaneParameters Parameters, string? Error)> ParametersAsync(DataPlaneGateway gateway, CancellationToken cancellationToken)
    {
        if (gateway.ParametersRef is not { } reference)
        {
            return (DataPlaneParameters.None, null);
        }

        if (reference.Group is not ("" or "core") || reference.Kind != "ConfigMap" || reference.Name.Length == 0)
        {
            return (DataPlaneParameters.None, $"Gateway {gateway.FullName}: spec.infrastructure.parametersRef: only a ConfigMap (group \"\", kind ConfigMap) with a name is supported, not group '{LogText.Escape(reference.Group)}' kind '{LogText.Escape(reference.Kind)}' name '{LogText.Escape(reference.Name)}'");
        }

        var configMapName = $"{gateway.Namespace}/{reference.Name}";
        if (await api.GetAsync(ApiResource.ConfigMap, gateway.Namespace, reference.Name, cancellationToken).ConfigureAwait(false) is not { } configMap)
        {
            return (DataPlaneParameters.None, $"Gateway {gateway.FullName}: spec.infrastructure.parametersRef: ConfigMap {configMapName} not found");
        }

        var (parameters, errors) = DataPlaneParameters.Read(configMapName, configMap["data"] as JsonObject);
        return errors.Count == 0 ? (parameters, null) : (parameters, string.Join("; ", errors));
    }

    /// <summary>What is provisioned now for a Gateway whose parameters are invalid (left as it is).</summary>
    private async Task<ProvisionedDataPlane> CurrentAsync(DataPlaneGateway gateway, string error, CancellationToken cancellationToken)
    {
        var name = DataPlaneManifests.DataPlaneName(gateway.Name);
        var deployment = await api.GetAsync(ApiResource.Deployment, gateway.Namespace, name, cancellationToken).ConfigureAwait(false);
        var service = await api.GetAsync(ApiResource.Service, gateway.Namespace, name, cancellationToken).ConfigureAwait(false);
        return new ProvisionedDataPlane(
            $"{gateway.Namespace}/{name}",
            deployment is not null && IsOurs(deployment) ? AvailableReplicas(deployment) : 0,
            service is not null && IsOurs(service) ? AddressesOf(service) : [])
        {
            ParametersError = error,
        };
    }

    /// <summary>Applies the Gateway's PodDisruptionBudget, or deletes the one we applied before when it wants none; false when that failed.</summary>
    private async Task<bool> BudgetAsync(ResourceKey key, string name, V1PodDisruptionBudget? budget, CancellationToken cancellationToken)
    {
        if (budget is not null)
        {
            var applied = await ApplyAsync(ApiResource.PodDisruptionBudget, key.Namespace, name, budget, cancellationToken).ConfigureAwait(false);
            if (applied is not null)
            {
                _budgets.Add(key);
            }

            return applied is not null;
        }

        if (_budgets.Remove(key))
        {
            await DeleteIfOursAsync(ApiResource.PodDisruptionBudget, key.Namespace, name, $"{key.Namespace}/{key.Name}", cancellationToken).ConfigureAwait(false);
        }

        return true;
    }

    private async Task DeleteIfOursAsync(ApiResource resource, string ns, string name, string owner, CancellationToken cancellationToken)
    {
        if (await api.GetAsync(resource, ns, name, cancellationToken).ConfigureAwait(false) is { } current
            && IsOurs(current)
            && await api.DeleteAsync(resource, ns, name, cancellationToken).ConfigureAwait(false))
        {
            _applied.Remove((resource.Kind, ns, name));
            metrics?.Provisioned(resource.Kind, KubernetesMetrics.Deleted);
            LogRemoved(logger, resource.Kind, $"{ns}/{name}", owner);
        }
    }

    /// <summary>
    /// Deletes what this controller provisioned for Gateways that are no longer ours (a deleted Gateway's objects go
    /// with it through their owner references) and the PodDisruptionBudgets of Gateways that want none. (A namespace's
    /// ServiceAccount and CA ConfigMap go with its last Gateway, through their owner references.)
    /// </summary>
    private async Task RemoveUnusedAsync(HashSet<ResourceKey> ours, List<DataPlaneGateway> provisioned, CancellationToken cancellationToken)
    {
        var selector = $"{ManagedByLabel}={ManagedByValue}";
        foreach (var resource in (ApiResource[])[ApiResource.Deployment, ApiResource.Service, ApiResource.PodDisruptionBudget])
        {
            foreach (var item in await api.ListAsync(resource, selector, cancellationToken).ConfigureAwait(false))
            {
                if (!IsOurs(item) || item["metadata"]?["annotations"]?[GatewayAnnotation]?.GetValue<string>() is not { } gateway)
                {
                    continue;
                }

                var slash = gateway.IndexOf('/', StringComparison.Ordinal);
                var key = new ResourceKey(ResourceKind.Gateway, gateway[..Math.Max(slash, 0)], gateway[(slash + 1)..]);
                var ns = Meta(item, "namespace");
                var name = Meta(item, "name");
                var unused = !ours.Contains(key) || (resource == ApiResource.PodDisruptionBudget && !_budgets.Contains(key) && provisioned.Any(g => g.Namespace == key.Namespace && g.Name == key.Name));
                if (unused && await api.DeleteAsync(resource, ns, name, cancellationToken).ConfigureAwait(false))
                {
                    _applied.Remove((resource.Kind, ns, name));
                    metrics?.Provisioned(resource.Kind, KubernetesMetrics.Deleted);
                    LogRemoved(logger, resource.Kind, $"{ns}/{name}", gateway);
                }
            }
        }
    }

    /// <summary>
    /// Server-side applies <paramref name="desired"/>; returns the object as it is now, or null when an object of that
    /// name exists that this controller did not make (left alone, and logged). A conflict on an object of ours means
    /// someone changed a field we set: applied again with force, which restores it.
    /// </summary>
    private async Task<JsonObject?> ApplyAsync(ApiResource resource, string? ns, string name, object desired, CancellationToken cancellationToken)
    {
        var described = ns is null ? name : $"{ns}/{name}";
        JsonObject result;
        bool created;
        try
        {
            (result, created) = await api.ApplyAsync(resource, ns, name, desired, ProvisioningOptions.FieldManager, force: false, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (ApiObjects.IsConflict(e))
        {
            if (await api.GetAsync(resource, ns, name, cancellationToken).ConfigureAwait(false) is { } current && !IsOurs(current))
            {
                LogNotOurs(logger, resource.Kind, described);
                return null;
            }

            LogRestoring(logger, resource.Kind, described, ErrorText.Of(e));
            (result, created) = await api.ApplyAsync(resource, ns, name, desired, ProvisioningOptions.FieldManager, force: true, cancellationToken).ConfigureAwait(false);
        }

        var shape = Shape(result);
        var before = _applied.GetValueOrDefault((resource.Kind, ns, name));
        _applied[(resource.Kind, ns, name)] = shape;
        if (created)
        {
            metrics?.Provisioned(resource.Kind, KubernetesMetrics.Created);
            LogCreated(logger, resource.Kind, described);
        }
        else if (before is not null && before != shape)
        {
            metrics?.Provisioned(resource.Kind, KubernetesMetrics.Updated);
            LogUpdated(logger, resource.Kind, described);
        }

        return result;
    }

    /// <summary>An object without what the API server keeps changing (status, resourceVersion, managedFields): what an apply can change.</summary>
    private static string Shape(JsonObject item)
    {
        var copy = (JsonObject)item.DeepClone();
        copy.Remove("status");
        if (copy["metadata"] is JsonObject metadata)
        {
            metadata.Remove("resourceVersion");
            metadata.Remove("managedFields");
        }

        return copy.ToJsonString();
    }

    private bool IsOurs(JsonObject item) =>
        item["metadata"]?["annotations"]?[DataPlaneManifests.ControllerAnnotation] is JsonValue value && value.TryGetValue<string>(out var name) && name == options.ControllerName;

    private static int AvailableReplicas(JsonObject deployment) =>
        deployment["status"]?["availableReplicas"] is JsonValue value && value.TryGetValue<int>(out var available) ? available : 0;

    private static string Meta(JsonObject item, string field) => item["metadata"]![field]!.GetValue<string>();

    /// <summary>
    /// A LoadBalancer Service's addresses are its load-balancer ingress (none until the cloud assigns one); another
    /// type's are its cluster IPs (reachable in the cluster, and through node ports for NodePort).
    /// </summary>
    private static EquatableArray<GatewayAddress> AddressesOf(JsonObject service)
    {
        var type = service["spec"]?["type"] is JsonValue t && t.TryGetValue<string>(out var text) ? text : "ClusterIP";
        if (type != "LoadBalancer")
        {
            return [.. (service["spec"]?["clusterIPs"] as JsonArray ?? [])
                .Select(ip => ip is JsonValue v && v.TryGetValue<string>(out var address) && address is { Length: > 0 } and not "None" ? new GatewayAddress(GatewayAddress.IPAddressType, address) : null)
                .OfType<GatewayAddress>()];
        }

        return [.. (service["status"]?["loadBalancer"]?["ingress"] as JsonArray ?? [])
            .OfType<JsonObject>()
            .Select(i => i["ip"]?.GetValue<string>() is { Length: > 0 } ip
                ? new GatewayAddress(GatewayAddress.IPAddressType, ip)
                : i["hostname"]?.GetValue<string>() is { Length: > 0 } hostname ? new GatewayAddress("Hostname", hostname) : null)
            .OfType<GatewayAddress>()];
    }

    [LoggerMessage(1, LogLevel.Information, "Provisioned {Kind} {Name}")]
    private static partial void LogCreated(ILogger logger, string kind, string name);

    [LoggerMessage(2, LogLevel.Information, "Updated {Kind} {Name} to match its Gateway")]
    private static partial void LogUpdated(ILogger logger, string kind, string name);

    [LoggerMessage(3, LogLevel.Information, "Removed {Kind} {Name}: {Owner} is no longer ours")]
    private static partial void LogRemoved(ILogger logger, string kind, string name, string owner);

    [LoggerMessage(4, LogLevel.Warning, "{Kind} {Name} exists but was not made by this controller; leaving it alone, so its Gateway's data plane is not provisioned")]
    private static partial void LogNotOurs(ILogger logger, string kind, string name);

    [LoggerMessage(7, LogLevel.Information, "{Kind} {Name} was changed by someone else; applying ours again ({Conflict})")]
    private static partial void LogRestoring(ILogger logger, string kind, string name, string conflict);

    [LoggerMessage(9, LogLevel.Information, "The data planes of namespace {Namespace} wait for the config stream's CA to be loaded")]
    private static partial void LogAuthorityPending(ILogger logger, string @namespace);

    [LoggerMessage(8, LogLevel.Warning, "The data plane of Gateway {Gateway} is left as it is: {Error}")]
    private static partial void LogInvalidParameters(ILogger logger, string gateway, string error);

    /// <summary>Type and message at Warning; the stack at Debug.</summary>
    private static void LogFailed(ILogger logger, Exception exception, string subject)
    {
        LogFailedBriefly(logger, subject, ErrorText.Of(exception));
        LogFailedInFull(logger, exception, subject);
    }

    [LoggerMessage(5, LogLevel.Warning, "Provisioning {Subject} failed: {Error}; retrying later")]
    private static partial void LogFailedBriefly(ILogger logger, string subject, string error);

    [LoggerMessage(6, LogLevel.Debug, "Provisioning {Subject} failed; in full")]
    private static partial void LogFailedInFull(ILogger logger, Exception exception, string subject);
}
