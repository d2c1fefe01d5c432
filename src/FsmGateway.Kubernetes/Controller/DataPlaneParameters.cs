using System.Globalization;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace FsmGateway.Kubernetes.Controller;

/// <summary>
/// What a Gateway's <c>spec.infrastructure.parametersRef</c> ConfigMap may set for its data plane: in FSM's layout,
/// the same fields under <c>fsm.gateway</c> of Helm values in <c>data["values.yaml"]</c> (see ReadValuesYaml); in
/// FsmGateway's own flat layout, one key of <c>data</c> each (all optional): <c>replicas</c> (a whole number, 1 to 100), <c>resources</c> (the container's
/// <c>requests</c>/<c>limits</c>, as YAML or JSON), <c>serviceType</c> (<c>LoadBalancer</c>, <c>NodePort</c> or
/// <c>ClusterIP</c>) and <c>externalTrafficPolicy</c> (<c>Cluster</c> or <c>Local</c>; not with <c>ClusterIP</c>).
/// In the flat layout any other key is an error, so a typo is reported rather than ignored.
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

    /// <summary>FSM's key: Helm values of its gateway chart, of which <c>fsm.gateway.*</c> are read.</summary>
    public const string ValuesYamlKey = "values.yaml";
    public const int MaxReplicas = 100;

    /// <summary>No parameters: every default.</summary>
    public static DataPlaneParameters None { get; } = new(null, null, null, null);

    private static readonly string[] ServiceTypes = ["LoadBalancer", "NodePort", "ClusterIP"];
    private static readonly string[] TrafficPolicies = ["Cluster", "Local"];

    /// <summary>
    /// Reads the ConfigMap <paramref name="configMapName"/> (<c>namespace/name</c>, for messages) with
    /// <paramref name="data"/>, in FSM's layout (one key <c>values.yaml</c>, see <see cref="ValuesYamlKey"/>) or in
    /// FsmGateway's flat keys; the errors name the ConfigMap and the field, and are empty when the parameters are valid.
    /// </summary>
    public static (DataPlaneParameters Parameters, IReadOnlyList<string> Errors) Read(string configMapName, JsonObject? data)
    {
        var errors = new List<string>();
        var fields = new Fields();
        if (data?.ContainsKey(ValuesYamlKey) == true)
        {
            ReadValuesYaml(configMapName, data, fields, errors);
            return (fields.Finish(errors), errors);
        }

        foreach (var (key, node) in data ?? [])
        {
            var where = $"ConfigMap {configMapName}: data.{key}";
            var text = node is JsonValue v && v.TryGetValue<string>(out var s) ? s.Trim() : null;
            if (text is null)
            {
                errors.Add($"{where}: is not a string");
            }
            else if (!fields.Set(key, text, where, errors))
            {
                errors.Add($"{where}: unknown key (expected {ValuesYamlKey}, or {ReplicasKey}, {ResourcesKey}, {ServiceTypeKey} or {ExternalTrafficPolicyKey})");
            }
        }

        return (fields.Finish(errors), errors);
    }

    /// <summary>
    /// FSM's layout (flomesh-io/fsm <c>pkg/controllers/gateway/v1/gateway_controller.go</c>, resolveParameterValues):
    /// <c>data["values.yaml"]</c> holds Helm values of FSM's gateway chart (<c>charts/gateway/values.yaml</c>), of
    /// which FsmGateway maps <c>fsm.gateway.replicas</c>, <c>.resources</c>, <c>.serviceType</c> and its own
    /// <c>.externalTrafficPolicy</c>. Every other value is ignored, as FSM's chart ignores values it does not use;
    /// other keys of <c>data</c> are ignored too, as FSM does, except FsmGateway's flat keys, which may not be mixed in.
    /// </summary>
    private static void ReadValuesYaml(string configMapName, JsonObject data, Fields fields, List<string> errors)
    {
        var where = $"ConfigMap {configMapName}: data.{ValuesYamlKey}";
        foreach (var key in data.Select(p => p.Key).Where(k => k is ReplicasKey or ResourcesKey or ServiceTypeKey or ExternalTrafficPolicyKey))
        {
            errors.Add($"ConfigMap {configMapName}: data.{key}: may not be set next to data.{ValuesYamlKey} (set fsm.gateway.{key} in {ValuesYamlKey})");
        }

        if (data[ValuesYamlKey] is not JsonValue value || !value.TryGetValue<string>(out var text))
        {
            errors.Add($"{where}: is not a string");
            return;
        }

        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            errors.Add($"{where}: not YAML: {LogText.Escape(FirstLine(e))}");
            return;
        }

        YamlNode? node = stream.Documents.Count == 0 ? null : stream.Documents[0].RootNode;
        var path = string.Empty;
        foreach (var step in new[] { "fsm", "gateway" })
        {
            if (node is null || node is YamlScalarNode { Value: null or "" or "~" or "null" })
            {
                return; // nothing under fsm.gateway: every default, as in FSM
            }

            if (node is not YamlMappingNode mapping)
            {
                errors.Add($"{where}: {(path.Length == 0 ? "the document" : path)}: is not a mapping");
                return;
            }

            path = path.Length == 0 ? step : $"{path}.{step}";
            node = mapping.Children.TryGetValue(new YamlScalarNode(step), out var child) ? child : null;
        }

        if (node is null || node is YamlScalarNode { Value: null or "" or "~" or "null" })
        {
            return;
        }

        if (node is not YamlMappingNode gateway)
        {
            errors.Add($"{where}: fsm.gateway: is not a mapping");
            return;
        }

        foreach (var (keyNode, field) in gateway.Children)
        {
            if (keyNode is not YamlScalarNode { Value: ReplicasKey or ResourcesKey or ServiceTypeKey or ExternalTrafficPolicyKey } key)
            {
                continue;
            }

            var fieldWhere = $"{where}: fsm.gateway.{key.Value}";
            if (key.Value == ResourcesKey)
            {
                if (field is not YamlMappingNode)
                {
                    errors.Add($"{fieldWhere}: only requests and limits may be set");
                    continue;
                }

                using var writer = new StringWriter(CultureInfo.InvariantCulture);
                new YamlStream(new YamlDocument(field)).Save(writer, assignAnchors: false);
                fields.Set(key.Value, writer.ToString(), fieldWhere, errors);
            }
            else if (field is YamlScalarNode { Value: { } scalar })
            {
                fields.Set(key.Value!, scalar.Trim(), fieldWhere, errors);
            }
            else
            {
                errors.Add($"{fieldWhere}: is not a scalar");
            }
        }
    }

    /// <summary>The fields read so far, from either layout; <c>where</c> names the ConfigMap and the field for errors.</summary>
    private sealed class Fields
    {
        private int? _replicas;
        private V1ResourceRequirements? _resources;
        private string? _serviceType, _trafficPolicy, _trafficPolicyWhere;

        /// <summary>Sets field <paramref name="key"/>; false if it is no field.</summary>
        public bool Set(string key, string text, string where, List<string> errors)
        {
            switch (key)
            {
                case ReplicasKey:
                    if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= MaxReplicas)
                    {
                        _replicas = n;
                    }
                    else
                    {
                        errors.Add($"{where}: '{LogText.Escape(text)}' is not a whole number from 1 to {MaxReplicas}");
                    }

                    return true;
                case ResourcesKey:
                    _resources = ReadResources(text, where, errors);
                    return true;
                case ServiceTypeKey:
                    _serviceType = OneOf(text, ServiceTypes, where, errors);
                    return true;
                case ExternalTrafficPolicyKey:
                    _trafficPolicy = OneOf(text, TrafficPolicies, where, errors);
                    _trafficPolicyWhere = where;
                    return true;
                default:
                    return false;
            }
        }

        public DataPlaneParameters Finish(List<string> errors)
        {
            if (_trafficPolicy is not null && _serviceType == "ClusterIP")
            {
                errors.Add($"{_trafficPolicyWhere}: only applies to a LoadBalancer or NodePort Service, not ClusterIP");
            }

            return new DataPlaneParameters(_replicas, _resources, _serviceType, _trafficPolicy);
        }
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
        catch (Exception e) when (e is YamlException or FormatException or ArgumentException or InvalidOperationException or OverflowException)
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
