namespace FsmGateway.Testing.Kubernetes;

/// <summary>One permission an identity needs: an API group ("" for core), a resource (or resource/subresource), a verb,
/// and the code path that needs it.</summary>
public readonly record struct RequiredPermission(string Group, string Resource, string Verb, string Why);

/// <summary>
/// Every permission FsmGateway's two identities need, and why (the data plane's: none). This is the one list: <c>deploy/10-rbac.yaml</c> must
/// grant exactly these (<c>DeployManifestTests</c> checks it, in both directions), and every request the controller
/// and the data plane make in the end-to-end tests must be one of these (<c>KubernetesModesTests</c> checks the fake
/// API server's audit log). A new API call adds its entry here, then its rule in the manifest.
/// </summary>
public static class RequiredPermissions
{
    public const string GatewayApiGroup = "gateway.networking.k8s.io";

    /// <summary>The kinds the config source lists and watches, cluster-wide, in both modes.</summary>
    public static IReadOnlyList<(string Group, string Resource)> WatchedKinds { get; } =
    [
        (GatewayApiGroup, "gatewayclasses"),
        (GatewayApiGroup, "gateways"),
        (GatewayApiGroup, "tcproutes"),
        (GatewayApiGroup, "referencegrants"),
        ("", "services"),
        ("", "namespaces"),
        ("discovery.k8s.io", "endpointslices"),
        (FsmPolicyGroup, "healthcheckpolicies"),
        (FsmPolicyGroup, "backendlbpolicies"),
        (OwnPolicyGroup, "backendtrafficpolicies"),
        (OwnPolicyGroup, "clienttrafficpolicies"),
        (FsmPolicyGroup, "routerulefilterpolicies"),
        (FsmPolicyGroup, "ratelimitpolicies"),
        (FsmExtensionGroup, "listenerfilters"),
        (FsmExtensionGroup, "filters"),
        (FsmExtensionGroup, "concurrencylimits"),
        (FsmExtensionGroup, "iprestrictions"),
    ];

    /// <summary>FSM's extension group (ListenerFilter, Filter, ConcurrencyLimit, IPRestriction).</summary>
    public const string FsmExtensionGroup = "extension.gateway.flomesh.io";

    /// <summary>FSM's policy group (HealthCheckPolicy, BackendLBPolicy).</summary>
    public const string FsmPolicyGroup = "gateway.flomesh.io";

    /// <summary>Our policy group (BackendTrafficPolicy).</summary>
    public const string OwnPolicyGroup = "gateway.fsmgateway.io";

    /// <summary>ServiceAccount fsm-system/fsm-gateway-controller (<c>fsm-gateway controller</c>).</summary>
    public static IReadOnlyList<RequiredPermission> Controller { get; } =
    [
        .. Watch,
        .. Grant(GatewayApiGroup, ["gatewayclasses", "gateways", "tcproutes"], ["get"],
            "KubernetesStatusWriter: read the object before writing its status; GatewayProvisioner: read the Gateway (uid, listeners)"),
        .. Grant(GatewayApiGroup, ["gatewayclasses/status", "gateways/status", "tcproutes/status"], ["update"],
            "KubernetesStatusWriter: replace the status subresource (with the resourceVersion read, so a race is a 409)"),
        .. Grant(FsmPolicyGroup, ["healthcheckpolicies", "backendlbpolicies"], ["get"],
            "KubernetesStatusWriter: read the policy before writing its status.ancestors"),
        .. Grant(FsmPolicyGroup, ["healthcheckpolicies/status", "backendlbpolicies/status"], ["update"],
            "KubernetesStatusWriter: replace the policy's status subresource (our status.ancestors entries, keeping other controllers')"),
        .. Grant(OwnPolicyGroup, ["backendtrafficpolicies"], ["get"],
            "KubernetesStatusWriter: read the policy before writing its status.ancestors"),
        .. Grant(OwnPolicyGroup, ["backendtrafficpolicies/status"], ["update"],
            "KubernetesStatusWriter: replace the policy's status subresource"),
        .. Grant(OwnPolicyGroup, ["clienttrafficpolicies"], ["get"],
            "KubernetesStatusWriter: read the policy before writing its status.ancestors"),
        .. Grant(OwnPolicyGroup, ["clienttrafficpolicies/status"], ["update"],
            "KubernetesStatusWriter: replace the policy's status subresource"),
        .. Grant(FsmPolicyGroup, ["routerulefilterpolicies", "ratelimitpolicies"], ["get"],
            "KubernetesStatusWriter: read the policy before writing its status (ancestors, or conditions for RateLimitPolicy)"),
        .. Grant(FsmPolicyGroup, ["routerulefilterpolicies/status", "ratelimitpolicies/status"], ["update"],
            "KubernetesStatusWriter: replace the policy's status subresource"),
        .. Grant(FsmExtensionGroup, ["listenerfilters", "filters", "concurrencylimits", "iprestrictions"], ["get"],
            "KubernetesStatusWriter: read the filter object before writing its status.conditions"),
        .. Grant(FsmExtensionGroup, ["listenerfilters/status", "filters/status", "concurrencylimits/status", "iprestrictions/status"], ["update"],
            "KubernetesStatusWriter: replace the filter object's status subresource (the Accepted condition)"),
        .. Grant("apps", ["deployments"], ["get", "list", "watch", "create", "patch", "delete"],
            "GatewayProvisioner: server-side apply (patch; create when new) of the per-Gateway Deployment fsm-gateway-<gateway>, get on an apply conflict (ours or someone else's?), list+delete removes those of Gateways no longer accepted; OwnedObjectsWatch: list+watch (by label) to see a replica become available or a hand edit to undo"),
        .. Grant("", ["services"], ["get", "create", "patch", "delete"],
            "GatewayProvisioner: server-side apply of the per-Gateway Service fsm-gateway-<gateway>, get on a conflict, delete when unused (list is granted for the watch)"),
        .. Grant("policy", ["poddisruptionbudgets"], ["get", "list", "create", "patch", "delete"],
            "GatewayProvisioner: server-side apply of the per-Gateway PodDisruptionBudget (replicas > 1), get on a conflict or before deleting it when replicas drop to 1, list+delete removes those of Gateways no longer accepted"),
        .. Grant("", ["configmaps"], ["get", "list", "watch"],
            "GatewayProvisioner: read the ConfigMap a Gateway's spec.infrastructure.parametersRef names (replicas, resources, Service type, externalTrafficPolicy); OwnedObjectsWatch: list+watch ConfigMaps so an edit of one a Gateway names is applied at once"),
        .. Grant("", ["configmaps"], ["create", "patch"],
            "GatewayProvisioner: server-side apply of ConfigMap fsm-gateway-controller-ca (the config stream's CA certificate, public) in each Gateway's namespace"),
        .. Grant("", ["serviceaccounts"], ["get", "create", "patch"],
            "GatewayProvisioner: server-side apply of ServiceAccount fsm-gateway in the Gateway's namespace (deleted with its Gateways, by owner references; bound to no role), get on a conflict"),
        .. Grant("authentication.k8s.io", ["tokenreviews"], ["create"],
            "ServiceAccountAuthorizer: review the projected ServiceAccount token a data plane presents on the config stream (audience fsm-gateway-controller)"),
        .. Grant("rbac.authorization.k8s.io", ["clusterrolebindings"], ["list", "delete"],
            "LegacyDataPlaneRbac: once per leader, delete the ClusterRoleBindings fsm-gateway-dataplane-<namespace> earlier versions made for data planes (only ours, by uid), and see that no binding still refers to ClusterRole fsm-gateway-dataplane"),
        .. Grant("rbac.authorization.k8s.io", ["rolebindings"], ["list"],
            "LegacyDataPlaneRbac: once per leader, and only while ClusterRole fsm-gateway-dataplane (as deploy/ shipped it) exists, see that no RoleBinding in any namespace still refers to it before deleting it (a RoleBinding may grant a ClusterRole's rules in its namespace); without it the ClusterRole is kept"),
        .. Grant("rbac.authorization.k8s.io", ["clusterroles"], ["get", "delete"],
            "LegacyDataPlaneRbac: read and delete ClusterRole fsm-gateway-dataplane, which earlier deploy/ manifests shipped (resourceNames: that one only)"),
        .. Grant("", ["secrets"], ["get", "create"],
            "StreamAuthority: read, or create the first time, Secret fsm-system/fsm-gateway-controller-ca, the config stream's CA (a Role in fsm-system only; get limited to that name)"),
        .. Grant("", ["secrets"], ["update"],
            "StreamAuthority: the leader writes each stage of a CA rotation to Secret fsm-system/fsm-gateway-controller-ca (new CA and bundle, switch, old CA dropped), with the resourceVersion read (a Role in fsm-system only; limited to that name)"),
        .. Grant("coordination.k8s.io", ["leases"], ["get", "create", "update"],
            "Leadership (KubernetesClient LeaderElector with a LeaseLock): the Lease in fsm-system; ReplicaReportLeases: this replica's report Lease"),
        .. Grant("coordination.k8s.io", ["leases"], ["list", "delete"],
            "ReplicaReportLeases: list the other replicas' report Leases (by label), delete one expired for two lease durations"),
    ];

    /// <summary>
    /// ServiceAccount fsm-gateway in each Gateway's namespace (<c>fsm-gateway gateway --controller-address</c>): none.
    /// The data plane gets its config from the controller's stream and never calls the API server.
    /// </summary>
    public static IReadOnlyList<RequiredPermission> Dataplane { get; } = [];

    private static IEnumerable<RequiredPermission> Watch =>
        WatchedKinds.SelectMany(k => Grant(k.Group, [k.Resource], ["list", "watch"], "KubernetesWatchSource: list+watch"));

    private static IEnumerable<RequiredPermission> Grant(string apiGroup, string[] resources, string[] verbs, string why) =>
        from resource in resources
        from verb in verbs
        select new RequiredPermission(apiGroup, resource, verb, why);
}
