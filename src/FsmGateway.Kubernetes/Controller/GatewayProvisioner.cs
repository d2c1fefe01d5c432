using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using FsmGateway.Kubernetes.Api;
using FsmGateway.Resources;
using FsmGateway.Status;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Kubernetes.Controller;

/// <summary>What provisioning found for one Gateway.</summary>
/// <param name="Addresses">The Service's load-balancer ingress.</param>
/// <param name="Available">Whether the Deployment has an available replica.</param>
/// <param name="Deployment">The Deployment, as <c>namespace/name</c>, for status messages.</param>
internal sealed record ProvisionedGateway(EquatableArray<GatewayAddress> Addresses, bool Available, string Deployment);

/// <summary>
/// For each accepted Gateway, the data plane that serves it, in the Gateway's namespace: a Deployment running
/// <c>fsm-gateway gateway --gateway ns/name</c> and a Service of type LoadBalancer labelled <c>app: fsm-gateway</c>
/// exposing the listener ports, both owned by the Gateway (deleting it deletes them), plus the ServiceAccount the pods
/// run as and its binding to the read-only <c>fsm-gateway-dataplane</c> ClusterRole. The pods read their Gateway's
/// config from the API server themselves. Objects are patched only when they differ from what is wanted, and objects
/// of the same name that we did not create are left alone. A Gateway that is ours but not accepted keeps its data
/// plane (and its load-balancer address); one that is gone or no longer ours loses it.
/// </summary>
internal sealed partial class GatewayProvisioner(ServedVersions versions, ApiObjects api, ProvisioningOptions options, ILogger logger, KubernetesMetrics? metrics = null)
{
    /// <summary>The label every provisioned object carries, with the value <see cref="ManagedByValue"/>.</summary>
    public const string ManagedByLabel = "app.kubernetes.io/managed-by";

    public const string ManagedByValue = "fsm-gateway-controller";

    /// <summary>The label FSM's guide selects the Service by: <c>kubectl get svc -l app=fsm-gateway</c>.</summary>
    public const string AppLabel = "app";

    public const string AppValue = "fsm-gateway";

    public const string GatewayNameLabel = "gateway.networking.k8s.io/gateway-name";

    /// <summary>Annotations: which controller made the object, and for which Gateway (in full, where labels cannot hold it).</summary>
    public const string ControllerAnnotation = "gateway.fsm-gateway.io/controller-name";

    public const string GatewayAnnotation = "gateway.fsm-gateway.io/gateway";

    public const string ServiceAccountName = "fsm-gateway";

    public const int DefaultAdminPort = 9901;

    private static readonly Regex Dns1035Label = DnsLabelRegex();

    private HashSet<ResourceKey>? _cleanedFor;

    /// <summary>
    /// Brings every accepted Gateway's data plane to what it should be and removes those of Gateways no longer ours.
    /// One Gateway's failure is logged and does not stop the others. Returns what was found per Gateway, and whether
    /// everything succeeded.
    /// </summary>
    public async Task<(IReadOnlyDictionary<ResourceKey, ProvisionedGateway> Gateways, bool Complete)> ReconcileAsync(StatusSet statuses, bool fullCheck, CancellationToken cancellationToken)
    {
        var found = new Dictionary<ResourceKey, ProvisionedGateway>();
        if (await versions.ResourceAsync(ApiKind.Gateway, cancellationToken).ConfigureAwait(false) is not { } gatewayResource)
        {
            return (found, false);
        }

        var complete = true;
        var gateways = new List<JsonObject>();
        foreach (var (key, status) in statuses.Gateways)
        {
            if (!status.Conditions.Any(c => c.Type == ConditionTypes.Accepted && c.Status == ConditionStatus.True))
            {
                continue;
            }

            try
            {
                if (await api.GetAsync(gatewayResource, key.Namespace, key.Name, cancellationToken).ConfigureAwait(false) is { } gateway)
                {
                    gateways.Add(gateway);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogFailed(logger, e, key.ToString());
                complete = false;
            }
        }

        var usableAccounts = new HashSet<string>(StringComparer.Ordinal);
        foreach (var byNamespace in gateways.GroupBy(g => Meta(g, "namespace")))
        {
            try
            {
                var owners = new JsonArray([.. byNamespace.Select(g => OwnerReference(g, controller: false))]);
                if (await EnsureAsync(ApiResource.ServiceAccount, byNamespace.Key, ServiceAccount(byNamespace.Key, owners), cancellationToken).ConfigureAwait(false) is not null
                    && await EnsureAsync(ApiResource.ClusterRoleBinding, null, DataPlaneBinding(byNamespace.Key), cancellationToken).ConfigureAwait(false) is not null)
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
                LogFailed(logger, e, $"ServiceAccount {byNamespace.Key}/{ServiceAccountName}");
                complete = false;
            }
        }

        foreach (var gateway in gateways)
        {
            var ns = Meta(gateway, "namespace");
            var name = Meta(gateway, "name");
            var key = new ResourceKey(ResourceKind.Gateway, ns, name);
            if (!usableAccounts.Contains(ns))
            {
                continue;
            }

            try
            {
                var ports = ListenerPorts(gateway);
                var deployment = await EnsureAsync(ApiResource.Deployment, ns, Deployment(gateway, ns, name, ports), cancellationToken).ConfigureAwait(false);
                var service = await EnsureAsync(ApiResource.Service, ns, Service(gateway, ns, name, ports), cancellationToken).ConfigureAwait(false);
                if (deployment is null || service is null)
                {
                    complete = false;
                    continue;
                }

                var available = deployment["status"]?["availableReplicas"]?.GetValue<int>() is > 0;
                found[key] = new ProvisionedGateway(AddressesOf(service), available, $"{ns}/{DataPlaneName(name)}");
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
    /// Deletes what this controller provisioned for Gateways that are no longer ours (a deleted Gateway's objects go
    /// with it through their owner references), and the data-plane bindings of namespaces left with no Gateway.
    /// </summary>
    private async Task RemoveUnusedAsync(HashSet<ResourceKey> ours, List<JsonObject> provisioned, CancellationToken cancellationToken)
    {
        var selector = $"{ManagedByLabel}={ManagedByValue}";
        foreach (var resource in (ApiResource[])[ApiResource.Deployment, ApiResource.Service])
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
                if (!ours.Contains(key) && await api.DeleteAsync(resource, ns, name, cancellationToken).ConfigureAwait(false))
                {
                    metrics?.Provisioned(resource.Kind, KubernetesMetrics.Deleted);
                    LogRemoved(logger, resource.Kind, $"{ns}/{name}", gateway);
                }
            }
        }

        var namespaces = provisioned.Select(g => Meta(g, "namespace")).ToHashSet(StringComparer.Ordinal);
        foreach (var binding in await api.ListAsync(ApiResource.ClusterRoleBinding, selector, cancellationToken).ConfigureAwait(false))
        {
            var name = Meta(binding, "name");
            var ns = binding["subjects"]?[0]?["namespace"]?.GetValue<string>();
            if (IsOurs(binding) && ns is not null && !namespaces.Contains(ns) && await api.DeleteAsync(ApiResource.ClusterRoleBinding, null, name, cancellationToken).ConfigureAwait(false))
            {
                metrics?.Provisioned(ApiResource.ClusterRoleBinding.Kind, KubernetesMetrics.Deleted);
                LogRemoved(logger, ApiResource.ClusterRoleBinding.Kind, name, $"namespace {ns}");
            }
        }
    }

    /// <summary>
    /// Creates the object, or merge-patches it when it lacks part of what is wanted; returns it as it is now. An
    /// object of that name that this controller did not create is left alone (null is returned, and logged).
    /// </summary>
    private async Task<JsonObject?> EnsureAsync(ApiResource resource, string? ns, JsonObject desired, CancellationToken cancellationToken)
    {
        var name = desired["metadata"]!["name"]!.GetValue<string>();
        var described = ns is null ? name : $"{ns}/{name}";
        var current = await api.GetAsync(resource, ns, name, cancellationToken).ConfigureAwait(false);
        if (current is null)
        {
            try
            {
                var created = await api.CreateAsync(resource, ns, desired, cancellationToken).ConfigureAwait(false);
                metrics?.Provisioned(resource.Kind, KubernetesMetrics.Created);
                LogCreated(logger, resource.Kind, described);
                return created;
            }
            catch (Exception e) when (ApiObjects.IsConflict(e))
            {
                // Created meanwhile (another replica that was leader a moment ago); compare it below.
                current = await api.GetAsync(resource, ns, name, cancellationToken).ConfigureAwait(false)
                    ?? throw new InvalidOperationException($"{resource.Kind} {described} exists but cannot be read", e);
            }
        }

        if (!IsOurs(current))
        {
            LogNotOurs(logger, resource.Kind, described);
            return null;
        }

        var patch = (JsonObject)desired.DeepClone();
        patch.Remove("apiVersion");
        patch.Remove("kind");
        (patch["spec"] as JsonObject)?.Remove("replicas");
        if (JsonSubset.Contains(current, patch))
        {
            return current;
        }

        var patched = await api.MergePatchAsync(resource, ns, name, patch, cancellationToken).ConfigureAwait(false);
        metrics?.Provisioned(resource.Kind, KubernetesMetrics.Updated);
        LogUpdated(logger, resource.Kind, described);
        return patched;
    }

    private bool IsOurs(JsonObject item) =>
        item["metadata"]?["annotations"]?[ControllerAnnotation]?.GetValue<string>() == options.ControllerName;

    private static string Meta(JsonObject item, string field) => item["metadata"]![field]!.GetValue<string>();

    /// <summary>
    /// <c>fsm-gateway-&lt;gateway&gt;</c> when that is a valid Service name (a DNS-1035 label of at most 63
    /// characters); otherwise a shortened, cleaned form with a hash of the full name, so it stays unique.
    /// </summary>
    internal static string DataPlaneName(string gatewayName) => Label($"fsm-gateway-{gatewayName}", gatewayName);

    /// <summary>A label value for the Gateway's name: the name itself when it fits (63 characters), else a hashed form.</summary>
    internal static string GatewayLabelValue(string gatewayName) => Label(gatewayName, gatewayName);

    private static string Label(string wanted, string hashed)
    {
        if (wanted.Length <= 63 && Dns1035Label.IsMatch(wanted))
        {
            return wanted;
        }

        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(hashed)))[..8];
        var cleaned = new StringBuilder();
        foreach (var c in wanted.ToLowerInvariant())
        {
            cleaned.Append(char.IsAsciiLetterOrDigit(c) ? c : '-');
        }

        var stem = cleaned.ToString().TrimStart('-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9');
        stem = stem[..Math.Min(stem.Length, 63 - 9)].TrimEnd('-');
        return stem.Length == 0 ? $"gw-{hash}" : $"{stem}-{hash}";
    }

    private static JsonObject OwnerReference(JsonObject gateway, bool controller) => new()
    {
        ["apiVersion"] = gateway["apiVersion"]!.GetValue<string>(),
        ["kind"] = "Gateway",
        ["name"] = Meta(gateway, "name"),
        ["uid"] = Meta(gateway, "uid"),
        ["controller"] = controller,
    };

    private JsonObject Metadata(string name, string? ns, string? gatewayName, JsonArray? owners)
    {
        var labels = new JsonObject { [ManagedByLabel] = ManagedByValue };
        var annotations = new JsonObject { [ControllerAnnotation] = options.ControllerName };
        if (gatewayName is not null)
        {
            labels[AppLabel] = AppValue;
            labels[GatewayNameLabel] = GatewayLabelValue(gatewayName);
            annotations[GatewayAnnotation] = $"{ns}/{gatewayName}";
        }

        var metadata = new JsonObject { ["name"] = name };
        if (ns is not null)
        {
            metadata["namespace"] = ns;
        }

        metadata["labels"] = labels;
        metadata["annotations"] = annotations;
        if (owners is not null)
        {
            metadata["ownerReferences"] = owners;
        }

        return metadata;
    }

    /// <summary>The distinct listener ports in spec order.</summary>
    private static List<int> ListenerPorts(JsonObject gateway) =>
        [.. (gateway["spec"]?["listeners"] as JsonArray ?? [])
            .OfType<JsonObject>()
            .Select(l => l["port"]?.GetValue<int>() ?? 0)
            .Where(p => p is > 0 and <= 65535)
            .Distinct()];

    /// <summary>The data plane's admin port: 9901, or the next port no listener uses.</summary>
    private static int AdminPort(List<int> ports)
    {
        var port = DefaultAdminPort;
        while (ports.Contains(port))
        {
            port++;
        }

        return port;
    }

    private JsonObject ServiceAccount(string ns, JsonArray owners) => new()
    {
        ["apiVersion"] = "v1",
        ["kind"] = "ServiceAccount",
        ["metadata"] = Metadata(ServiceAccountName, ns, null, owners),
    };

    private JsonObject DataPlaneBinding(string ns) => new()
    {
        ["apiVersion"] = "rbac.authorization.k8s.io/v1",
        ["kind"] = "ClusterRoleBinding",
        ["metadata"] = Metadata(Label($"fsm-gateway-dataplane-{ns}", ns), null, null, null),
        ["roleRef"] = new JsonObject { ["apiGroup"] = "rbac.authorization.k8s.io", ["kind"] = "ClusterRole", ["name"] = options.DataPlaneClusterRole },
        ["subjects"] = new JsonArray(new JsonObject { ["kind"] = "ServiceAccount", ["name"] = ServiceAccountName, ["namespace"] = ns }),
    };

    /// <summary>
    /// The data plane's Deployment. Listener ports are deliberately not in the pod template: the pods read their
    /// listeners from the API server, so adding or removing one changes only the Service and never restarts the pods
    /// (which would cut live connections).
    /// </summary>
    private JsonObject Deployment(JsonObject gateway, string ns, string name, List<int> ports)
    {
        var admin = AdminPort(ports);
        var labels = new JsonObject { [AppLabel] = AppValue, [GatewayNameLabel] = GatewayLabelValue(name) };
        var adminText = admin.ToString(CultureInfo.InvariantCulture);
        return new JsonObject
        {
            ["apiVersion"] = "apps/v1",
            ["kind"] = "Deployment",
            ["metadata"] = Metadata(DataPlaneName(name), ns, name, new JsonArray(OwnerReference(gateway, controller: true))),
            ["spec"] = new JsonObject
            {
                ["replicas"] = options.Replicas,
                ["selector"] = new JsonObject { ["matchLabels"] = labels.DeepClone() },
                ["template"] = new JsonObject
                {
                    // The de-facto annotations Prometheus's kubernetes_sd pod relabelling (and many charts) look for.
                    ["metadata"] = new JsonObject { ["labels"] = labels.DeepClone(), ["annotations"] = ScrapeAnnotations(admin) },
                    ["spec"] = new JsonObject
                    {
                        ["serviceAccountName"] = ServiceAccountName,

                        // Drain (30 s by default) plus a margin, so the kubelet does not kill a draining pod.
                        ["terminationGracePeriodSeconds"] = 45,
                        ["securityContext"] = new JsonObject
                        {
                            ["runAsNonRoot"] = true,
                            ["seccompProfile"] = new JsonObject { ["type"] = "RuntimeDefault" },

                            // Listeners below 1024 without root or capabilities (a "safe" sysctl, allowed by the
                            // restricted Pod Security level); always set, so the template does not change with ports.
                            ["sysctls"] = new JsonArray(new JsonObject { ["name"] = "net.ipv4.ip_unprivileged_port_start", ["value"] = "0" }),
                        },
                        ["containers"] = new JsonArray(new JsonObject
                        {
                            ["name"] = "gateway",
                            ["image"] = options.Image,
                            ["args"] = new JsonArray(
                                "gateway", "--gateway", $"{ns}/{name}", "--controller-name", options.ControllerName,
                                "--admin-address", "0.0.0.0", "--admin-port", adminText),
                            ["ports"] = new JsonArray(new JsonObject { ["name"] = "admin", ["containerPort"] = admin, ["protocol"] = "TCP" }),
                            ["readinessProbe"] = new JsonObject { ["httpGet"] = new JsonObject { ["path"] = "/readyz", ["port"] = admin } },
                            ["livenessProbe"] = new JsonObject { ["httpGet"] = new JsonObject { ["path"] = "/healthz", ["port"] = admin } },
                            ["resources"] = new JsonObject { ["requests"] = new JsonObject { ["cpu"] = "100m", ["memory"] = "64Mi" } },
                            ["securityContext"] = new JsonObject
                            {
                                ["allowPrivilegeEscalation"] = false,
                                ["readOnlyRootFilesystem"] = true,
                                ["capabilities"] = new JsonObject { ["drop"] = new JsonArray("ALL") },
                            },
                            ["volumeMounts"] = new JsonArray(new JsonObject { ["name"] = "tmp", ["mountPath"] = "/tmp" }),
                        }),
                        ["volumes"] = new JsonArray(new JsonObject { ["name"] = "tmp", ["emptyDir"] = new JsonObject() }),
                    },
                },
            },
        };
    }

    /// <summary>The <c>prometheus.io/*</c> annotations of a pod whose metrics are at <c>/metrics</c> on <paramref name="port"/>.</summary>
    internal static JsonObject ScrapeAnnotations(int port) => new()
    {
        ["prometheus.io/scrape"] = "true",
        ["prometheus.io/port"] = port.ToString(CultureInfo.InvariantCulture),
        ["prometheus.io/path"] = "/metrics",
    };

    private JsonObject Service(JsonObject gateway, string ns, string name, List<int> ports) => new()
    {
        ["apiVersion"] = "v1",
        ["kind"] = "Service",
        ["metadata"] = Metadata(DataPlaneName(name), ns, name, new JsonArray(OwnerReference(gateway, controller: true))),
        ["spec"] = new JsonObject
        {
            ["type"] = "LoadBalancer",
            ["selector"] = new JsonObject { [AppLabel] = AppValue, [GatewayNameLabel] = GatewayLabelValue(name) },

            // Port names are generated: listener names need not be valid port names (IANA_SVC_NAME, 15 characters).
            ["ports"] = new JsonArray([.. ports.Select(p => new JsonObject { ["name"] = $"tcp-{p}", ["port"] = p, ["targetPort"] = p, ["protocol"] = "TCP" })]),
        },
    };

    private static EquatableArray<GatewayAddress> AddressesOf(JsonObject service) =>
        [.. (service["status"]?["loadBalancer"]?["ingress"] as JsonArray ?? [])
            .OfType<JsonObject>()
            .Select(i => i["ip"]?.GetValue<string>() is { Length: > 0 } ip
                ? new GatewayAddress(GatewayAddress.IPAddressType, ip)
                : i["hostname"]?.GetValue<string>() is { Length: > 0 } hostname ? new GatewayAddress("Hostname", hostname) : null)
            .OfType<GatewayAddress>()];

    [GeneratedRegex("^[a-z]([-a-z0-9]*[a-z0-9])?$", RegexOptions.CultureInvariant)]
    private static partial Regex DnsLabelRegex();

    [LoggerMessage(1, LogLevel.Information, "Provisioned {Kind} {Name}")]
    private static partial void LogCreated(ILogger logger, string kind, string name);

    [LoggerMessage(2, LogLevel.Information, "Updated {Kind} {Name} to match its Gateway")]
    private static partial void LogUpdated(ILogger logger, string kind, string name);

    [LoggerMessage(3, LogLevel.Information, "Removed {Kind} {Name}: {Owner} is no longer ours")]
    private static partial void LogRemoved(ILogger logger, string kind, string name, string owner);

    [LoggerMessage(4, LogLevel.Warning, "{Kind} {Name} exists but was not made by this controller; leaving it alone, so its Gateway's data plane is not provisioned")]
    private static partial void LogNotOurs(ILogger logger, string kind, string name);

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
