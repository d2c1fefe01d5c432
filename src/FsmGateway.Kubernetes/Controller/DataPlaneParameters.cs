using System.Globalization;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;

namespace FsmGateway.Kubernetes.Controller;

/// <summary>
/// What a Gateway's <c>spec.infrastructure.parametersRef</c> ConfigMap may set for its data plane, one key of
/// <c>data</c> each (all optional): <c>replicas</c> (a whole number, 1 to 100), <c>resources</c> (the container's
/// <c>requests</c>/<c>limits</c>, as YAML or JSON), <c>serviceType</c> (<c>LoadBalancer</c>, <c>NodePort</c> or
/// <c>ClusterIP</c>) and <c>externalTrafficPolicy</c> (<c>Cluster</c> or <c>Local</c>; not with <c>ClusterIP</c>).
/// Any other key is an error too, so a typo is reported rather than ignored.
/// </summary>
/// <param name="Replicas">The Deployment's replicas, or null for the controller's default.</param>
/// <param name="Resources">The container's resources, or null for the default requests.</param>
/// <param name="ServiceType">The Service's type, or null for LoadBalancer.</param>
/// <param name="ExternalTrafficPolicy">The Service's externalTrafficPolicy, or null for the API server's default.</param>
internal sealed record DataPlaneParameters(int? Replicas, V1ResourceRequirements? Resources, string? ServiceType, string? ExternalTrafficPolicy)
{
    public const string ReplicasKey = "replicas";
    public const string ResourcesKey = "resources";
    public const string ServiceTypeKey = "serviceType";
    public const string ExternalTrafficPolicyKey = "externalTrafficPolicy";
    public const int MaxReplicas = 100;

    /// <summary>No parameters: every default.</summary>
    public static DataPlaneParameters None { get; } = new(null, null, null, null);

    private static readonly string[] ServiceTypes = ["LoadBalancer", "NodePort", "ClusterIP"];
    private static readonly string[] TrafficPolicies = ["Cluster", "Local"];

    /// <summary>
    /// Reads the ConfigMap <paramref name="configMapName"/> (<c>namespace/name</c>, for messages) with
    /// <paramref name="data"/>; the errors name the ConfigMap and the field, and are empty when the parameters are valid.
    /// </summary>
    public static (DataPlaneParameters Parameters, IReadOnlyList<string> Errors) Read(string configMapName, JsonObject? data)
    {
        var errors = new List<string>();
        string Where(string key) => $"ConfigMap {configMapName}: data.{key}";
        int? replicas = null;
        V1ResourceRequirements? resources = null;
        string? serviceType = null, trafficPolicy = null;
        foreach (var (key, node) in data ?? [])
        {
            var text = node is JsonValue v && v.TryGetValue<string>(out var s) ? s.Trim() : null;
            if (text is null)
            {
                errors.Add($"{Where(key)}: is not a string");
                continue;
            }

            switch (key)
            {
                case ReplicasKey:
                    if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= MaxReplicas)
                    {
                        replicas = n;
                    }
                    else
                    {
                        errors.Add($"{Where(key)}: '{LogText.Escape(text)}' is not a whole number from 1 to {MaxReplicas}");
                    }

                    break;
                case ResourcesKey:
                    resources = ReadResources(text, Where(key), errors);
                    break;
                case ServiceTypeKey:
                    serviceType = OneOf(text, ServiceTypes, Where(key), errors);
                    break;
                case ExternalTrafficPolicyKey:
                    trafficPolicy = OneOf(text, TrafficPolicies, Where(key), errors);
                    break;
                default:
                    errors.Add($"{Where(key)}: unknown key (expected {ReplicasKey}, {ResourcesKey}, {ServiceTypeKey} or {ExternalTrafficPolicyKey})");
                    break;
            }
        }

        if (trafficPolicy is not null && serviceType == "ClusterIP")
        {
            errors.Add($"{Where(ExternalTrafficPolicyKey)}: only applies to a LoadBalancer or NodePort Service, not ClusterIP");
        }

        return (new DataPlaneParameters(replicas, resources, serviceType, trafficPolicy), errors);
    }

    private static string? OneOf(string text, string[] allowed, string where, List<string> errors)
    {
        if (allowed.Contains(text, StringComparer.Ordinal))
        {
            return text;
        }

        errors.Add($"{where}: '{LogText.Escape(text)}' is not one of {string.Join(", ", allowed)}");
        return null;
    }

    /// <summary>The container's resources: only <c>requests</c> and <c>limits</c>, each quantity valid, no request above its limit.</summary>
    private static V1ResourceRequirements? ReadResources(string text, string where, List<string> errors)
    {
        V1ResourceRequirements? resources;
        try
        {
            resources = KubernetesYaml.Deserialize<V1ResourceRequirements>(text, strict: true);
        }
        catch (Exception e) when (e is YamlDotNet.Core.YamlException or FormatException or ArgumentException or InvalidOperationException or OverflowException)
        {
            errors.Add($"{where}: not a resources object (requests and limits of quantities such as cpu: 500m, memory: 128Mi): {LogText.Escape(FirstLine(e))}");
            return null;
        }

        if (resources is null || resources.Claims is { Count: > 0 })
        {
            errors.Add($"{where}: only requests and limits may be set");
            return null;
        }

        var valid = true;
        foreach (var (part, quantities) in new (string, IDictionary<string, ResourceQuantity>?)[] { ("requests", resources.Requests), ("limits", resources.Limits) })
        {
            foreach (var (name, quantity) in quantities ?? new Dictionary<string, ResourceQuantity>())
            {
                if (quantity is null || !TryValue(quantity, out var value) || value < 0)
                {
                    errors.Add($"{where}: {part}.{name}: '{LogText.Escape(quantity?.ToString() ?? "null")}' is not a quantity");
                    valid = false;
                }
            }
        }

        foreach (var (name, request) in resources.Requests ?? new Dictionary<string, ResourceQuantity>())
        {
            if (resources.Limits?.TryGetValue(name, out var limit) == true && TryValue(request, out var r) && TryValue(limit, out var l) && r > l)
            {
                errors.Add($"{where}: requests.{name} ({request}) is more than limits.{name} ({limit})");
                valid = false;
            }
        }

        return valid ? resources : null;
    }

    private static bool TryValue(ResourceQuantity quantity, out decimal value)
    {
        try
        {
            value = quantity.ToDecimal();
            return true;
        }
        catch (Exception e) when (e is FormatException or ArgumentException or OverflowException or InvalidOperationException)
        {
            value = 0;
            return false;
        }
    }

    /// <summary>The innermost cause's message (the YAML reader wraps it in "Exception during deserialization"), first line.</summary>
    private static string FirstLine(Exception e) => e.GetBaseException().Message.Split('\n')[0];
}
