namespace FsmGateway.Kubernetes.Controller;

/// <summary>A resource the controller reads or writes: group, version, plural, scope.</summary>
/// <param name="Group">The API group; empty for the core group.</param>
/// <param name="Version">The version.</param>
/// <param name="Plural">The resource name in URLs.</param>
/// <param name="Kind">The kind, as written in objects.</param>
/// <param name="Namespaced">Whether objects live in namespaces.</param>
internal sealed record ApiResource(string Group, string Version, string Plural, string Kind, bool Namespaced)
{
    public static ApiResource Deployment { get; } = new("apps", "v1", "deployments", "Deployment", Namespaced: true);

    public static ApiResource Service { get; } = new(string.Empty, "v1", "services", "Service", Namespaced: true);

    public static ApiResource ServiceAccount { get; } = new(string.Empty, "v1", "serviceaccounts", "ServiceAccount", Namespaced: true);

    public static ApiResource PodDisruptionBudget { get; } = new("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", Namespaced: true);

    public static ApiResource ConfigMap { get; } = new(string.Empty, "v1", "configmaps", "ConfigMap", Namespaced: true);

    public static ApiResource ClusterRoleBinding { get; } = new("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", Namespaced: false);

    public static ApiResource RoleBinding { get; } = new("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", Namespaced: true);

    public static ApiResource ClusterRole { get; } = new("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", Namespaced: false);

    public string ApiVersion => Group.Length == 0 ? Version : $"{Group}/{Version}";

    public override string ToString() => Group.Length == 0 ? Plural : $"{Plural}.{Group}";
}
