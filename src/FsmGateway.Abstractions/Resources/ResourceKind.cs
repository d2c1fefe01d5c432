namespace FsmGateway.Resources;

/// <summary>The kinds of Kubernetes object that FsmGateway reads.</summary>
public enum ResourceKind
{
    /// <summary><c>gateway.networking.k8s.io</c> GatewayClass (cluster-scoped).</summary>
    GatewayClass,

    /// <summary><c>gateway.networking.k8s.io</c> Gateway.</summary>
    Gateway,

    /// <summary><c>gateway.networking.k8s.io</c> TCPRoute (v1 or v1alpha2).</summary>
    TcpRoute,

    /// <summary><c>gateway.networking.k8s.io</c> ReferenceGrant (v1 or v1beta1).</summary>
    ReferenceGrant,

    /// <summary>Core v1 Service.</summary>
    Service,

    /// <summary><c>discovery.k8s.io/v1</c> EndpointSlice.</summary>
    EndpointSlice,

    /// <summary>Core v1 Namespace (cluster-scoped); its labels feed listener namespace selectors.</summary>
    Namespace,

    /// <summary>FSM's <c>gateway.flomesh.io/v1alpha2</c> HealthCheckPolicy: health checks for Service ports.</summary>
    HealthCheckPolicy,

    /// <summary>FSM's <c>gateway.flomesh.io/v1alpha2</c> BackendLBPolicy: the load-balancing algorithm for Services.</summary>
    BackendLbPolicy,

    /// <summary>Our <c>gateway.fsmgateway.io/v1alpha1</c> BackendTrafficPolicy (Envoy Gateway's TCP field names).</summary>
    BackendTrafficPolicy,

    /// <summary>FSM's <c>extension.gateway.flomesh.io/v1alpha1</c> ListenerFilter: a filter on the connections of Gateway listeners.</summary>
    ListenerFilter,

    /// <summary>FSM's <c>extension.gateway.flomesh.io/v1alpha1</c> Filter: a filter RouteRuleFilterPolicy refers to.</summary>
    Filter,

    /// <summary>FSM's <c>extension.gateway.flomesh.io/v1alpha1</c> ConcurrencyLimit: a ConcurrencyLimit filter's settings.</summary>
    ConcurrencyLimit,

    /// <summary>FSM's <c>extension.gateway.flomesh.io/v1alpha1</c> IPRestriction: an IPRestriction filter's settings.</summary>
    IPRestriction,

    /// <summary>FSM's <c>gateway.flomesh.io/v1alpha2</c> RouteRuleFilterPolicy: Filters on one rule of a route.</summary>
    RouteRuleFilterPolicy,

    /// <summary>FSM's first-generation <c>gateway.flomesh.io/v1alpha1</c> RateLimitPolicy: bytes per second on Gateway ports.</summary>
    RateLimitPolicy,

    /// <summary>Our <c>gateway.fsmgateway.io/v1alpha1</c> ClientTrafficPolicy (Envoy Gateway's field names).</summary>
    ClientTrafficPolicy,
}
