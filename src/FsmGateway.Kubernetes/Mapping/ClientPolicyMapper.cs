using FsmGateway.Resources;

namespace FsmGateway.Kubernetes.Mapping;

/// <summary>
/// Maps the client-side kinds: FSM's ListenerFilter, Filter, ConcurrencyLimit and IPRestriction
/// (<c>extension.gateway.flomesh.io/v1alpha1</c>), RouteRuleFilterPolicy (<c>gateway.flomesh.io/v1alpha2</c>) and
/// first-generation RateLimitPolicy (<c>gateway.flomesh.io/v1alpha1</c>), as FSM's CRDs validate them, and our
/// ClientTrafficPolicy (<c>gateway.fsmgateway.io/v1alpha1</c>, as <c>deploy/05-crds.yaml</c> validates it). Only what a
/// schema would refuse is refused here; what FsmGateway cannot honour (other filter types, definitionRef, FSM's
/// webhook rules) is the compiler's, reported as status.
/// </summary>
internal static class ClientPolicyMapper
{
    private const int MaxTargetRefs = 16;

    public static ListenerFilter ListenerFilter(ObjectMeta metadata, FieldReader spec)
    {
        var targets = PolicyMapper.Bounded(spec, "targetRefs", MaxTargetRefs, static t => new PortTargetReference(
            t.RequiredString("group"),
            t.RequiredString("kind"),
            t.RequiredName("name", ObjectNames.Rule.Subdomain),
            t.RequiredInt("port", 1, 65535)));
        if (targets.IsEmpty)
        {
            throw new MappingException(spec.Field("targetRefs"), "must hold at least one target");
        }

        return new ListenerFilter(metadata, FilterType(spec), spec.OptionalInt("priority", 0, 10000) ?? 100, spec.OptionalOneOf("aspect", "Listener", "Route") ?? "Listener", targets)
        {
            DefinitionRef = LocalRef(spec, "definitionRef"),
            ConfigRef = LocalRef(spec, "configRef"),
        };
    }

    public static FsmFilter Filter(ObjectMeta metadata, FieldReader spec) => new(metadata, FilterType(spec))
    {
        DefinitionRef = LocalRef(spec, "definitionRef"),
        ConfigRef = LocalRef(spec, "configRef"),
    };

    public static ConcurrencyLimitConfig ConcurrencyLimit(ObjectMeta metadata, FieldReader spec) =>
        new(metadata, spec.OptionalInt("maxConnections", 1, int.MaxValue) ?? 100);

    public static IPRestrictionConfig IPRestriction(ObjectMeta metadata, FieldReader spec) =>
        new(metadata, Set(spec, "allowed"), Set(spec, "forbidden"));

    public static RouteRuleFilterPolicy RouteRuleFilterPolicy(ObjectMeta metadata, FieldReader spec)
    {
        var targets = PolicyMapper.Bounded(spec, "targetRefs", MaxTargetRefs, static t => new PolicyTargetReference(
            t.RequiredOneOf("group", GatewayApi.Group),
            t.RequiredOneOf("kind", "TCPRoute", "UDPRoute"),
            t.RequiredName("name", ObjectNames.Rule.Subdomain))
        {
            SectionName = t.RequiredName("rule", ObjectNames.Rule.Subdomain),
        });
        if (targets.IsEmpty)
        {
            throw new MappingException(spec.Field("targetRefs"), "must hold at least one target");
        }

        var filters = PolicyMapper.Bounded(spec, "filterRefs", MaxTargetRefs, static f => new FilterReference(
            f.RequiredOneOf("group", PolicyApi.FsmExtensionGroup),
            f.RequiredOneOf("kind", "Filter"),
            f.RequiredName("name", ObjectNames.Rule.Subdomain),
            f.OptionalInt("priority", 0, 10000) ?? 100));
        if (filters.IsEmpty)
        {
            throw new MappingException(spec.Field("filterRefs"), "must hold at least one filter");
        }

        return new RouteRuleFilterPolicy(metadata, targets, filters);
    }

    public static RateLimitPolicy RateLimitPolicy(ObjectMeta metadata, FieldReader spec)
    {
        var target = spec.RequiredObject("targetRef");
        var ports = PolicyMapper.Bounded(spec, "ports", 16, static p => new PortRateLimit(p.RequiredInt("port", 1, 65535), p.OptionalLong("bps", 1, long.MaxValue)));
        var seen = new HashSet<int>();
        for (var i = 0; i < ports.Length; i++)
        {
            if (!seen.Add(ports[i].Port))
            {
                throw new MappingException($"{spec.Field("ports")}[{i}].port", $"duplicate port {ports[i].Port}");
            }
        }

        return new RateLimitPolicy(
            metadata,
            new PolicyTargetReference(target.OptionalString("group") ?? string.Empty, target.RequiredString("kind"), target.RequiredName("name", ObjectNames.Rule.Subdomain))
            {
                Namespace = target.OptionalName("namespace", ObjectNames.Rule.Label),
            },
            spec.OptionalLong("bps", 1, long.MaxValue),
            ports)
        {
            HttpFields = [.. new[] { "hostnames", "http", "grpc", "config" }.Where(spec.Has).Select(spec.Field)],
        };
    }

    public static ClientTrafficPolicy ClientTrafficPolicy(ObjectMeta metadata, FieldReader spec)
    {
        var tcp = spec.OptionalObject("timeout")?.OptionalObject("tcp");
        var connection = spec.OptionalObject("connection");
        var limit = connection?.OptionalObject("connectionLimit");
        var bandwidth = spec.OptionalObject("bandwidthLimit");
        var proxyProtocol = spec.OptionalObject("proxyProtocol");
        if (proxyProtocol is not null && spec.Has("enableProxyProtocol"))
        {
            // Envoy Gateway's CEL rule: "enableProxyProtocol and proxyProtocol cannot be set at the same time".
            throw new MappingException(spec.Field("enableProxyProtocol"), "cannot be set together with proxyProtocol (it is deprecated: use proxyProtocol)");
        }

        var limitDuration = limit?.OptionalDuration("maxConnectionDuration");
        var connectionDuration = connection?.OptionalDuration("maxConnectionDuration");
        if (limitDuration is not null && connectionDuration is not null)
        {
            throw new MappingException(limit!.Value.Field("maxConnectionDuration"), "cannot be set together with spec.connection.maxConnectionDuration (they are the same setting)");
        }

        ConnectionLimitSpec? connectionLimit = null;
        if (limit is { } l)
        {
            var value = l.OptionalLong("value", 1, long.MaxValue);
            var closeDelay = l.OptionalDuration("closeDelay");
            if (closeDelay is not null && value is null)
            {
                // Envoy Gateway's CEL rule: closeDelay needs value.
                throw new MappingException(l.Field("value"), "is required when closeDelay is set");
            }

            connectionLimit = value is null && closeDelay is null ? null : new ConnectionLimitSpec(value, closeDelay);
        }

        var unsupported = new List<string>();
        foreach (var field in new[] { "targetSelectors", "tls", "http1", "http2", "http3", "headers", "clientIPDetection", "path", "healthCheck", "earlyRequestHeaders", "scheme" })
        {
            if (spec.Has(field))
            {
                unsupported.Add(spec.Field(field));
            }
        }

        if (spec.OptionalObject("timeout")?.Has("http") == true)
        {
            unsupported.Add("spec.timeout.http");
        }

        return new ClientTrafficPolicy(metadata, PolicyMapper.TargetRefs(spec, withNamespace: false, withSectionName: true))
        {
            ProxyProtocol = proxyProtocol is { } pp
                ? new ProxyProtocolSpec(pp.OptionalBool("optional") ?? false)
                : spec.OptionalBool("enableProxyProtocol") == true ? new ProxyProtocolSpec(false) : null,
            TcpKeepalive = spec.OptionalObject("tcpKeepalive") is { } keepalive ? new TcpKeepaliveSpec(
                keepalive.OptionalInt("probes", 0, int.MaxValue),
                keepalive.OptionalDuration("idleTime"),
                keepalive.OptionalDuration("interval")) : null,
            IdleTimeout = tcp?.OptionalDuration("idleTimeout"),
            ConnectionInspectionTimeout = tcp?.OptionalDuration("connectionInspectionTimeout"),
            HalfClosedTimeout = tcp?.OptionalDuration("halfClosedTimeout"),
            HasTlsHandshakeTimeout = tcp?.Has("tlsHandshakeTimeout") == true,
            ConnectionLimit = connectionLimit,
            BufferLimit = connection?.OptionalQuantity("bufferLimit", 0, long.MaxValue),
            MaxConnectionDuration = limitDuration ?? connectionDuration,
            HasMaxAcceptPerSocketEvent = connection?.Has("maxAcceptPerSocketEvent") == true,
            UploadBandwidth = bandwidth?.OptionalObject("upload") is { } up ? Bandwidth(up) : null,
            DownloadBandwidth = bandwidth?.OptionalObject("download") is { } down ? Bandwidth(down) : null,
            UnsupportedFields = [.. unsupported],
        };
    }

    private static BandwidthLimitSpec Bandwidth(FieldReader direction) => new(
        direction.OptionalQuantity("bytesPerSecond", 1, long.MaxValue) ?? throw new MappingException(direction.Field("bytesPerSecond"), "is required"),
        direction.OptionalQuantity("burst", 1, long.MaxValue));

    private static string FilterType(FieldReader spec)
    {
        var type = spec.RequiredString("type");
        // FSM's pattern ^[A-Z]+(([A-Z]*[a-z0-9]+[A-Z]*)*)$ accepts exactly an upper-case letter followed by letters and digits.
        return type.Length <= 63 && char.IsAsciiLetterUpper(type[0]) && type.All(char.IsAsciiLetterOrDigit)
            ? type
            : throw new MappingException(spec.Field("type"), $"'{LogText.Escape(type)}' is not a filter type: PascalCase, 1 to 63 characters (e.g. IPRestriction)");
    }

    private static LocalObjectReference? LocalRef(FieldReader spec, string name) =>
        spec.OptionalObject(name) is { } r
            ? new LocalObjectReference(r.OptionalString("group") ?? string.Empty, r.RequiredString("kind"), r.RequiredName("name", ObjectNames.Rule.Subdomain))
            : null;

    /// <summary>A <c>listType=set</c> list of strings: duplicates are refused as the API server refuses them.</summary>
    private static EquatableArray<string> Set(FieldReader spec, string name)
    {
        var items = spec.Strings(name);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < items.Length; i++)
        {
            if (!seen.Add(items[i]))
            {
                throw new MappingException($"{spec.Field(name)}[{i}]", $"duplicate entry '{LogText.Escape(items[i])}'");
            }
        }

        return items;
    }
}
