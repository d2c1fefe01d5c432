using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using FsmGateway.Resources;
using FsmGateway.Status;

namespace FsmGateway.Routing;

/// <summary>
/// The stable JSON form of a <see cref="CompilationResult"/>, as the offline compiler prints it and snapshot tests
/// store it: <c>{"resources":[...],"routingTable":{...},"diagnostics":[...]}</c>. Every object and list is in a fixed
/// order and no clock appears (no <c>lastTransitionTime</c>), so the same result always prints the same bytes.
/// </summary>
public static class CompilationResultJson
{
    private static readonly JsonSerializerOptions Indented = new()
    {
        WriteIndented = true,
        IndentSize = 2,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Formats <paramref name="result"/> as indented JSON text.</summary>
    /// <param name="result">The compilation result.</param>
    /// <returns>The JSON text, ending without a newline.</returns>
    public static string ToJson(CompilationResult result) => ToJsonNode(result).ToJsonString(Indented);

    /// <summary>Builds the JSON tree of <paramref name="result"/>.</summary>
    /// <param name="result">The compilation result.</param>
    /// <returns>A new JSON object.</returns>
    public static JsonObject ToJsonNode(CompilationResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var resources = new JsonArray();
        foreach (var (key, status) in result.Statuses.GatewayClasses)
        {
            resources.Add((JsonNode)Resource(result, key, StatusJson.GatewayClass(status)));
        }

        foreach (var (key, status) in result.Statuses.Gateways)
        {
            resources.Add((JsonNode)Resource(result, key, GatewayStatusJson(status)));
        }

        foreach (var (key, status) in result.Statuses.Routes)
        {
            resources.Add((JsonNode)Resource(result, key, RouteStatusJson(status)));
        }

        foreach (var (key, status) in result.Statuses.Policies)
        {
            resources.Add((JsonNode)Resource(result, key, StatusJson.Policy(status)));
        }

        foreach (var (key, status) in result.Statuses.Conditions)
        {
            resources.Add((JsonNode)Resource(result, key, StatusJson.Conditions(status)));
        }

        return new JsonObject
        {
            ["resources"] = resources,
            ["routingTable"] = TableJson(result.Table),
            ["diagnostics"] = new JsonArray([.. result.Diagnostics.Select(DiagnosticJson)]),
        };
    }

    /// <summary>The Kubernetes <c>status</c> object of a Gateway.</summary>
    /// <param name="status">The status.</param>
    /// <returns>A new JSON object.</returns>
    public static JsonObject GatewayStatusJson(GatewayStatus status) => StatusJson.Gateway(status);

    /// <summary>The Kubernetes <c>status</c> object of a route.</summary>
    /// <param name="status">The status.</param>
    /// <returns>A new JSON object.</returns>
    public static JsonObject RouteStatusJson(RouteStatus status) => StatusJson.Route(status);

    private static JsonObject Resource(CompilationResult result, ResourceKey key, JsonObject status)
    {
        var metadata = new JsonObject();
        if (key.Namespace.Length > 0)
        {
            metadata["namespace"] = key.Namespace;
        }

        metadata["name"] = key.Name;
        return new JsonObject
        {
            ["apiVersion"] = PolicyApi.ApiVersionOf(key.Kind) ?? result.RouteApiVersions.GetValueOrDefault(key, GatewayApi.Group + "/v1"),
            ["kind"] = ResourceKey.KindName(key.Kind),
            ["metadata"] = metadata,
            ["status"] = status,
        };
    }

    private static JsonObject TableJson(RoutingTable table) => new()
    {
        ["listeners"] = new JsonArray([.. table.Listeners.Select(ListenerJson)]),
    };

    private static JsonObject ListenerJson(ListenerRoute l)
    {
        var json = new JsonObject
        {
            ["port"] = l.Port,
            ["addresses"] = new JsonArray([.. l.Addresses.Select(static a => JsonValue.Create(a))]),
            ["gateway"] = $"{l.Gateway.Namespace}/{l.Gateway.Name}",
            ["listener"] = l.ListenerName,
            ["route"] = l.Route is { } route ? $"{route.Namespace}/{route.Name}" : null,
            ["totalWeight"] = l.TotalWeight,
            ["rejectedWeight"] = l.RejectedWeight,
            ["backends"] = new JsonArray([.. l.Backends.Select(BackendJson)]),
        };

        // Only when a policy reaches the listener: without one, every listener has ClientPolicy.Default.
        if (!l.Client.Sources.IsEmpty)
        {
            json["client"] = ClientJson(l.Client);
        }

        return json;
    }

    /// <summary>
    /// The effective client policy, every field shown so the output says what the transport does: <c>null</c> or
    /// <c>"global"</c> for what the gateway's global settings decide.
    /// </summary>
    private static JsonObject ClientJson(ClientPolicy policy)
    {
        var json = new JsonObject
        {
            ["sources"] = new JsonArray([.. policy.Sources.Select(static s => JsonValue.Create(s.ToString()))]),
            ["proxyProtocol"] = policy.ProxyProtocol is { } pp
                ? new JsonObject { ["optional"] = pp.Optional, ["inspectionTimeout"] = Duration(pp.InspectionTimeout) }
                : null,
            ["tcpKeepalive"] = policy.TcpKeepalive is { } keepalive
                ? new JsonObject
                {
                    ["probes"] = keepalive.Probes,
                    ["idleTime"] = keepalive.IdleTime is { } idle ? Duration(idle) : null,
                    ["interval"] = keepalive.Interval is { } interval ? Duration(interval) : null,
                }
                : null,
            ["idleTimeout"] = policy.IdleTimeout is { } idleTimeout ? Duration(idleTimeout) : "global",
            ["halfClosedTimeout"] = policy.HalfClosedTimeout is { } halfClosed ? Duration(halfClosed) : "global",
            ["maxConnectionDuration"] = policy.MaxConnectionDuration is { } duration ? Duration(duration) : "global",
            ["connectionLimit"] = policy.ConnectionLimit is { } limit
                ? new JsonObject { ["max"] = limit.Max, ["closeDelay"] = limit.CloseDelay is { } delay ? Duration(delay) : null }
                : null,
            ["bufferLimit"] = policy.BufferLimit is { } buffer ? JsonValue.Create(buffer) : JsonValue.Create("global"),
            ["uploadBandwidth"] = Bandwidth(policy.UploadBandwidth),
            ["downloadBandwidth"] = Bandwidth(policy.DownloadBandwidth),
            ["listenerFilters"] = new JsonArray([.. policy.ListenerFilters.Select(FilterJson)]),
            ["routeFilters"] = new JsonArray([.. policy.RouteFilters.Select(FilterJson)]),
        };
        return json;
    }

    private static JsonObject? Bandwidth(BandwidthLimit? limit) =>
        limit is null ? null : new JsonObject { ["bytesPerSecond"] = limit.BytesPerSecond, ["burst"] = limit.Burst };

    private static JsonObject FilterJson(ConnectionFilter filter)
    {
        var json = new JsonObject
        {
            ["type"] = filter.Type.ToString(),
            ["priority"] = filter.Priority,
            ["source"] = filter.Source.ToString(),
            ["filter"] = filter.Filter.ToString(),
            ["config"] = filter.Config.ToString(),
        };
        if (filter.Type == ConnectionFilterType.ConcurrencyLimit)
        {
            json["maxConnections"] = filter.MaxConnections;
        }
        else
        {
            json["allowed"] = new JsonArray([.. filter.Allowed.Select(static a => JsonValue.Create(a))]);
            json["forbidden"] = new JsonArray([.. filter.Forbidden.Select(static a => JsonValue.Create(a))]);
        }

        return json;
    }

    private static JsonObject BackendJson(RouteBackend backend)
    {
        var json = new JsonObject
        {
            ["service"] = $"{backend.Namespace}/{backend.Name}",
            ["port"] = backend.Port,
            ["weight"] = backend.Weight,
            ["endpoints"] = new JsonArray([.. backend.Endpoints.Select(static e => JsonValue.Create(e.ToString()))]),
        };
        // Only when the compile did not list endpoints (a controller's): the backend has ready ones all the same.
        if (backend.ReadyEndpointsOmitted)
        {
            json["readyEndpointsOmitted"] = true;
        }

        if (backend.Problem is { } problem)
        {
            json["problem"] = new JsonObject { ["reason"] = problem.Reason, ["message"] = problem.Message };
        }

        // Only when a policy reaches the backend: without one, every backend has BackendPolicy.Default.
        if (!backend.Policy.Sources.IsEmpty)
        {
            json["policy"] = PolicyJson(backend.Policy);
        }

        return json;
    }

    /// <summary>
    /// The effective backend policy, every field shown so the output says what the transport does: <c>null</c> for no
    /// limit, no PROXY header or keepalive, or the global connect timeout; <c>"global"</c> for the gateway's own passive
    /// health and panic settings.
    /// </summary>
    private static JsonObject PolicyJson(BackendPolicy policy)
    {
        var json = new JsonObject
        {
            ["sources"] = new JsonArray([.. policy.Sources.Select(static s => JsonValue.Create(s.ToString()))]),
            ["loadBalancer"] = policy.LoadBalancer.ToString(),
        };
        if (policy.LoadBalancer == LoadBalancerAlgorithm.ConsistentHashSourceIP)
        {
            json["tableSize"] = policy.ConsistentHashTableSize;
        }

        if (policy.ActiveHealthCheck is { } active)
        {
            var check = new JsonObject
            {
                ["protocol"] = active.Protocol.ToString(),
                ["interval"] = Duration(active.Interval),
                ["timeout"] = Duration(active.Timeout),
                ["unhealthyThreshold"] = active.UnhealthyThreshold,
                ["healthyThreshold"] = active.HealthyThreshold,
            };
            if (active.HttpPath is { } path)
            {
                check["path"] = path;
            }

            if (!active.HttpMatches.IsEmpty)
            {
                check["matches"] = new JsonArray([.. active.HttpMatches.Select(static m =>
                {
                    var match = new JsonObject();
                    if (!m.StatusCodes.IsEmpty)
                    {
                        match["statusCodes"] = new JsonArray([.. m.StatusCodes.Select(static c => JsonValue.Create(c))]);
                    }

                    if (m.Body is { } body)
                    {
                        match["body"] = body;
                    }

                    if (!m.Headers.IsEmpty)
                    {
                        match["headers"] = new JsonArray([.. m.Headers.Select(static h => new JsonObject { ["name"] = h.Name, ["value"] = h.Value })]);
                    }

                    return match;
                })]);
            }

            if (!active.TcpSend.IsEmpty)
            {
                check["send"] = Convert.ToHexString(active.TcpSend.Items.AsSpan());
            }

            if (!active.TcpReceive.IsEmpty)
            {
                check["receive"] = Convert.ToHexString(active.TcpReceive.Items.AsSpan());
            }

            json["activeHealthCheck"] = check;
        }

        json["passiveHealthCheck"] = policy.PassiveHealthCheck is { } passive
            ? (JsonNode)new JsonObject
            {
                ["consecutiveFailures"] = passive.ConsecutiveFailures,
                ["interval"] = Duration(passive.Interval),
                ["baseEjectionTime"] = Duration(passive.BaseEjectionTime),
                ["maxEjectionPercent"] = passive.MaxEjectionPercent,
            }
            : JsonValue.Create("global");
        json["panicThresholdPercent"] = policy.PanicThresholdPercent is { } panic ? JsonValue.Create(panic) : JsonValue.Create("global");
        json["maxConnections"] = policy.MaxConnections;
        json["maxConnectionsPerEndpoint"] = policy.MaxConnectionsPerEndpoint;
        json["proxyProtocol"] = policy.ProxyProtocol?.ToString();
        if (policy.TcpKeepalive is { } keepalive)
        {
            json["tcpKeepalive"] = new JsonObject
            {
                ["probes"] = keepalive.Probes,
                ["idleTime"] = keepalive.IdleTime is { } idle ? Duration(idle) : null,
                ["interval"] = keepalive.Interval is { } interval ? Duration(interval) : null,
            };
        }

        json["connectTimeout"] = policy.ConnectTimeout is { } timeout ? Duration(timeout) : null;
        return json;
    }

    private static string Duration(TimeSpan time) =>
        time.Ticks % TimeSpan.TicksPerSecond == 0
            ? $"{(long)time.TotalSeconds}s"
            : $"{(long)time.TotalMilliseconds}ms";

    private static JsonObject DiagnosticJson(Diagnostic diagnostic) => new()
    {
        ["severity"] = diagnostic.Severity.ToString(),
        ["object"] = diagnostic.Object?.ToString(),
        ["message"] = diagnostic.Message,
    };
}
