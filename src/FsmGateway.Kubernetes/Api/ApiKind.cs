using FsmGateway.Resources;

namespace FsmGateway.Kubernetes.Api;

/// <summary>
/// A kind FsmGateway reads from the API server: where it lives and which versions it may be served at, most preferred
/// first. The version actually used is found through discovery.
/// </summary>
/// <param name="Kind">The model kind.</param>
/// <param name="ApiKindName">The Kubernetes kind, e.g. <c>TCPRoute</c>.</param>
/// <param name="Group">The API group; empty for the core group.</param>
/// <param name="Plural">The resource name in URLs, e.g. <c>tcproutes</c>.</param>
/// <param name="Versions">The versions FsmGateway understands, most preferred first.</param>
/// <param name="Namespaced">Whether objects of the kind live in namespaces.</param>
internal sealed record ApiKind(ResourceKind Kind, string ApiKindName, string Group, string Plural, string[] Versions, bool Namespaced)
{
    public static ApiKind GatewayClass { get; } = new(ResourceKind.GatewayClass, "GatewayClass", GatewayApi.Group, "gatewayclasses", ["v1", "v1beta1"], Namespaced: false);

    public static ApiKind Gateway { get; } = new(ResourceKind.Gateway, "Gateway", GatewayApi.Group, "gateways", ["v1", "v1beta1"], Namespaced: true);

    /// <summary>TCPRoute is <c>v1</c> in Gateway API 1.6's standard channel, <c>v1alpha2</c> in older or experimental installs.</summary>
    public static ApiKind TcpRoute { get; } = new(ResourceKind.TcpRoute, "TCPRoute", GatewayApi.Group, "tcproutes", ["v1", "v1alpha2"], Namespaced: true);

    public static ApiKind ReferenceGrant { get; } = new(ResourceKind.ReferenceGrant, "ReferenceGrant", GatewayApi.Group, "referencegrants", ["v1", "v1beta1"], Namespaced: true);

    public static ApiKind Service { get; } = new(ResourceKind.Service, "Service", string.Empty, "services", ["v1"], Namespaced: true);

    public static ApiKind EndpointSlice { get; } = new(ResourceKind.EndpointSlice, "EndpointSlice", "discovery.k8s.io", "endpointslices", ["v1"], Namespaced: true);

    public static ApiKind Namespace { get; } = new(ResourceKind.Namespace, "Namespace", string.Empty, "namespaces", ["v1"], Namespaced: false);

    /// <summary>FSM's HealthCheckPolicy; a cluster without FSM's CRDs serves none, which counts as synced and empty.</summary>
    public static ApiKind HealthCheckPolicy { get; } = new(ResourceKind.HealthCheckPolicy, "HealthCheckPolicy", PolicyApi.FsmGroup, "healthcheckpolicies", [PolicyApi.FsmVersion], Namespaced: true);

    /// <summary>FSM's BackendLBPolicy; optional like <see cref="HealthCheckPolicy"/>.</summary>
    public static ApiKind BackendLbPolicy { get; } = new(ResourceKind.BackendLbPolicy, "BackendLBPolicy", PolicyApi.FsmGroup, "backendlbpolicies", [PolicyApi.FsmVersion], Namespaced: true);

    /// <summary>Our BackendTrafficPolicy (<c>deploy/05-crds.yaml</c>); optional like the others.</summary>
    public static ApiKind BackendTrafficPolicy { get; } = new(ResourceKind.BackendTrafficPolicy, "BackendTrafficPolicy", PolicyApi.Group, "backendtrafficpolicies", [PolicyApi.Version], Namespaced: true);

    /// <summary>Our ClientTrafficPolicy (<c>deploy/05-crds.yaml</c>); optional like the others.</summary>
    public static ApiKind ClientTrafficPolicy { get; } = new(ResourceKind.ClientTrafficPolicy, "ClientTrafficPolicy", PolicyApi.Group, "clienttrafficpolicies", [PolicyApi.Version], Namespaced: true);

    /// <summary>FSM's RouteRuleFilterPolicy; optional.</summary>
    public static ApiKind RouteRuleFilterPolicy { get; } = new(ResourceKind.RouteRuleFilterPolicy, "RouteRuleFilterPolicy", PolicyApi.FsmGroup, "routerulefilterpolicies", [PolicyApi.FsmVersion], Namespaced: true);

    /// <summary>FSM's first-generation RateLimitPolicy (<c>v1alpha1</c>); optional.</summary>
    public static ApiKind RateLimitPolicy { get; } = new(ResourceKind.RateLimitPolicy, "RateLimitPolicy", PolicyApi.FsmGroup, "ratelimitpolicies", [PolicyApi.FsmV1Version], Namespaced: true);

    /// <summary>FSM's ListenerFilter; optional.</summary>
    public static ApiKind ListenerFilter { get; } = new(ResourceKind.ListenerFilter, "ListenerFilter", PolicyApi.FsmExtensionGroup, "listenerfilters", [PolicyApi.FsmExtensionVersion], Namespaced: true);

    /// <summary>FSM's Filter; optional.</summary>
    public static ApiKind Filter { get; } = new(ResourceKind.Filter, "Filter", PolicyApi.FsmExtensionGroup, "filters", [PolicyApi.FsmExtensionVersion], Namespaced: true);

    /// <summary>FSM's ConcurrencyLimit; optional.</summary>
    public static ApiKind ConcurrencyLimit { get; } = new(ResourceKind.ConcurrencyLimit, "ConcurrencyLimit", PolicyApi.FsmExtensionGroup, "concurrencylimits", [PolicyApi.FsmExtensionVersion], Namespaced: true);

    /// <summary>FSM's IPRestriction; optional.</summary>
    public static ApiKind IPRestriction { get; } = new(ResourceKind.IPRestriction, "IPRestriction", PolicyApi.FsmExtensionGroup, "iprestrictions", [PolicyApi.FsmExtensionVersion], Namespaced: true);

    /// <summary>Every kind the gateway watches.</summary>
    public static IReadOnlyList<ApiKind> Watched { get; } =
    [
        GatewayClass, Gateway, TcpRoute, ReferenceGrant, Service, EndpointSlice, Namespace, HealthCheckPolicy, BackendLbPolicy, BackendTrafficPolicy,
        ClientTrafficPolicy, RouteRuleFilterPolicy, RateLimitPolicy, ListenerFilter, Filter, ConcurrencyLimit, IPRestriction,
    ];

    /// <summary>The kind for a model kind.</summary>
    public static ApiKind For(ResourceKind kind) => Watched.Single(k => k.Kind == kind);

    /// <summary><c>group/version</c>, or just the version for the core group.</summary>
    public string ApiVersion(string version) => Group.Length == 0 ? version : $"{Group}/{version}";

    /// <summary>The resource as RBAC and logs name it: <c>tcproutes.gateway.networking.k8s.io</c>.</summary>
    public override string ToString() => Group.Length == 0 ? Plural : $"{Plural}.{Group}";
}
