namespace FsmGateway.Testing.Kubernetes;

/// <summary>One served resource at one group/version, as discovery describes it.</summary>
internal sealed record ResourceType(
    string Group,
    string Version,
    string Plural,
    string Singular,
    string Kind,
    bool Namespaced,
    bool HasStatus,
    IReadOnlyList<string> ShortNames,
    bool FromCrd = false)
{
    /// <summary>Objects are stored once per group and resource, whatever version they were written at.</summary>
    public string StoreKey => Group + "/" + Plural;

    public string ApiVersion => Group.Length == 0 ? Version : Group + "/" + Version;

    public string ListKind => Kind + "List";

    public static readonly IReadOnlyList<string> Verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

    public static IEnumerable<ResourceType> BuiltIn()
    {
        yield return new("", "v1", "namespaces", "namespace", "Namespace", false, true, ["ns"]);
        yield return new("", "v1", "services", "service", "Service", true, true, ["svc"]);
        yield return new("", "v1", "endpoints", "endpoints", "Endpoints", true, false, ["ep"]);
        yield return new("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", true, false, ["sa"]);
        yield return new("", "v1", "pods", "pod", "Pod", true, true, ["po"]);
        yield return new("", "v1", "configmaps", "configmap", "ConfigMap", true, false, ["cm"]);
        yield return new("", "v1", "secrets", "secret", "Secret", true, false, []);
        yield return new("", "v1", "events", "event", "Event", true, false, ["ev"]);
        yield return new("discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", true, false, []);
        yield return new("apps", "v1", "deployments", "deployment", "Deployment", true, true, ["deploy"]);
        yield return new("policy", "v1", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget", true, true, ["pdb"]);
        yield return new("coordination.k8s.io", "v1", "leases", "lease", "Lease", true, false, []);
        yield return new("rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", false, false, []);
        yield return new("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", false, false, []);
        yield return new("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", true, false, []);
        yield return new("rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", true, false, []);
        yield return new("apiextensions.k8s.io", "v1", "customresourcedefinitions", "customresourcedefinition", "CustomResourceDefinition", false, true, ["crd", "crds"]);
        yield return new("events.k8s.io", "v1", "events", "event", "Event", true, false, ["ev"]);

        // Create only: the server answers with the review and keeps nothing (FakeApiServer.AddServiceAccountToken).
        yield return new("authentication.k8s.io", "v1", "tokenreviews", "tokenreview", "TokenReview", false, false, []);
    }

    /// <summary>Kubernetes version priority: GA before beta before alpha, higher numbers first, anything else last (alphabetically).</summary>
    public static int ComparePriority(string a, string b) => Rank(a).CompareTo(Rank(b)) switch
    {
        0 => string.CompareOrdinal(a, b),
        var c => c,
    };

    private static (int Level, int Major, int Minor) Rank(string v)
    {
        var m = System.Text.RegularExpressions.Regex.Match(v, "^v([0-9]+)(?:(alpha|beta)([0-9]+))?$");
        if (!m.Success)
        {
            return (9, 0, 0);
        }
        var major = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        var minor = m.Groups[3].Success ? int.Parse(m.Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
        var level = m.Groups[2].Value switch { "" => 0, "beta" => 1, _ => 2 };
        return (level, -major, -minor);
    }
}
