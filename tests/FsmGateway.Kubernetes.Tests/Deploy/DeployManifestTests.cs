using FsmGateway.Testing.Kubernetes;
using System.Text.Json.Serialization;
using FsmGateway.Resources;
using k8s;
using k8s.Models;
using YamlDotNet.Core;

namespace FsmGateway.Kubernetes.Tests.Deploy;

/// <summary>
/// Checks what <c>kubectl apply -f deploy/</c> would create: well-formed objects, a hardened controller Deployment,
/// RBAC equal to <see cref="RequiredPermissions"/> (nothing missing, nothing unused, no wildcard), and a Dockerfile
/// that builds through eng/publish.sh and runs non-root.
/// </summary>
public sealed class DeployManifestTests
{
    private const string SystemNamespace = "fsm-system";
    private const string ControllerServiceAccount = "fsm-gateway-controller";
    private const string DataplaneClusterRole = "fsm-gateway-dataplane";
    private const string Image = "ghcr.io/fsm-gateway/fsm-gateway:0.1.0";

    private static readonly string RepoRoot = RepoPaths.Root;
    private static readonly IReadOnlyList<(string File, object Object)> Objects = LoadDeployFolder();

    [Fact]
    public void DeployFolder_HoldsTheExpectedObjects()
    {
        Assert.Contains(Objects, o => o.Object is V1Namespace { Metadata.Name: SystemNamespace });
        Assert.Contains(Objects, o => o.Object is V1ServiceAccount { Metadata.Name: ControllerServiceAccount });
        Assert.Contains(Objects, o => o.Object is V1ClusterRole { Metadata.Name: "fsm-gateway-controller" });
        Assert.DoesNotContain(Objects, o => o.Object is V1ClusterRole { Metadata.Name: DataplaneClusterRole });
        Assert.Single(Objects, o => o.Object is V1Deployment);
        var gatewayClass = Assert.Single(Objects.Select(o => o.Object).OfType<GatewayClassManifest>());
        Assert.Equal("fsm", gatewayClass.Metadata.Name);
        Assert.Equal(GatewayApi.DefaultControllerName, gatewayClass.Spec.ControllerName);
    }

    [Fact]
    public void BackendTrafficPolicyCrd_IsServedAtTheVersionTheGatewayWatches_WithAStatusSubresourceForTheStatusWriter()
    {
        var crd = Assert.Single(Objects.Select(o => o.Object).OfType<k8s.Models.V1CustomResourceDefinition>(), c => c.Spec.Names.Plural == "backendtrafficpolicies");
        Assert.Equal(PolicyApi.Group, crd.Spec.Group);
        Assert.Equal("BackendTrafficPolicy", crd.Spec.Names.Kind);
        Assert.Equal("Namespaced", crd.Spec.Scope);
        var version = Assert.Single(crd.Spec.Versions);
        Assert.Equal((PolicyApi.Version, true, true), (version.Name, version.Served, version.Storage));
        Assert.NotNull(version.Subresources?.Status);
        var spec = version.Schema.OpenAPIV3Schema.Properties["spec"];
        // Every top-level field the reader knows is in the schema, so the API server keeps what the compiler reads.
        Assert.Equal(
            ["circuitBreaker", "healthCheck", "loadBalancer", "proxyProtocol", "targetRefs", "tcpKeepalive", "timeout"],
            spec.Properties.Keys.Order(StringComparer.Ordinal));
        Assert.Contains(RequiredPermissions.Controller, p => p.Group == PolicyApi.Group && p.Resource == "backendtrafficpolicies/status" && p.Verb == "update");
    }

    [Fact]
    public void ClientTrafficPolicyCrd_IsServedAtTheVersionTheGatewayWatches_WithAStatusSubresourceForTheStatusWriter()
    {
        var crd = Assert.Single(Objects.Select(o => o.Object).OfType<k8s.Models.V1CustomResourceDefinition>(), c => c.Spec.Names.Plural == "clienttrafficpolicies");
        Assert.Equal(PolicyApi.Group, crd.Spec.Group);
        Assert.Equal("ClientTrafficPolicy", crd.Spec.Names.Kind);
        Assert.Equal("Namespaced", crd.Spec.Scope);
        var version = Assert.Single(crd.Spec.Versions);
        Assert.Equal((PolicyApi.Version, true, true), (version.Name, version.Served, version.Storage));
        Assert.NotNull(version.Subresources?.Status);
        var spec = version.Schema.OpenAPIV3Schema.Properties["spec"];
        // Every top-level field the reader reads is in the schema, so the API server keeps what the compiler reads.
        foreach (var field in new[] { "bandwidthLimit", "connection", "enableProxyProtocol", "proxyProtocol", "targetRefs", "tcpKeepalive", "timeout" })
        {
            Assert.Contains(field, spec.Properties.Keys);
        }

        Assert.Equal(
            ["bufferLimit", "connectionLimit", "maxAcceptPerSocketEvent", "maxConnectionDuration"],
            spec.Properties["connection"].Properties.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(
            ["connectionInspectionTimeout", "halfClosedTimeout", "idleTimeout", "tlsHandshakeTimeout"],
            spec.Properties["timeout"].Properties["tcp"].Properties.Keys.Order(StringComparer.Ordinal));
        Assert.Contains(RequiredPermissions.Controller, p => p.Group == PolicyApi.Group && p.Resource == "clienttrafficpolicies/status" && p.Verb == "update");
    }

    [Fact]
    public void EveryObject_HasApiVersionKindAndName_AndNamespacedOnesLiveInFsmSystem()
    {
        string[] clusterScoped = ["Namespace", "ClusterRole", "ClusterRoleBinding", "GatewayClass", "CustomResourceDefinition"];
        foreach (var (file, obj) in Objects)
        {
            var o = (IKubernetesObject<V1ObjectMeta>)obj;
            Assert.False(string.IsNullOrEmpty(o.ApiVersion), $"{file}: an object without apiVersion");
            Assert.False(string.IsNullOrEmpty(o.Kind), $"{file}: an object without kind");
            Assert.False(string.IsNullOrEmpty(o.Metadata?.Name), $"{file}: a {o.Kind} without metadata.name");
            // `kubectl apply -f deploy/` gives no -n: a namespaced object without one would land in "default".
            var expected = clusterScoped.Contains(o.Kind) ? null : SystemNamespace;
            Assert.True(expected == o.Metadata.NamespaceProperty, $"{file}: {o.Kind} {o.Metadata.Name} has namespace '{o.Metadata.NamespaceProperty}', expected '{expected}'");
        }
    }

    [Fact]
    public void ControllerDeployment_RunsHardened()
    {
        var deployment = Objects.Select(o => o.Object).OfType<V1Deployment>().Single();
        var pod = deployment.Spec.Template.Spec;
        var container = Assert.Single(pod.Containers);
        var security = container.SecurityContext;

        Assert.True(pod.SecurityContext?.RunAsNonRoot == true || security?.RunAsNonRoot == true, "runAsNonRoot");
        Assert.NotEqual(0, pod.SecurityContext?.RunAsUser ?? security?.RunAsUser);
        Assert.True(security?.ReadOnlyRootFilesystem, "readOnlyRootFilesystem");
        Assert.False(security?.AllowPrivilegeEscalation ?? true, "allowPrivilegeEscalation must be false");
        Assert.Equal(["ALL"], security?.Capabilities?.Drop ?? []);
        Assert.Null(security?.Capabilities?.Add);
        Assert.Equal("RuntimeDefault", pod.SecurityContext?.SeccompProfile?.Type ?? security?.SeccompProfile?.Type);
        Assert.NotNull(container.Resources?.Requests);
        Assert.NotNull(container.Resources?.Limits);
    }

    [Fact]
    public void ControllerDeployment_RunsTheControllerWithLeaderElection()
    {
        var deployment = Objects.Select(o => o.Object).OfType<V1Deployment>().Single();
        var pod = deployment.Spec.Template.Spec;
        var container = Assert.Single(pod.Containers);

        Assert.Equal(2, deployment.Spec.Replicas);
        Assert.Equal(ControllerServiceAccount, pod.ServiceAccountName);
        Assert.Equal(Image, container.Image);
        Assert.Equal("controller", container.Args[0]);
        // The data plane the controller provisions runs the same image as the controller.
        Assert.Equal(Image, container.Args[container.Args.IndexOf("--image") + 1]);
        Assert.Equal("0.0.0.0", container.Args[container.Args.IndexOf("--admin-address") + 1]);
        var podNamespace = Assert.Single(container.Env, e => e.Name == "POD_NAMESPACE");
        Assert.Equal("metadata.namespace", podNamespace.ValueFrom?.FieldRef?.FieldPath);

        var admin = Assert.Single(container.Ports, p => p.ContainerPort == 9901);
        Assert.Equal("/healthz", container.LivenessProbe?.HttpGet?.Path);
        Assert.Equal("/readyz", container.ReadinessProbe?.HttpGet?.Path);
        Assert.All([container.LivenessProbe!.HttpGet.Port, container.ReadinessProbe!.HttpGet.Port],
            port => Assert.True(port.Value == admin.Name || port.Value == "9901", $"probe port {port.Value} is not the admin port"));
    }

    [Fact]
    public void ControllerServiceAccount_IsBoundToItsClusterRoleAndTheLeaseRole()
    {
        var binding = Assert.Single(Objects.Select(o => o.Object).OfType<V1ClusterRoleBinding>(), b => b.RoleRef.Name == "fsm-gateway-controller");
        Assert.Equal("ClusterRole", binding.RoleRef.Kind);
        Assert.Contains(binding.Subjects, IsControllerServiceAccount);

        var leaseBinding = Assert.Single(Objects.Select(o => o.Object).OfType<V1RoleBinding>(), b => b.Subjects.Any(IsControllerServiceAccount) && b.RoleRef.Name == "fsm-gateway-controller-leader-election");
        Assert.Equal(SystemNamespace, leaseBinding.Metadata.NamespaceProperty);
        Assert.Equal("Role", leaseBinding.RoleRef.Kind);
        var leaseRole = Assert.Single(Objects.Select(o => o.Object).OfType<V1Role>(), r => r.Metadata.Name == leaseBinding.RoleRef.Name);
        Assert.Equal(SystemNamespace, leaseRole.Metadata.NamespaceProperty);
        Assert.All(leaseRole.Rules, r => Assert.Equal(["leases"], r.Resources));
    }

    [Fact]
    public void LeasePermissions_AreOnlyInFsmSystem()
    {
        var clusterWide = Objects.Select(o => o.Object).OfType<V1ClusterRole>()
            .SelectMany(r => Expand(r.Rules).Select(p => $"{r.Metadata.Name}: {p}"))
            .Where(p => p.Contains("leases", StringComparison.Ordinal));
        Assert.Empty(clusterWide);
    }

    [Fact]
    public void ControllerRules_EqualRequiredPermissions()
    {
        AssertGrantsExactly(ControllerServiceAccount, ControllerRules(), RequiredPermissions.Controller);
    }

    [Fact]
    public void Dataplane_HasNoApiPermissions_NoRoleIsBoundToItsServiceAccount()
    {
        Assert.Empty(RequiredPermissions.Dataplane);
        var bindings = Objects.Select(o => o.Object).OfType<V1ClusterRoleBinding>().Select(b => (b.Metadata.Name, b.Subjects))
            .Concat(Objects.Select(o => o.Object).OfType<V1RoleBinding>().Select(b => (b.Metadata.Name, b.Subjects)));
        Assert.All(bindings, b => Assert.All(b.Subjects, s => Assert.True(IsControllerServiceAccount(s), $"binding {b.Name} grants {s.Kind} {s.NamespaceProperty}/{s.Name}, not the controller")));
    }

    /// <summary>
    /// The controller may remove the data-plane RBAC earlier versions left (LegacyDataPlaneRbac), and nothing more: no
    /// verb that creates or changes a role or binding (so it can grant nothing), and the ClusterRole only by its name.
    /// </summary>
    [Fact]
    public void ControllerRbacPermissions_OnlyRemoveEarlierVersionsDataPlaneRbac()
    {
        var rbac = RequiredPermissions.Controller.Where(p => p.Group == "rbac.authorization.k8s.io").Select(p => $"{p.Resource} {p.Verb}").Order(StringComparer.Ordinal);
        Assert.Equal(["clusterrolebindings delete", "clusterrolebindings list", "clusterroles delete", "clusterroles get", "rolebindings list"], rbac);
        var roleRules = Objects.Select(o => o.Object).OfType<V1ClusterRole>().SelectMany(r => r.Rules).Where(r => r.Resources.Contains("clusterroles")).ToList();
        var roleRule = Assert.Single(roleRules);
        Assert.Equal(["fsm-gateway-dataplane"], roleRule.ResourceNames);
        Assert.DoesNotContain(Objects.Select(o => o.Object).OfType<V1ClusterRole>().SelectMany(r => Expand(r.Rules)), p => p.Group == "rbac.authorization.k8s.io" && p.Verb is "create" or "patch" or "update" or "bind" or "escalate");
    }

    [Fact]
    public void SecretPermissions_AreOnlyInFsmSystem_AndReadingIsLimitedToTheStreamCa()
    {
        Assert.DoesNotContain(Objects.Select(o => o.Object).OfType<V1ClusterRole>().SelectMany(r => Expand(r.Rules)), p => p.Resource == "secrets");
        var rules = Objects.Select(o => o.Object).OfType<V1Role>().SelectMany(r => r.Rules.Select(rule => (Role: r, Rule: rule))).Where(x => x.Rule.Resources.Contains("secrets")).ToList();
        Assert.NotEmpty(rules);
        Assert.All(rules, x => Assert.Equal(SystemNamespace, x.Role.Metadata.NamespaceProperty));
        var get = Assert.Single(rules, x => x.Rule.Verbs.Contains("get"));
        Assert.Equal(["fsm-gateway-controller-ca"], get.Rule.ResourceNames);
        var update = Assert.Single(rules, x => x.Rule.Verbs.Contains("update"));
        Assert.Equal(["fsm-gateway-controller-ca"], update.Rule.ResourceNames);
        Assert.DoesNotContain(rules, x => x.Rule.Verbs.Any(v => v is "patch" or "delete" or "list" or "watch"));
    }

    [Fact]
    public void RbacRules_HaveNoWildcard()
    {
        foreach (var (file, obj) in Objects)
        {
            var rules = obj switch
            {
                V1ClusterRole r => r.Rules,
                V1Role r => r.Rules,
                _ => null,
            };
            foreach (var rule in rules ?? [])
            {
                string[] values = [.. rule.ApiGroups ?? [], .. rule.Resources ?? [], .. rule.Verbs ?? [], .. rule.ResourceNames ?? []];
                Assert.DoesNotContain(values, v => v.Contains('*', StringComparison.Ordinal));
                Assert.True(rule.NonResourceURLs is null or { Count: 0 }, $"{file}: nonResourceURLs are not needed");
                Assert.True(rule.Verbs is { Count: > 0 }, $"{file}: a rule without verbs");
            }

            Assert.False(obj is V1ClusterRole { AggregationRule: not null }, $"{file}: aggregated roles can grow behind our back");
        }
    }

    [Fact]
    public void Dockerfile_IsMultiStage_PublishesThroughEngPublish_AndRunsNonRoot()
    {
        var lines = File.ReadAllLines(Path.Combine(RepoRoot, "Dockerfile"))
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .ToList();
        static bool Is(string line, string instruction) => line.StartsWith(instruction + " ", StringComparison.OrdinalIgnoreCase);

        Assert.True(lines.Count(l => Is(l, "FROM")) >= 2, "multi-stage: a build stage and a runtime stage");
        Assert.Contains(lines, l => Is(l, "RUN") && l.Contains("eng/publish.sh", StringComparison.Ordinal));
        Assert.True(File.Exists(Path.Combine(RepoRoot, "eng", "publish.sh")), "eng/publish.sh exists");

        var finalStage = lines.Skip(lines.FindLastIndex(l => Is(l, "FROM"))).ToList();
        var user = finalStage.LastOrDefault(l => Is(l, "USER"));
        Assert.NotNull(user);
        var name = user["USER ".Length..].Trim().Split(':')[0];
        Assert.DoesNotContain(name, new[] { "root", "0" });
        Assert.Contains(finalStage, l => Is(l, "ENTRYPOINT") && l.Contains("fsm-gateway", StringComparison.Ordinal));
    }

    private static bool IsControllerServiceAccount(Rbacv1Subject s) =>
        s is { Kind: "ServiceAccount", Name: ControllerServiceAccount, NamespaceProperty: SystemNamespace };

    /// <summary>Everything granted to the controller's ServiceAccount by the bindings in deploy/.</summary>
    private static IEnumerable<(string Group, string Resource, string Verb)> ControllerRules()
    {
        var all = Objects.Select(o => o.Object).ToList();
        var clusterRoles = all.OfType<V1ClusterRole>().ToDictionary(r => r.Metadata.Name);
        var roles = all.OfType<V1Role>().ToDictionary(r => (r.Metadata.NamespaceProperty, r.Metadata.Name));
        foreach (var binding in all.OfType<V1ClusterRoleBinding>().Where(b => b.Subjects.Any(IsControllerServiceAccount)))
        {
            foreach (var p in Expand(clusterRoles[binding.RoleRef.Name].Rules))
            {
                yield return p;
            }
        }

        foreach (var binding in all.OfType<V1RoleBinding>().Where(b => b.Subjects.Any(IsControllerServiceAccount)))
        {
            var rules = binding.RoleRef.Kind == "ClusterRole"
                ? clusterRoles[binding.RoleRef.Name].Rules
                : roles[(binding.Metadata.NamespaceProperty, binding.RoleRef.Name)].Rules;
            foreach (var p in Expand(rules))
            {
                yield return p;
            }
        }
    }

    private static IEnumerable<(string Group, string Resource, string Verb)> Expand(IEnumerable<V1PolicyRule> rules) =>
        from rule in rules
        from g in rule.ApiGroups ?? []
        from r in rule.Resources ?? []
        from v in rule.Verbs
        select (g, r, v);

    private static void AssertGrantsExactly(string identity, IEnumerable<(string Group, string Resource, string Verb)> granted, IReadOnlyList<RequiredPermission> required)
    {
        var grantedSet = granted.ToHashSet();
        var missing = required.Where(p => !grantedSet.Contains((p.Group, p.Resource, p.Verb)))
            .Select(p => $"missing: {Describe(p.Group, p.Resource, p.Verb)} ({p.Why})");
        var unused = grantedSet.Where(g => !required.Any(p => (p.Group, p.Resource, p.Verb) == g))
            .Select(g => $"not in RequiredPermissions: {Describe(g.Group, g.Resource, g.Verb)}");
        var problems = missing.Concat(unused).ToList();
        Assert.True(problems.Count == 0, $"{identity}:\n" + string.Join("\n", problems));
    }

    private static string Describe(string group, string resource, string verb) =>
        $"{verb} {(group.Length == 0 ? "core" : group)}/{resource}";

    private static IReadOnlyList<(string File, object Object)> LoadDeployFolder()
    {
        var typeMap = new Dictionary<string, Type> { ["gateway.networking.k8s.io/v1/GatewayClass"] = typeof(GatewayClassManifest) };
        var files = Directory.GetFiles(Path.Combine(RepoRoot, "deploy"), "*.yaml").Order(StringComparer.Ordinal).ToList();
        Assert.NotEmpty(files);
        var objects = new List<(string, object)>();
        foreach (var file in files)
        {
            // strict: an unknown or misspelt field (readOnlyRootFileSystem) fails here instead of being dropped.
            List<object> loaded;
            try
            {
                loaded = KubernetesYaml.LoadAllFromString(File.ReadAllText(file), typeMap, strict: true);
            }
            catch (YamlException e)
            {
                throw new InvalidDataException($"deploy/{Path.GetFileName(file)} (line {e.Start.Line}): {e.Message}", e);
            }

            Assert.True(loaded.Count > 0, $"{file} holds no object");
            objects.AddRange(loaded.Select(o => (Path.GetFileName(file), o)));
        }

        return objects;
    }

    /// <summary>The GatewayClass fields the test reads (KubernetesClient has no Gateway API models).</summary>
    public sealed class GatewayClassManifest : IKubernetesObject<V1ObjectMeta>
    {
        [JsonPropertyName("apiVersion")]
        public string ApiVersion { get; set; } = "";

        [JsonPropertyName("kind")]
        public string Kind { get; set; } = "";

        [JsonPropertyName("metadata")]
        public V1ObjectMeta Metadata { get; set; } = new();

        [JsonPropertyName("spec")]
        public GatewayClassSpec Spec { get; set; } = new();
    }

    public sealed class GatewayClassSpec
    {
        [JsonPropertyName("controllerName")]
        public string ControllerName { get; set; } = "";

        [JsonPropertyName("description")]
        public string? Description { get; set; }
    }
}
