using System.Text.Json.Nodes;
using FsmGateway.Resources;

namespace FsmGateway.Kubernetes.Mapping;

/// <summary>
/// The fields each kind we read has in its Kubernetes schema (Gateway API v1 standard and experimental channels for
/// our kinds, core v1 and discovery v1 for the others), so a misspelt field (<c>sectionNmae</c>) is reported, as
/// <c>kubectl apply</c>'s strict field validation does, instead of silently meaning "unset". Subtrees we do not read
/// (labels, annotations, status, TLS, Service fields other than ports) are accepted as they are.
/// </summary>
internal static class KnownFields
{
    private static readonly Schema Any = new(null, null);

    private static readonly Schema Metadata = Object(
        "name", "namespace", "labels", "annotations", "uid", "resourceVersion", "generation", "creationTimestamp",
        "deletionTimestamp", "deletionGracePeriodSeconds", "generateName", "finalizers", "ownerReferences",
        "managedFields", "selfLink");

    private static readonly Schema ParentRef = Object("group", "kind", "namespace", "name", "sectionName", "port");

    private static readonly Schema Selector = Object(
        ("matchLabels", Any),
        ("matchExpressions", List(Object("key", "operator", "values"))));

    private static readonly Schema GatewayClass = Top(Object(
        ("controllerName", Any),
        ("description", Any),
        ("parametersRef", Object("group", "kind", "name", "namespace"))));

    private static readonly Schema Gateway = Top(Object(
        ("gatewayClassName", Any),
        ("addresses", List(Object("type", "value"))),
        ("infrastructure", Any),
        ("backendTLS", Any),
        ("allowedListeners", Any),
        ("listeners", List(Object(
            ("name", Any),
            ("hostname", Any),
            ("port", Any),
            ("protocol", Any),
            ("tls", Any),
            ("allowedRoutes", Object(
                ("namespaces", Object(("from", Any), ("selector", Selector))),
                ("kinds", List(Object("group", "kind"))))))))));

    private static readonly Schema TcpRoute = Top(Object(
        ("parentRefs", List(ParentRef)),
        ("useDefaultGateways", Any),
        ("rules", List(Object(
            ("name", Any),
            ("backendRefs", List(Object("group", "kind", "namespace", "name", "port", "weight"))))))));

    private static readonly Schema ReferenceGrant = Top(Object(
        ("from", List(Object("group", "kind", "namespace"))),
        ("to", List(Object("group", "kind", "name")))));

    private static readonly Schema Service = Top(Object(
        ("ports", List(Object("name", "protocol", "appProtocol", "port", "targetPort", "nodePort"))),
        ("selector", Any), ("clusterIP", Any), ("clusterIPs", Any), ("type", Any), ("externalIPs", Any),
        ("sessionAffinity", Any), ("sessionAffinityConfig", Any), ("loadBalancerIP", Any),
        ("loadBalancerSourceRanges", Any), ("loadBalancerClass", Any), ("externalName", Any),
        ("externalTrafficPolicy", Any), ("internalTrafficPolicy", Any), ("healthCheckNodePort", Any),
        ("publishNotReadyAddresses", Any), ("ipFamilies", Any), ("ipFamilyPolicy", Any),
        ("allocateLoadBalancerNodePorts", Any), ("trafficDistribution", Any)));

    private static readonly Schema Namespace = Top(Any);

    private static readonly Schema EndpointSlice = Object(
        ("apiVersion", Any),
        ("kind", Any),
        ("metadata", Metadata),
        ("addressType", Any),
        ("ports", List(Object("name", "protocol", "port", "appProtocol"))),
        ("endpoints", List(Object(
            ("addresses", Any),
            ("conditions", Object("ready", "serving", "terminating")),
            ("hostname", Any),
            ("targetRef", Any),
            ("nodeName", Any),
            ("zone", Any),
            ("hints", Any),
            ("deprecatedTopology", Any)))));

    private static readonly Schema FsmHealthCheck = Object(
        ("interval", Any),
        ("maxFails", Any),
        ("failTimeout", Any),
        ("path", Any),
        ("matches", List(Object(("statusCodes", Any), ("body", Any), ("headers", List(Object("name", "value")))))));

    private static readonly Schema HealthCheckPolicy = Top(Object(
        ("targetRefs", List(Object("group", "kind", "name", "namespace"))),
        ("ports", List(Object(("port", Any), ("healthCheck", FsmHealthCheck)))),
        ("healthCheck", FsmHealthCheck)));

    private static readonly Schema BackendLbPolicy = Top(Object(
        ("targetRefs", List(Object("group", "kind", "name"))),
        ("algorithm", Any),
        ("sessionPersistence", Any)));

    private static readonly Schema Payload = Object("type", "text", "binary");

    private static readonly Schema BackendTrafficPolicy = Top(Object(
        ("targetRefs", List(Object("group", "kind", "name", "sectionName"))),
        ("loadBalancer", Object(
            ("type", Any),
            ("consistentHash", Object("type", "tableSize", "header", "headers", "cookie", "queryParams")),
            ("slowStart", Any))),
        ("healthCheck", Object(
            ("active", Object(
                ("type", Any),
                ("timeout", Any),
                ("interval", Any),
                ("unhealthyThreshold", Any),
                ("healthyThreshold", Any),
                ("http", Object("path", "expectedStatuses")),
                ("tcp", Object(("send", Payload), ("receive", Payload))))),
            ("passive", Object("consecutiveLocalOriginFailures", "interval", "baseEjectionTime", "maxEjectionPercent")),
            ("panicThreshold", Any))),
        ("circuitBreaker", Object(("maxConnections", Any), ("perEndpoint", Object("maxConnections")))),
        ("proxyProtocol", Object("version")),
        ("tcpKeepalive", Object("probes", "idleTime", "interval")),
        ("timeout", Object(("tcp", Object("connectTimeout"))))));

    private static readonly Schema LocalRef = Object("group", "kind", "name");

    private static readonly Schema ListenerFilter = Top(Object(
        ("type", Any),
        ("priority", Any),
        ("aspect", Any),
        ("targetRefs", List(Object("group", "kind", "name", "port"))),
        ("definitionRef", LocalRef),
        ("configRef", LocalRef)));

    private static readonly Schema Filter = Top(Object(("type", Any), ("definitionRef", LocalRef), ("configRef", LocalRef)));

    private static readonly Schema ConcurrencyLimit = Top(Object("maxConnections"));

    private static readonly Schema IPRestriction = Top(Object("allowed", "forbidden"));

    private static readonly Schema RouteRuleFilterPolicy = Top(Object(
        ("targetRefs", List(Object("group", "kind", "name", "rule"))),
        ("filterRefs", List(Object("group", "kind", "name", "priority")))));

    private static readonly Schema RateLimitPolicy = Top(Object(
        ("targetRef", Object("group", "kind", "name", "namespace")),
        ("ports", List(Object("port", "bps"))),
        ("bps", Any),
        ("hostnames", Any),
        ("http", Any),
        ("grpc", Any),
        ("config", Any)));

    private static readonly Schema Bandwidth = Object("bytesPerSecond", "burst");

    private static readonly Schema ClientTrafficPolicy = Top(Object(
        ("targetRefs", List(Object("group", "kind", "name", "sectionName"))),
        ("targetSelectors", Any),
        ("proxyProtocol", Object("optional")),
        ("enableProxyProtocol", Any),
        ("tcpKeepalive", Object("probes", "idleTime", "interval")),
        ("timeout", Object(
            ("tcp", Object("idleTimeout", "connectionInspectionTimeout", "halfClosedTimeout", "tlsHandshakeTimeout")),
            ("http", Any))),
        ("connection", Object(
            ("connectionLimit", Object("value", "closeDelay", "maxConnectionDuration")),
            ("bufferLimit", Any),
            ("maxConnectionDuration", Any),
            ("maxAcceptPerSocketEvent", Any))),
        ("bandwidthLimit", Object(("upload", Bandwidth), ("download", Bandwidth))),
        ("tls", Any), ("http1", Any), ("http2", Any), ("http3", Any), ("headers", Any), ("clientIPDetection", Any),
        ("path", Any), ("healthCheck", Any), ("earlyRequestHeaders", Any), ("scheme", Any)));

    /// <summary>The paths (<c>spec.parentRefs[0].sectionNmae</c>) of the fields of <paramref name="json"/> its kind's schema does not have.</summary>
    public static IEnumerable<string> Unknown(JsonObject json, ResourceKind kind)
    {
        var schema = kind switch
        {
            ResourceKind.GatewayClass => GatewayClass,
            ResourceKind.Gateway => Gateway,
            ResourceKind.TcpRoute => TcpRoute,
            ResourceKind.ReferenceGrant => ReferenceGrant,
            ResourceKind.Service => Service,
            ResourceKind.Namespace => Namespace,
            ResourceKind.EndpointSlice => EndpointSlice,
            ResourceKind.HealthCheckPolicy => HealthCheckPolicy,
            ResourceKind.BackendLbPolicy => BackendLbPolicy,
            ResourceKind.BackendTrafficPolicy => BackendTrafficPolicy,
            ResourceKind.ListenerFilter => ListenerFilter,
            ResourceKind.Filter => Filter,
            ResourceKind.ConcurrencyLimit => ConcurrencyLimit,
            ResourceKind.IPRestriction => IPRestriction,
            ResourceKind.RouteRuleFilterPolicy => RouteRuleFilterPolicy,
            ResourceKind.RateLimitPolicy => RateLimitPolicy,
            ResourceKind.ClientTrafficPolicy => ClientTrafficPolicy,
            _ => Any,
        };

        // Depth-first with an explicit stack; the tree is at most YamlToJson.MaxDepth deep, but no recursion is simpler still.
        var unknown = new List<string>();
        var pending = new Stack<(JsonNode Node, Schema Schema, string Path)>();
        pending.Push((json, schema, string.Empty));
        while (pending.TryPop(out var current))
        {
            switch (current.Node)
            {
                case JsonObject obj when current.Schema.Fields is { } fields:
                    foreach (var (name, value) in obj)
                    {
                        var path = current.Path.Length == 0 ? name : $"{current.Path}.{name}";
                        if (!fields.TryGetValue(name, out var child))
                        {
                            unknown.Add(path);
                        }
                        else if (value is not null)
                        {
                            pending.Push((value, child, path));
                        }
                    }

                    break;
                case JsonArray array when current.Schema.Items is { } items:
                    for (var i = 0; i < array.Count; i++)
                    {
                        if (array[i] is { } item)
                        {
                            pending.Push((item, items, $"{current.Path}[{i}]"));
                        }
                    }

                    break;
            }
        }

        unknown.Sort(StringComparer.Ordinal);
        return unknown;
    }

    private static Schema Top(Schema spec) => Object(("apiVersion", Any), ("kind", Any), ("metadata", Metadata), ("spec", spec), ("status", Any));

    private static Schema Object(params string[] names) => new(names.ToDictionary(static n => n, static _ => Any, StringComparer.Ordinal), null);

    private static Schema Object(params (string Name, Schema Schema)[] fields) => new(fields.ToDictionary(static f => f.Name, static f => f.Schema, StringComparer.Ordinal), null);

    private static Schema List(Schema items) => new(null, items);

    /// <summary>An object's fields, a list's items, or (neither) anything.</summary>
    private sealed record Schema(Dictionary<string, Schema>? Fields, Schema? Items);
}
