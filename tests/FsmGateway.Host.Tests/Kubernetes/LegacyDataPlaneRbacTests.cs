using System.Globalization;
using FsmGateway.Host.Tests.Support;
using FsmGateway.Testing.Kubernetes;
using static FsmGateway.Host.Tests.Support.SeedCluster;

namespace FsmGateway.Host.Tests.Kubernetes;

/// <summary>
/// Versions before the secured config stream bound each namespace's data-plane ServiceAccount to ClusterRole
/// <c>fsm-gateway-dataplane</c> through ClusterRoleBindings <c>fsm-gateway-dataplane-&lt;namespace&gt;</c> the
/// controller made, and shipped that ClusterRole in <c>deploy/</c>; upgrading left them (until now, deploy/README.md
/// gave kubectl commands). The controller (a real process against the fake API server) removes those that are its
/// own, once as leader, and keeps everything else.
/// </summary>
public sealed class LegacyDataPlaneRbacTests : IAsyncLifetime
{
    private const string Rbac = "rbac.authorization.k8s.io/v1";
    private const string ManagedBy = "app.kubernetes.io/managed-by: fsm-gateway-controller";

    private SeedCluster _cluster = null!;

    public async Task InitializeAsync()
    {
        _cluster = await SeedCluster.StartAsync("legacy-rbac");
    }

    public async Task DisposeAsync()
    {
        await _cluster.DisposeAsync();
    }

    [Fact]
    public async Task Leftover_data_plane_bindings_and_cluster_role_of_earlier_versions_are_removed_and_unrelated_ones_are_kept()
    {
        // Made by earlier versions of this controller: with its controller-name annotation, and (the first versions)
        // with the label only. Then the ClusterRole deploy/ shipped.
        ApplyBinding("fsm-gateway-dataplane-httpbin", "httpbin", $"labels: {{ {ManagedBy} }}\n  annotations: {{ gateway.fsm-gateway.io/controller-name: {FsmGateway.Resources.GatewayApi.DefaultControllerName} }}");
        ApplyBinding("fsm-gateway-dataplane-apps", "apps", $"labels: {{ {ManagedBy} }}");
        _cluster.Server.ApplyYaml("""
            apiVersion: rbac.authorization.k8s.io/v1
            kind: ClusterRole
            metadata:
              name: fsm-gateway-dataplane
              labels: { app.kubernetes.io/name: fsm-gateway, app.kubernetes.io/component: dataplane }
            rules:
              - apiGroups: [""]
                resources: ["services"]
                verbs: ["list", "watch"]
            """);

        // Not ours: another controller's (its name in the annotation), one someone made by hand under a look-alike
        // name (no managed-by label), ours by label but binding a user, and the controller's own binding. (None of
        // them refers to fsm-gateway-dataplane: one that does keeps it, see below.)
        ApplyBinding("fsm-gateway-dataplane-other", "other", $"labels: {{ {ManagedBy} }}\n  annotations: {{ gateway.fsm-gateway.io/controller-name: example.com/another-controller }}", role: "view");
        ApplyBinding("fsm-gateway-dataplane-custom", "custom", "labels: { team: platform }", role: "view");
        ApplyBinding("fsm-gateway-dataplane-user", "user", $"labels: {{ {ManagedBy} }}", role: "view", subject: "kind: User\n    name: alice\n    apiGroup: rbac.authorization.k8s.io");
        _cluster.Server.ApplyYaml(File.ReadAllText(RepoPaths.Of("deploy/10-rbac.yaml")));

        await using var controller = StartController();
        var cleaned = await controller.WaitForLineAsync("Clean-up of earlier versions' data-plane RBAC: removed", TimeSpan.FromSeconds(60));
        Assert.Contains("removed 2 ClusterRoleBinding(s) and 1 ClusterRole(s)", cleaned, StringComparison.Ordinal);
        Assert.Null(_cluster.Server.Get(Rbac, "ClusterRoleBinding", null, "fsm-gateway-dataplane-httpbin"));
        Assert.Null(_cluster.Server.Get(Rbac, "ClusterRoleBinding", null, "fsm-gateway-dataplane-apps"));
        Assert.Null(_cluster.Server.Get(Rbac, "ClusterRole", null, "fsm-gateway-dataplane"));
        foreach (var kept in new[] { "fsm-gateway-dataplane-other", "fsm-gateway-dataplane-custom", "fsm-gateway-dataplane-user", "fsm-gateway-controller" })
        {
            Assert.NotNull(_cluster.Server.Get(Rbac, "ClusterRoleBinding", null, kept));
        }

        Assert.NotNull(_cluster.Server.Get(Rbac, "ClusterRole", null, "fsm-gateway-controller"));
        Assert.Contains("Removed ClusterRoleBinding fsm-gateway-dataplane-httpbin", controller.Output, StringComparison.Ordinal);

        // The controller goes on as usual (the Gateway is accepted), and cleans up once only.
        await Net.EventuallyAsync(() => Task.FromResult(_cluster.GatewayStatus() is { } s && Is(s, "Accepted", "True", "Accepted")), "the Gateway is accepted", TimeSpan.FromSeconds(60));
        Assert.Equal(1, _cluster.Server.Requests.Count(r => r is { Resource: "clusterroles", Verb: "get" }));
        Assert.Equal(0, await controller.TerminateAsync());
    }

    [Fact]
    public async Task The_cluster_role_is_kept_while_a_binding_that_is_not_ours_still_refers_to_it()
    {
        ApplyBinding("fsm-gateway-dataplane-httpbin", "httpbin", $"labels: {{ {ManagedBy} }}");
        ApplyBinding("monitoring-reads-like-a-data-plane", "monitoring", "labels: { team: platform }");
        ApplyShippedRole();

        await using var controller = StartController();
        var cleaned = await controller.WaitForLineAsync("Clean-up of earlier versions' data-plane RBAC: removed", TimeSpan.FromSeconds(60));
        Assert.Contains("removed 1 ClusterRoleBinding(s) and 0 ClusterRole(s)", cleaned, StringComparison.Ordinal);
        Assert.Contains("Kept ClusterRole fsm-gateway-dataplane: bindings not made by this controller still refer to it (ClusterRoleBinding(s) monitoring-reads-like-a-data-plane; RoleBinding(s) none)", controller.Output, StringComparison.Ordinal);
        Assert.NotNull(_cluster.Server.Get(Rbac, "ClusterRole", null, "fsm-gateway-dataplane"));
        Assert.NotNull(_cluster.Server.Get(Rbac, "ClusterRoleBinding", null, "monitoring-reads-like-a-data-plane"));
        Assert.Null(_cluster.Server.Get(Rbac, "ClusterRoleBinding", null, "fsm-gateway-dataplane-httpbin"));
        Assert.Equal(0, await controller.TerminateAsync());
    }

    /// <summary>
    /// A RoleBinding grants a ClusterRole's rules in its namespace: one in any namespace that refers to
    /// fsm-gateway-dataplane keeps it (before, only ClusterRoleBindings were checked, and the ClusterRole was deleted
    /// from under it).
    /// </summary>
    [Fact]
    public async Task The_cluster_role_is_kept_while_a_namespaced_role_binding_refers_to_it()
    {
        ApplyBinding("fsm-gateway-dataplane-httpbin", "httpbin", $"labels: {{ {ManagedBy} }}");
        ApplyShippedRole();
        _cluster.Server.ApplyYaml("""
            apiVersion: rbac.authorization.k8s.io/v1
            kind: RoleBinding
            metadata: { name: ci-reads-services, namespace: ci }
            roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: fsm-gateway-dataplane }
            subjects:
              - { kind: ServiceAccount, name: builder, namespace: ci }
            """);

        await using var controller = StartController();
        var cleaned = await controller.WaitForLineAsync("Clean-up of earlier versions' data-plane RBAC: removed", TimeSpan.FromSeconds(60));
        Assert.Contains("removed 1 ClusterRoleBinding(s) and 0 ClusterRole(s)", cleaned, StringComparison.Ordinal);
        Assert.Contains("Kept ClusterRole fsm-gateway-dataplane: bindings not made by this controller still refer to it (ClusterRoleBinding(s) none; RoleBinding(s) ci/ci-reads-services)", controller.Output, StringComparison.Ordinal);
        Assert.NotNull(_cluster.Server.Get(Rbac, "ClusterRole", null, "fsm-gateway-dataplane"));
        Assert.NotNull(_cluster.Server.Get(Rbac, "RoleBinding", "ci", "ci-reads-services"));
        Assert.DoesNotContain(_cluster.Server.Requests, r => r is { Resource: "clusterroles", Verb: "delete" });
        Assert.Equal(0, await controller.TerminateAsync());
    }

    /// <summary>Without the permission to list RoleBindings the ClusterRole cannot be proved unused: it is kept, with a warning saying how to check by hand; the bindings that are ours still go.</summary>
    [Fact]
    public async Task The_cluster_role_is_kept_with_a_warning_when_role_bindings_cannot_be_listed()
    {
        ApplyBinding("fsm-gateway-dataplane-httpbin", "httpbin", $"labels: {{ {ManagedBy} }}");
        ApplyShippedRole();
        _cluster.Server.FailRequest = r => r is { Resource: "rolebindings", Verb: "list" }
            ? new FakeApiException(403, "Forbidden", "rolebindings.rbac.authorization.k8s.io is forbidden: User \"system:serviceaccount:fsm-system:fsm-gateway-controller\" cannot list resource \"rolebindings\" at the cluster scope")
            : null;

        await using var controller = StartController();
        var kept = await controller.WaitForLineAsync("Kept ClusterRole fsm-gateway-dataplane: RoleBindings cannot be listed", TimeSpan.FromSeconds(60));
        Assert.Contains("warn:", kept, StringComparison.Ordinal);
        Assert.Contains("HttpOperationException", kept, StringComparison.Ordinal);
        Assert.Contains("Forbidden", kept, StringComparison.Ordinal);
        var cleaned = await controller.WaitForLineAsync("Clean-up of earlier versions' data-plane RBAC: removed", TimeSpan.FromSeconds(60));
        Assert.Contains("removed 1 ClusterRoleBinding(s) and 0 ClusterRole(s)", cleaned, StringComparison.Ordinal);
        Assert.NotNull(_cluster.Server.Get(Rbac, "ClusterRole", null, "fsm-gateway-dataplane"));
        Assert.DoesNotContain(_cluster.Server.Requests, r => r is { Resource: "clusterroles", Verb: "delete" });
        await Net.EventuallyAsync(() => Task.FromResult(_cluster.GatewayStatus() is { } s && Is(s, "Accepted", "True", "Accepted")), "the Gateway is accepted", TimeSpan.FromSeconds(60));
        Assert.Equal(0, await controller.TerminateAsync());
    }

    private void ApplyShippedRole() => _cluster.Server.ApplyYaml("""
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata:
          name: fsm-gateway-dataplane
          labels: { app.kubernetes.io/name: fsm-gateway, app.kubernetes.io/component: dataplane }
        rules: []
        """);

    /// <summary>RBAC from before this (no list of bindings): said once with the kubectl commands; nothing else is held up.</summary>
    [Fact]
    public async Task Without_permission_to_clean_up_the_controller_says_how_and_goes_on()
    {
        ApplyBinding("fsm-gateway-dataplane-httpbin", "httpbin", $"labels: {{ {ManagedBy} }}");
        _cluster.Server.FailRequest = r => r.Resource is "clusterrolebindings" or "clusterroles"
            ? new FakeApiException(403, "Forbidden", $"clusterrolebindings.rbac.authorization.k8s.io is forbidden: User \"system:serviceaccount:fsm-system:fsm-gateway-controller\" cannot {r.Verb} resource \"{r.Resource}\"")
            : null;

        await using var controller = StartController();
        var refused = await controller.WaitForLineAsync("Clean-up of earlier versions' data-plane RBAC is not allowed", TimeSpan.FromSeconds(60));
        Assert.Contains("warn:", refused, StringComparison.Ordinal);
        Assert.Contains("kubectl delete clusterrolebinding -l app.kubernetes.io/managed-by=fsm-gateway-controller", refused, StringComparison.Ordinal);
        await Net.EventuallyAsync(() => Task.FromResult(_cluster.GatewayStatus() is { } s && Is(s, "Accepted", "True", "Accepted")), "the Gateway is accepted", TimeSpan.FromSeconds(60));
        Assert.NotNull(_cluster.Server.Get(Rbac, "ClusterRoleBinding", null, "fsm-gateway-dataplane-httpbin"));
        Assert.Equal(1, controller.CountLines("data-plane RBAC is not allowed"));
        Assert.Equal(0, await controller.TerminateAsync());
    }

    private void ApplyBinding(string name, string ns, string metadata, string role = "fsm-gateway-dataplane", string? subject = null) =>
        _cluster.Server.ApplyYaml($"""
            apiVersion: rbac.authorization.k8s.io/v1
            kind: ClusterRoleBinding
            metadata:
              name: {name}
              {metadata}
            roleRef: {"{"} apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role} {"}"}
            subjects:
              - {subject ?? $"kind: ServiceAccount\n    name: fsm-gateway\n    namespace: {ns}"}
            """);

    private GatewayProcess StartController() => GatewayProcess.Start(
        "controller", "--stream-insecure", "--kubeconfig", _cluster.Kubeconfig, "--admin-port", "0", "--no-leader-election",
        "--stream-address", "127.0.0.1", "--stream-port", Net.FreePort().ToString(CultureInfo.InvariantCulture));
}
