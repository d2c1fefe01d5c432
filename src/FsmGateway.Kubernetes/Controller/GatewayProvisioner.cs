using System.Text.Json.Nodes;
using FsmGateway.Kubernetes.Api;
using FsmGateway.Resources;
using FsmGateway.Status;
using k8s;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Kubernetes.Controller;

/// <summary>
/// For each accepted Gateway, the data plane that serves it, in the Gateway's namespace: a Deployment running
/// <c>fsm-gateway gateway --gateway ns/name</c> and a Service of type LoadBalancer labelled <c>app: fsm-gateway</c>
/// exposing the listener ports, both owned by the Gateway (deleting it deletes them), plus the ServiceAccount the pods
/// run as and its binding to the read-only <c>fsm-gateway-dataplane</c> ClusterRole. The pods read their Gateway's
/// config from the API server themselves. Objects are patched only when they differ from what is wanted; the
/// Gateway's addresses are read from its Service's load-balancer ingress.
/// </summary>
internal sealed partial class GatewayProvisioner(IKubernetes client, ApiObjects api, ProvisioningOptions options, ILogger logger)
{
    /// <summary>The label every provisioned object carries, with the value <see cref="ManagedByValue"/>.</summary>
    public const string ManagedByLabel = "app.kubernetes.io/managed-by";

    public const string ManagedByValue = "fsm-gateway-controller";

    /// <summary>The label FSM's guide selects the Service by: <c>kubectl get svc -l app=fsm-gateway</c>.</summary>
    public const string AppLabel = "app";

    public const string AppValue = "fsm-gateway";

    public const string GatewayNameLabel = "gateway.networking.k8s.io/gateway-name";

    public const string ServiceAccountName = "fsm-gateway";

    public const int AdminPort = 9901;

    private string? _gatewayVersion;

    /// <summary>Brings every accepted Gateway's data plane to what it should be; returns each Gateway's addresses.</summary>
    public async Task<IReadOnlyDictionary<ResourceKey, EquatableArray<GatewayAddress>>> ReconcileAsync(StatusSet statuses, CancellationToken cancellationToken)
    {
        var addresses = new Dictionary<ResourceKey, EquatableArray<GatewayAddress>>();
        var accepted = statuses.Gateways
            .Where(g => g.Value.Conditions.Any(c => c.Type == ConditionTypes.Accepted && c.Status == ConditionStatus.True))
            .Select(g => g.Key)
            .ToList();
        _gatewayVersion ??= await ApiDiscovery.ServedVersionAsync(client, ApiKind.Gateway, cancellationToken).ConfigureAwait(false);
        if (_gatewayVersion is null)
        {
            return addresses;
        }

        var gatewayResource = new ApiResource(ApiKind.Gateway.Group, _gatewayVersion, ApiKind.Gateway.Plural, ApiKind.Gateway.ApiKindName, Namespaced: true);
        var gateways = new List<JsonObject>();
        foreach (var key in accepted)
        {
            if (await api.GetAsync(gatewayResource, key.Namespace, key.Name, cancellationToken).ConfigureAwait(false) is { } gateway)
            {
                gateways.Add(gateway);
            }
        }

        foreach (var byNamespace in gateways.GroupBy(g => g["metadata"]!["namespace"]!.GetValue<string>()))
        {
            var owners = new JsonArray([.. byNamespace.Select(g => OwnerReference(g, controller: false))]);
            await EnsureAsync(ApiResource.ServiceAccount, byNamespace.Key, ServiceAccount(byNamespace.Key, owners), cancellationToken).ConfigureAwait(false);
            await EnsureAsync(ApiResource.ClusterRoleBinding, null, DataPlaneBinding(byNamespace.Key), cancellationToken).ConfigureAwait(false);
        }

        foreach (var gateway in gateways)
        {
            var ns = gateway["metadata"]!["namespace"]!.GetValue<string>();
            var name = gateway["metadata"]!["name"]!.GetValue<string>();
            var ports = ListenerPorts(gateway);
            await EnsureAsync(ApiResource.Deployment, ns, Deployment(gateway, ns, name, ports), cancellationToken).ConfigureAwait(false);
            var service = await EnsureAsync(ApiResource.Service, ns, Service(gateway, ns, name, ports), cancellationToken).ConfigureAwait(false);
            addresses[new ResourceKey(ResourceKind.Gateway, ns, name)] = AddressesOf(service);
        }

        await RemoveUnusedAsync(gateways, cancellationToken).ConfigureAwait(false);
        return addresses;
    }

    /// <summary>
    /// Deletes what was provisioned for Gateways that are no longer accepted (a deleted Gateway's objects go with it
    /// through their owner references), and the data-plane bindings of namespaces left with no Gateway.
    /// </summary>
    private async Task RemoveUnusedAsync(List<JsonObject> gateways, CancellationToken cancellationToken)
    {
        var wanted = gateways.Select(g => (Ns: g["metadata"]!["namespace"]!.GetValue<string>(), Name: DataPlaneName(g["metadata"]!["name"]!.GetValue<string>()))).ToHashSet();
        var selector = $"{ManagedByLabel}={ManagedByValue}";
        foreach (var resource in (ApiResource[])[ApiResource.Deployment, ApiResource.Service])
        {
            foreach (var item in await api.ListAsync(resource, selector, cancellationToken).ConfigureAwait(false))
            {
                var ns = item["metadata"]!["namespace"]!.GetValue<string>();
                var name = item["metadata"]!["name"]!.GetValue<string>();
                if (!wanted.Contains((ns, name)) && await api.DeleteAsync(resource, ns, name, cancellationToken).ConfigureAwait(false))
                {
                    LogRemoved(logger, resource.Kind, $"{ns}/{name}");
                }
            }
        }

        var namespaces = wanted.Select(w => w.Ns).ToHashSet();
        foreach (var binding in await api.ListAsync(ApiResource.ClusterRoleBinding, selector, cancellationToken).ConfigureAwait(false))
        {
            var name = binding["metadata"]!["name"]!.GetValue<string>();
            var ns = binding["subjects"]?[0]?["namespace"]?.GetValue<string>();
            if (ns is not null && !namespaces.Contains(ns) && await api.DeleteAsync(ApiResource.ClusterRoleBinding, null, name, cancellationToken).ConfigureAwait(false))
            {
                LogRemoved(logger, ApiResource.ClusterRoleBinding.Kind, name);
            }
        }
    }

    /// <summary>Creates the object, or merge-patches it when it lacks part of what is wanted; returns it as it is now.</summary>
    private async Task<JsonObject> EnsureAsync(ApiResource resource, string? ns, JsonObject desired, CancellationToken cancellationToken)
    {
        var name = desired["metadata"]!["name"]!.GetValue<string>();
        var current = await api.GetAsync(resource, ns, name, cancellationToken).ConfigureAwait(false);
        if (current is null)
        {
            try
            {
                var created = await api.CreateAsync(resource, ns, desired, cancellationToken).ConfigureAwait(false);
                LogCreated(logger, resource.Kind, ns is null ? name : $"{ns}/{name}");
                return created;
            }
            catch (Exception e) when (ApiObjects.IsConflict(e))
            {
                // Created meanwhile (another replica that was leader a moment ago); patch it below.
                current = await api.GetAsync(resource, ns, name, cancellationToken).ConfigureAwait(false) ?? throw new InvalidOperationException($"{resource.Kind} {name} exists but cannot be read", e);
            }
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
        LogUpdated(logger, resource.Kind, ns is null ? name : $"{ns}/{name}");
        return patched;
    }

    private static string DataPlaneName(string gatewayName) => $"fsm-gateway-{gatewayName}";

    /// <summary>The metadata of a Gateway's Deployment and Service: named after it, labelled, owned by it.</summary>
    private static JsonObject DataPlaneMetadata(JsonObject gateway, string ns, string name) => new()
    {
        ["name"] = DataPlaneName(name),
        ["namespace"] = ns,
        ["labels"] = Labels(name),
        ["ownerReferences"] = new JsonArray(OwnerReference(gateway, controller: true)),
    };

    private static JsonObject OwnerReference(JsonObject gateway, bool controller) => new()
    {
        ["apiVersion"] = gateway["apiVersion"]!.GetValue<string>(),
        ["kind"] = "Gateway",
        ["name"] = gateway["metadata"]!["name"]!.GetValue<string>(),
        ["uid"] = gateway["metadata"]!["uid"]!.GetValue<string>(),
        ["controller"] = controller,
    };

    private static JsonObject Labels(string? gatewayName)
    {
        var labels = new JsonObject { [ManagedByLabel] = ManagedByValue };
        if (gatewayName is not null)
        {
            labels[AppLabel] = AppValue;
            labels[GatewayNameLabel] = gatewayName;
        }

        return labels;
    }

    /// <summary>The distinct listener ports in spec order, each with the first listener's name.</summary>
    private static List<(string Name, int Port)> ListenerPorts(JsonObject gateway) =>
        [.. (gateway["spec"]?["listeners"] as JsonArray ?? [])
            .OfType<JsonObject>()
            .Select(l => (Name: l["name"]?.GetValue<string>() ?? "listener", Port: l["port"]?.GetValue<int>() ?? 0))
            .Where(l => l.Port is > 0 and <= 65535)
            .DistinctBy(l => l.Port)];

    private static JsonObject ServiceAccount(string ns, JsonArray owners) => new()
    {
        ["apiVersion"] = "v1",
        ["kind"] = "ServiceAccount",
        ["metadata"] = new JsonObject
        {
            ["name"] = ServiceAccountName,
            ["namespace"] = ns,
            ["labels"] = Labels(null),
            ["ownerReferences"] = owners,
        },
    };

    private JsonObject DataPlaneBinding(string ns) => new()
    {
        ["apiVersion"] = "rbac.authorization.k8s.io/v1",
        ["kind"] = "ClusterRoleBinding",
        ["metadata"] = new JsonObject { ["name"] = $"fsm-gateway-dataplane-{ns}", ["labels"] = Labels(null) },
        ["roleRef"] = new JsonObject { ["apiGroup"] = "rbac.authorization.k8s.io", ["kind"] = "ClusterRole", ["name"] = options.DataPlaneClusterRole },
        ["subjects"] = new JsonArray(new JsonObject { ["kind"] = "ServiceAccount", ["name"] = ServiceAccountName, ["namespace"] = ns }),
    };

    private JsonObject Deployment(JsonObject gateway, string ns, string name, List<(string Name, int Port)> ports)
    {
        var selector = new JsonObject { [AppLabel] = AppValue, [GatewayNameLabel] = name };
        var containerPorts = new JsonArray([.. ports.Select(p => new JsonObject { ["name"] = PortName(p.Name), ["containerPort"] = p.Port, ["protocol"] = "TCP" })]);
        containerPorts.Add(new JsonObject { ["name"] = "admin", ["containerPort"] = AdminPort, ["protocol"] = "TCP" });
        var capabilities = new JsonObject { ["drop"] = new JsonArray("ALL") };
        if (ports.Any(p => p.Port < 1024))
        {
            // Listeners below 1024 need the one capability that binds them, and nothing else.
            capabilities["add"] = new JsonArray("NET_BIND_SERVICE");
        }

        return new JsonObject
        {
            ["apiVersion"] = "apps/v1",
            ["kind"] = "Deployment",
            ["metadata"] = DataPlaneMetadata(gateway, ns, name),
            ["spec"] = new JsonObject
            {
                ["replicas"] = options.Replicas,
                ["selector"] = new JsonObject { ["matchLabels"] = selector.DeepClone() },
                ["template"] = new JsonObject
                {
                    ["metadata"] = new JsonObject { ["labels"] = Labels(name) },
                    ["spec"] = new JsonObject
                    {
                        ["serviceAccountName"] = ServiceAccountName,
                        ["securityContext"] = new JsonObject
                        {
                            ["runAsNonRoot"] = true,
                            ["seccompProfile"] = new JsonObject { ["type"] = "RuntimeDefault" },
                        },
                        ["containers"] = new JsonArray(new JsonObject
                        {
                            ["name"] = "gateway",
                            ["image"] = options.Image,
                            ["args"] = new JsonArray("gateway", "--gateway", $"{ns}/{name}", "--admin-address", "0.0.0.0", "--admin-port", AdminPort.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                            ["ports"] = containerPorts,
                            ["readinessProbe"] = new JsonObject { ["httpGet"] = new JsonObject { ["path"] = "/readyz", ["port"] = AdminPort } },
                            ["livenessProbe"] = new JsonObject { ["httpGet"] = new JsonObject { ["path"] = "/healthz", ["port"] = AdminPort } },
                            ["securityContext"] = new JsonObject
                            {
                                ["allowPrivilegeEscalation"] = false,
                                ["readOnlyRootFilesystem"] = true,
                                ["capabilities"] = capabilities,
                            },
                        }),
                    },
                },
            },
        };
    }

    private static JsonObject Service(JsonObject gateway, string ns, string name, List<(string Name, int Port)> ports) => new()
    {
        ["apiVersion"] = "v1",
        ["kind"] = "Service",
        ["metadata"] = DataPlaneMetadata(gateway, ns, name),
        ["spec"] = new JsonObject
        {
            ["type"] = "LoadBalancer",
            ["selector"] = new JsonObject { [AppLabel] = AppValue, [GatewayNameLabel] = name },
            ["ports"] = new JsonArray([.. ports.Select(p => new JsonObject { ["name"] = PortName(p.Name), ["port"] = p.Port, ["targetPort"] = p.Port, ["protocol"] = "TCP" })]),
        },
    };

    /// <summary>A port name is a DNS label of at most 15 characters; listener names may be longer.</summary>
    private static string PortName(string listenerName) =>
        listenerName.Length <= 15 ? listenerName : listenerName[..15].TrimEnd('-');

    private static EquatableArray<GatewayAddress> AddressesOf(JsonObject service) =>
        [.. (service["status"]?["loadBalancer"]?["ingress"] as JsonArray ?? [])
            .OfType<JsonObject>()
            .Select(i => i["ip"]?.GetValue<string>() is { Length: > 0 } ip
                ? new GatewayAddress(GatewayAddress.IPAddressType, ip)
                : i["hostname"]?.GetValue<string>() is { Length: > 0 } hostname ? new GatewayAddress("Hostname", hostname) : null)
            .OfType<GatewayAddress>()];

    [LoggerMessage(1, LogLevel.Information, "Provisioned {Kind} {Name}")]
    private static partial void LogCreated(ILogger logger, string kind, string name);

    [LoggerMessage(2, LogLevel.Information, "Updated {Kind} {Name} to match its Gateway")]
    private static partial void LogUpdated(ILogger logger, string kind, string name);

    [LoggerMessage(3, LogLevel.Information, "Removed {Kind} {Name}: its Gateway is no longer accepted")]
    private static partial void LogRemoved(ILogger logger, string kind, string name);
}
