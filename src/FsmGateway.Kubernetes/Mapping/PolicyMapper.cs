using FsmGateway.Resources;

namespace FsmGateway.Kubernetes.Mapping;

/// <summary>
/// Maps the policy kinds: FSM's HealthCheckPolicy and BackendLBPolicy (<c>gateway.flomesh.io/v1alpha2</c>, as FSM's
/// CRDs validate them) and our BackendTrafficPolicy (<c>gateway.fsmgateway.io/v1alpha1</c>, as
/// <c>deploy/05-crds.yaml</c> and Envoy Gateway's CRD validate it). Only what the schema and its CEL rules would refuse
/// is refused here; what the schema allows but FsmGateway cannot honour is the compiler's (status Invalid).
/// </summary>
internal static class PolicyMapper
{
    private const int MaxTargetRefs = 16;

    public static HealthCheckPolicy HealthCheckPolicy(ObjectMeta metadata, FieldReader spec)
    {
        var targets = TargetRefs(spec, withNamespace: true, withSectionName: false);
        var ports = Bounded(spec, "ports", 16, static p => new PortHealthCheck(p.RequiredInt("port", 1, 65535), p.OptionalObject("healthCheck") is { } h ? FsmHealthCheck(h) : null));
        var seen = new HashSet<int>();
        for (var i = 0; i < ports.Length; i++)
        {
            if (!seen.Add(ports[i].Port))
            {
                throw new MappingException($"{spec.Field("ports")}[{i}].port", $"duplicate port {ports[i].Port}");
            }
        }

        return new HealthCheckPolicy(metadata, targets, ports, spec.OptionalObject("healthCheck") is { } check ? FsmHealthCheck(check) : null);
    }

    public static BackendLbPolicy BackendLbPolicy(ObjectMeta metadata, FieldReader spec) =>
        new(metadata, TargetRefs(spec, withNamespace: false, withSectionName: false), spec.OptionalOneOf("algorithm", "RoundRobin", "LeastLoad"))
        {
            HasSessionPersistence = spec.Has("sessionPersistence"),
        };

    public static BackendTrafficPolicy BackendTrafficPolicy(ObjectMeta metadata, FieldReader spec)
    {
        var healthCheck = spec.OptionalObject("healthCheck");
        var circuitBreaker = spec.OptionalObject("circuitBreaker");
        return new BackendTrafficPolicy(metadata, TargetRefs(spec, withNamespace: false, withSectionName: true))
        {
            LoadBalancer = spec.OptionalObject("loadBalancer") is { } lb ? LoadBalancer(lb) : null,
            ActiveHealthCheck = healthCheck?.OptionalObject("active") is { } active ? Active(active) : null,
            PassiveHealthCheck = healthCheck?.OptionalObject("passive") is { } passive ? new PassiveHealthCheckSpec(
                passive.OptionalInt("consecutiveLocalOriginFailures", 0, int.MaxValue),
                passive.OptionalDuration("interval"),
                passive.OptionalDuration("baseEjectionTime"),
                passive.OptionalInt("maxEjectionPercent", 0, 100)) : null,
            PanicThreshold = healthCheck?.OptionalInt("panicThreshold", 0, 100),
            MaxConnections = circuitBreaker?.OptionalLong("maxConnections", 0, uint.MaxValue),
            MaxConnectionsPerEndpoint = circuitBreaker?.OptionalObject("perEndpoint")?.OptionalLong("maxConnections", 0, uint.MaxValue),
            ProxyProtocolVersion = spec.OptionalObject("proxyProtocol")?.RequiredOneOf("version", "V1", "V2"),
            TcpKeepalive = spec.OptionalObject("tcpKeepalive") is { } keepalive ? new TcpKeepaliveSpec(
                keepalive.OptionalInt("probes", 0, int.MaxValue),
                keepalive.OptionalDuration("idleTime"),
                keepalive.OptionalDuration("interval")) : null,
            ConnectTimeout = spec.OptionalObject("timeout")?.OptionalObject("tcp")?.OptionalDuration("connectTimeout"),
        };
    }

    private static FsmHealthCheck FsmHealthCheck(FieldReader check) => new(
        check.OptionalDuration("interval") ?? throw new MappingException(check.Field("interval"), "is required"),
        check.OptionalInt("maxFails", 0, int.MaxValue) ?? throw new MappingException(check.Field("maxFails"), "is required"),
        check.OptionalDuration("failTimeout"),
        check.OptionalString("path"),
        Bounded(check, "matches", 16, static m => new HealthCheckMatch(
            Bounded(m, "statusCodes", 16, m.Ints("statusCodes", int.MinValue, int.MaxValue)),
            m.OptionalString("body"),
            Bounded(m, "headers", 16, static h => new HttpHeaderValue(h.RequiredString("name"), h.OptionalString("value") ?? string.Empty)))));

    private static LoadBalancerSpec LoadBalancer(FieldReader lb)
    {
        var type = lb.RequiredOneOf("type", "ConsistentHash", "LeastRequest", "Random", "RoundRobin", "BackendUtilization", "DynamicModule");
        var hash = lb.OptionalObject("consistentHash");
        if (type == "ConsistentHash" && hash is null)
        {
            // Envoy Gateway's CEL rule: "If LoadBalancer type is consistentHash, consistentHash field needs to be set."
            throw new MappingException(lb.Field("consistentHash"), "is required when type is ConsistentHash");
        }

        return new LoadBalancerSpec(
            type,
            hash?.RequiredOneOf("type", "SourceIP", "Header", "Headers", "Cookie", "QueryParams"),
            hash?.OptionalLong("tableSize", 2, 5_000_011))
        {
            HasSlowStart = lb.Has("slowStart"),
        };
    }

    private static ActiveHealthCheckSpec Active(FieldReader active)
    {
        var type = active.RequiredOneOf("type", "HTTP", "TCP", "GRPC");
        var http = active.OptionalObject("http");
        var tcp = active.OptionalObject("tcp");
        if (type == "HTTP" && http is null)
        {
            // Envoy Gateway's CEL rule: "If Health Checker type is HTTP, http field needs to be set."
            throw new MappingException(active.Field("http"), "is required when type is HTTP");
        }

        return new ActiveHealthCheckSpec(type)
        {
            Timeout = active.OptionalDuration("timeout"),
            Interval = active.OptionalDuration("interval"),
            UnhealthyThreshold = active.OptionalInt("unhealthyThreshold", 1, int.MaxValue),
            HealthyThreshold = active.OptionalInt("healthyThreshold", 1, int.MaxValue),
            HttpPath = http?.RequiredString("path"),
            ExpectedStatuses = http?.Ints("expectedStatuses", 100, 599) ?? [],
            TcpSend = tcp?.OptionalObject("send") is { } send ? Payload(send) : null,
            TcpReceive = tcp?.OptionalObject("receive") is { } receive ? Payload(receive) : null,
        };
    }

    private static HealthCheckPayload Payload(FieldReader payload)
    {
        var type = payload.RequiredOneOf("type", "Text", "Binary");
        var text = payload.OptionalString("text");
        var binaryText = payload.OptionalString("binary");
        if (type == "Text" && text is null)
        {
            throw new MappingException(payload.Field("text"), "is required when type is Text");
        }

        if (type == "Binary" && binaryText is null)
        {
            throw new MappingException(payload.Field("binary"), "is required when type is Binary");
        }

        EquatableArray<byte>? binary = null;
        if (binaryText is not null)
        {
            // Envoy Gateway's binary is []byte: base64 in YAML and JSON.
            var buffer = new byte[(binaryText.Length * 3 / 4) + 3];
            binary = Convert.TryFromBase64String(binaryText, buffer, out var written)
                ? EquatableArray.Create<byte>(buffer.AsSpan(0, written))
                : throw new MappingException(payload.Field("binary"), "is not base64");
        }

        return new HealthCheckPayload(type, text, binary);
    }

    internal static EquatableArray<PolicyTargetReference> TargetRefs(FieldReader spec, bool withNamespace, bool withSectionName)
    {
        var targets = Bounded(spec, "targetRefs", MaxTargetRefs, t => new PolicyTargetReference(
            t.OptionalString("group") ?? string.Empty,
            t.RequiredString("kind"),
            t.RequiredName("name", ObjectNames.Rule.Subdomain))
        {
            Namespace = withNamespace ? t.OptionalName("namespace", ObjectNames.Rule.Label) : null,
            SectionName = withSectionName ? t.OptionalName("sectionName", ObjectNames.Rule.Subdomain) : null,
        });
        return targets.IsEmpty ? throw new MappingException(spec.Field("targetRefs"), "must hold at least one target") : targets;
    }

    internal static System.Collections.Immutable.ImmutableArray<T> Bounded<T>(FieldReader reader, string name, int max, Func<FieldReader, T> read) =>
        Bounded(reader, name, max, reader.Objects(name, read));

    internal static System.Collections.Immutable.ImmutableArray<T> Bounded<T>(FieldReader reader, string name, int max, System.Collections.Immutable.ImmutableArray<T> items) =>
        items.Length <= max ? items : throw new MappingException(reader.Field(name), $"holds {items.Length} items; at most {max} are allowed");
}
