using System.Collections.Immutable;
using System.Text.Json.Nodes;
using FsmGateway.Resources;
using FsmGateway.Status;

namespace FsmGateway.Kubernetes.Mapping;

/// <summary>
/// The one mapping from Kubernetes objects (as JSON, whether read from a manifest or from the API server) to the
/// FsmGateway model. Checks what the API server's schema would check (types, required fields, enums, ranges) and
/// names the field at fault; semantic rules are the compiler's, reported as status.
/// </summary>
public static class ResourceMapper
{
    private const string GatewayGroup = GatewayApi.Group;

    /// <summary>Maps one Kubernetes object.</summary>
    /// <param name="json">The object, with <c>apiVersion</c>, <c>kind</c> and <c>metadata</c>.</param>
    /// <param name="defaultNamespace">The namespace for namespaced objects that name none (as <c>kubectl apply -n</c>).</param>
    /// <returns>The mapped resource, or a note saying why the object was skipped.</returns>
    /// <exception cref="ResourceMappingException">A field is malformed; the exception names it.</exception>
    public static MappedObject Map(JsonObject json, string defaultNamespace)
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            return MapCore(new FieldReader(json, string.Empty), defaultNamespace);
        }
        catch (MappingException e)
        {
            throw new ResourceMappingException(e.Field, e.Problem, Describe(json));
        }
    }

    private static MappedObject MapCore(FieldReader root, string defaultNamespace)
    {
        var apiVersion = root.RequiredString("apiVersion");
        var kind = root.RequiredString("kind");
        var slash = apiVersion.LastIndexOf('/');
        var (group, version) = slash < 0 ? (string.Empty, apiVersion) : (apiVersion[..slash], apiVersion[(slash + 1)..]);
        var metadataNode = root.OptionalObject("metadata");
        var name = metadataNode?.OptionalString("name") ?? "?";
        if (metadataNode?.OptionalString("namespace") is { } givenNamespace)
        {
            name = $"{givenNamespace}/{name}";
        }

        ResourceKind? resourceKind = (group, kind) switch
        {
            (GatewayGroup, "GatewayClass") when version is "v1" or "v1beta1" => ResourceKind.GatewayClass,
            (GatewayGroup, "Gateway") when version is "v1" or "v1beta1" => ResourceKind.Gateway,
            (GatewayGroup, "TCPRoute") when version is "v1" or "v1alpha2" => ResourceKind.TcpRoute,
            (GatewayGroup, "ReferenceGrant") when version is "v1" or "v1beta1" => ResourceKind.ReferenceGrant,
            ("", "Service") when version == "v1" => ResourceKind.Service,
            ("", "Namespace") when version == "v1" => ResourceKind.Namespace,
            ("discovery.k8s.io", "EndpointSlice") when version == "v1" => ResourceKind.EndpointSlice,
            (PolicyApi.FsmGroup, "HealthCheckPolicy") when version == PolicyApi.FsmVersion => ResourceKind.HealthCheckPolicy,
            (PolicyApi.FsmGroup, "BackendLBPolicy") when version == PolicyApi.FsmVersion => ResourceKind.BackendLbPolicy,
            (PolicyApi.Group, "BackendTrafficPolicy") when version == PolicyApi.Version => ResourceKind.BackendTrafficPolicy,
            (PolicyApi.Group, "ClientTrafficPolicy") when version == PolicyApi.Version => ResourceKind.ClientTrafficPolicy,
            (PolicyApi.FsmGroup, "RouteRuleFilterPolicy") when version == PolicyApi.FsmVersion => ResourceKind.RouteRuleFilterPolicy,
            (PolicyApi.FsmGroup, "RateLimitPolicy") when version == PolicyApi.FsmV1Version => ResourceKind.RateLimitPolicy,
            (PolicyApi.FsmExtensionGroup, "ListenerFilter") when version == PolicyApi.FsmExtensionVersion => ResourceKind.ListenerFilter,
            (PolicyApi.FsmExtensionGroup, "Filter") when version == PolicyApi.FsmExtensionVersion => ResourceKind.Filter,
            (PolicyApi.FsmExtensionGroup, "ConcurrencyLimit") when version == PolicyApi.FsmExtensionVersion => ResourceKind.ConcurrencyLimit,
            (PolicyApi.FsmExtensionGroup, "IPRestriction") when version == PolicyApi.FsmExtensionVersion => ResourceKind.IPRestriction,
            _ => null,
        };
        if (resourceKind is not { } known)
        {
            var why = group is GatewayGroup or "" or "discovery.k8s.io" or PolicyApi.FsmGroup or PolicyApi.Group or PolicyApi.FsmExtensionGroup && IsReadKind(kind)
                ? $"apiVersion {apiVersion} of {kind} is not one FsmGateway reads"
                : "not a kind FsmGateway reads";
            return MappedObject.Skip($"skipped {LogText.Escape(apiVersion)} {LogText.Escape(kind)} {LogText.Escape(name)}: {LogText.Escape(why)}");
        }

        var metadata = Metadata(root, known, defaultNamespace);
        var spec = root.OptionalObject("spec") ?? new FieldReader([], "spec");
        Resource resource = known switch
        {
            ResourceKind.GatewayClass => new GatewayClass(metadata, spec.RequiredString("controllerName"))
            {
                ParametersRef = spec.OptionalObject("parametersRef") is { } p ? ParametersRef(p) : null,
            },
            ResourceKind.Gateway => Gateway(metadata, spec),
            ResourceKind.TcpRoute => TcpRoute(metadata, spec, root, apiVersion),
            ResourceKind.ReferenceGrant => new ReferenceGrant(
                metadata,
                spec.Objects("from", static f => new ReferenceGrantFrom(f.OptionalString("group") ?? string.Empty, f.RequiredString("kind"), f.RequiredName("namespace", ObjectNames.Rule.Label))),
                spec.Objects("to", static t => new ReferenceGrantTo(t.OptionalString("group") ?? string.Empty, t.RequiredString("kind"), t.OptionalString("name")))),
            ResourceKind.Service => new Service(
                metadata,
                spec.Objects("ports", static p => new ServicePort(p.OptionalString("name"), p.RequiredInt("port", 1, 65535), p.OptionalString("protocol") ?? "TCP")))
            {
                Type = spec.OptionalString("type") ?? "ClusterIP",
            },
            ResourceKind.EndpointSlice => EndpointSlice(metadata, root),
            ResourceKind.Namespace => new KubernetesNamespace(metadata),
            ResourceKind.HealthCheckPolicy => PolicyMapper.HealthCheckPolicy(metadata, spec),
            ResourceKind.BackendLbPolicy => PolicyMapper.BackendLbPolicy(metadata, spec),
            ResourceKind.BackendTrafficPolicy => PolicyMapper.BackendTrafficPolicy(metadata, spec),
            ResourceKind.ClientTrafficPolicy => ClientPolicyMapper.ClientTrafficPolicy(metadata, spec),
            ResourceKind.RouteRuleFilterPolicy => ClientPolicyMapper.RouteRuleFilterPolicy(metadata, spec),
            ResourceKind.RateLimitPolicy => ClientPolicyMapper.RateLimitPolicy(metadata, spec),
            ResourceKind.ListenerFilter => ClientPolicyMapper.ListenerFilter(metadata, spec),
            ResourceKind.Filter => ClientPolicyMapper.Filter(metadata, spec),
            ResourceKind.ConcurrencyLimit => ClientPolicyMapper.ConcurrencyLimit(metadata, spec),
            ResourceKind.IPRestriction => ClientPolicyMapper.IPRestriction(metadata, spec),
            _ => throw new InvalidOperationException($"Unmapped kind {known}."),
        };
        return MappedObject.Of(resource);
    }

    private static string ParametersRef(FieldReader p)
    {
        var group = p.OptionalString("group") ?? string.Empty;
        var kind = group.Length == 0 ? p.RequiredString("kind") : $"{group}/{p.RequiredString("kind")}";
        var ns = p.OptionalString("namespace");
        return ns is null ? $"{kind} {p.RequiredString("name")}" : $"{kind} {ns}/{p.RequiredString("name")}";
    }

    private static bool IsReadKind(string kind) =>
        kind is "GatewayClass" or "Gateway" or "TCPRoute" or "ReferenceGrant" or "Service" or "Namespace" or "EndpointSlice"
            or "HealthCheckPolicy" or "BackendLBPolicy" or "BackendTrafficPolicy" or "ClientTrafficPolicy" or "RouteRuleFilterPolicy"
            or "RateLimitPolicy" or "ListenerFilter" or "Filter" or "ConcurrencyLimit" or "IPRestriction";

    private static ObjectMeta Metadata(FieldReader root, ResourceKind kind, string defaultNamespace)
    {
        var metadata = root.RequiredObject("metadata");
        var ns = ResourceKey.IsClusterScoped(kind) ? string.Empty : metadata.OptionalString("namespace") ?? defaultNamespace;
        if (ns.Length > 0 && ObjectNames.Problem(ObjectNames.Rule.Label, ns) is { } nsProblem)
        {
            throw new MappingException(metadata.Field("namespace"), nsProblem);
        }

        var name = metadata.RequiredString("name");
        if (ObjectNames.Problem(ObjectNames.RuleFor(kind), name) is { } nameProblem)
        {
            throw new MappingException(metadata.Field("name"), nameProblem);
        }

        return new ObjectMeta(ns, name)
        {
            Generation = metadata.OptionalLong("generation") ?? 1,
            CreationTimestamp = metadata.OptionalTimestamp("creationTimestamp"),
            Labels = metadata.StringMap("labels"),
            Uid = metadata.OptionalString("uid"),
            ResourceVersion = metadata.OptionalString("resourceVersion"),
        };
    }

    private static Gateway Gateway(ObjectMeta metadata, FieldReader spec)
    {
        var listeners = spec.Objects("listeners", Listener);
        if (listeners.IsEmpty)
        {
            throw new MappingException(spec.Field("listeners"), "must hold at least one listener");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < listeners.Length; i++)
        {
            if (!seen.Add(listeners[i].Name))
            {
                throw new MappingException($"{spec.Field("listeners")}[{i}].name", $"duplicate listener name '{listeners[i].Name}'");
            }
        }

        return new Gateway(metadata, spec.RequiredString("gatewayClassName"), listeners)
        {
            Addresses = spec.Objects("addresses", static a => new GatewayAddress(a.OptionalString("type") ?? GatewayAddress.IPAddressType, a.RequiredString("value"))),
        };
    }

    private static Listener Listener(FieldReader listener)
    {
        var allowed = listener.OptionalObject("allowedRoutes");
        var namespaces = allowed?.OptionalObject("namespaces");
        return new Listener(listener.RequiredName("name", ObjectNames.Rule.Subdomain), listener.RequiredInt("port", 1, 65535), listener.RequiredString("protocol"))
        {
            Hostname = listener.OptionalString("hostname"),
            HasTls = listener.Has("tls"),
            AllowedRoutes = new AllowedRoutes(
                namespaces?.OptionalEnum("from", FromNamespaces.Same) ?? FromNamespaces.Same,
                namespaces?.OptionalObject("selector") is { } selector ? Selector(selector) : null,
                // Unset or empty kinds both mean "the protocol's default kinds".
                allowed?.Objects("kinds", static k => new RouteGroupKind(k.OptionalString("group") ?? GatewayGroup, k.RequiredString("kind"))) is { IsEmpty: false } kinds
                    ? kinds
                    : null),
        };
    }

    private static LabelSelector Selector(FieldReader selector) => new(
        selector.StringMap("matchLabels"),
        selector.Objects("matchExpressions", static e => new LabelSelectorRequirement(
            e.RequiredString("key"),
            e.RequiredEnum<LabelSelectorOperator>("operator"),
            e.Strings("values"))));

    private static TcpRoute TcpRoute(ObjectMeta metadata, FieldReader spec, FieldReader root, string apiVersion)
    {
        var parentRefs = spec.Objects("parentRefs", ParentRef);
        var rules = spec.Objects("rules", static r => new TcpRouteRule(r.Objects("backendRefs", static b => new BackendReference(
            b.OptionalString("group"),
            b.OptionalString("kind"),
            b.OptionalName("namespace", ObjectNames.Rule.Label),
            b.RequiredString("name"),
            b.OptionalInt("port", 1, 65535),
            b.OptionalInt("weight", 0, 1_000_000))))
        {
            Name = r.OptionalString("name"),
        });
        var existing = root.OptionalObject("status")?.Objects("parents", static p => new RouteParentStatus(
            ParentRef(p.RequiredObject("parentRef")),
            p.RequiredString("controllerName"),
            p.Objects("conditions", static c => new Condition(
                c.RequiredString("type"),
                c.OptionalEnum("status", ConditionStatus.Unknown),
                c.OptionalString("reason") ?? string.Empty,
                c.OptionalString("message") ?? string.Empty,
                c.OptionalLong("observedGeneration") ?? 0))));
        return new TcpRoute(metadata, parentRefs, rules)
        {
            ApiVersion = apiVersion,
            ExistingParentStatuses = existing ?? [],
        };
    }

    private static ParentReference ParentRef(FieldReader p) => new(
        p.OptionalString("group"),
        p.OptionalString("kind"),
        p.OptionalName("namespace", ObjectNames.Rule.Label),
        p.RequiredString("name"),
        p.OptionalName("sectionName", ObjectNames.Rule.Subdomain),
        p.OptionalInt("port", 1, 65535));

    private static EndpointSlice EndpointSlice(ObjectMeta metadata, FieldReader root) => new(
        metadata,
        metadata.Labels.GetValueOrDefault(GatewayApi.ServiceNameLabel),
        root.RequiredString("addressType"),
        root.Objects("ports", static p => new EndpointPort(p.OptionalString("name"), p.OptionalInt("port", 1, 65535), p.OptionalString("protocol") ?? "TCP")),
        root.Objects("endpoints", static e => new Endpoint(e.Strings("addresses"), e.OptionalObject("conditions")?.OptionalBool("ready"))));

    /// <summary>The object as <c>Kind name</c> for messages: never throws, whatever the fields hold, and escaped.</summary>
    private static string Describe(JsonObject json)
    {
        var kind = json["kind"] is JsonValue k && k.TryGetValue<string>(out var kindText) ? kindText : "object";
        var name = json["metadata"] is JsonObject metadata && metadata["name"] is JsonValue n && n.TryGetValue<string>(out var nameText) ? nameText : null;
        return name is null ? LogText.Escape(kind) : $"{LogText.Escape(kind)} {LogText.Escape(name)}";
    }
}
