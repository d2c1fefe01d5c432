using System.Net;
using FsmGateway.Kubernetes.Tests.Support;
using FsmGateway.Testing.Kubernetes;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace FsmGateway.Kubernetes.Tests.FakeApi;

/// <summary>
/// The fake's server-side apply, through the real KubernetesClient: field ownership per manager, removal of what a
/// manager no longer applies, conflicts with other managers unless forced, and no-op applies that change nothing.
/// </summary>
public sealed class FakeApiServerApplyTests() : FakeApiServerTest(new FakeApiServerOptions { Token = "s3cret" })
{
    private static V1Patch Apply(string json) => new(json, V1Patch.PatchType.ApplyPatch);

    private Task<V1Deployment> ApplyDeploymentAsync(string manager, int replicas, string image, bool force = false, string? extraLabel = null)
    {
        var labels = new Dictionary<string, string> { ["app"] = "dp" };
        if (extraLabel is not null)
        {
            labels[extraLabel] = "yes";
        }

        var deployment = new V1Deployment
        {
            ApiVersion = "apps/v1",
            Kind = "Deployment",
            Metadata = new V1ObjectMeta { Name = "dp", Labels = labels },
            Spec = new V1DeploymentSpec
            {
                Replicas = replicas,
                Selector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["app"] = "dp" } },
                Template = new V1PodTemplateSpec
                {
                    Metadata = new V1ObjectMeta { Labels = new Dictionary<string, string> { ["app"] = "dp" } },
                    Spec = new V1PodSpec { Containers = [new V1Container { Name = "main", Image = image }] },
                },
            },
        };
        return Client.AppsV1.PatchNamespacedDeploymentAsync(Apply(KubernetesJson.Serialize(deployment)), "dp", "default", fieldManager: manager, force: force);
    }

    [Fact]
    public async Task Apply_creates_the_object_and_records_the_manager_as_owner_of_its_fields()
    {
        var created = await ApplyDeploymentAsync("ours", 2, "img:1");

        Assert.Equal(2, created.Spec.Replicas);
        var entry = Assert.Single(created.Metadata.ManagedFields);
        Assert.Equal(("ours", "Apply", "FieldsV1"), (entry.Manager, entry.Operation, entry.FieldsType));
        var fields = KubernetesJson.Serialize(entry.FieldsV1);
        Assert.Contains("\"f:replicas\"", fields, StringComparison.Ordinal);
        Assert.Contains("k:{\\u0022name\\u0022:\\u0022main\\u0022}", fields, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Apply_of_the_same_object_again_is_a_no_op_with_no_new_resource_version()
    {
        var first = await ApplyDeploymentAsync("ours", 2, "img:1");
        var second = await ApplyDeploymentAsync("ours", 2, "img:1");

        Assert.Equal(first.Metadata.ResourceVersion, second.Metadata.ResourceVersion);
    }

    [Fact]
    public async Task Apply_removes_a_field_the_manager_applied_before_and_no_longer_names()
    {
        await ApplyDeploymentAsync("ours", 2, "img:1", extraLabel: "temporary");

        var applied = await ApplyDeploymentAsync("ours", 2, "img:1");

        Assert.False(applied.Metadata.Labels.ContainsKey("temporary"));
        Assert.Equal("dp", applied.Metadata.Labels["app"]);
    }

    [Fact]
    public async Task Apply_keeps_fields_another_manager_set_that_it_does_not_name()
    {
        await ApplyDeploymentAsync("ours", 2, "img:1");
        await Client.AppsV1.PatchNamespacedDeploymentAsync(new V1Patch("""{"metadata":{"annotations":{"note":"theirs"}}}""", V1Patch.PatchType.MergePatch), "dp", "default", fieldManager: "someone");

        var applied = await ApplyDeploymentAsync("ours", 3, "img:1");

        Assert.Equal("theirs", applied.Metadata.Annotations["note"]);
        Assert.Equal(3, applied.Spec.Replicas);
    }

    [Fact]
    public async Task Apply_of_a_field_another_manager_changed_conflicts_unless_forced_and_force_takes_it_back()
    {
        await ApplyDeploymentAsync("ours", 2, "img:1");
        var scaled = await Client.AppsV1.PatchNamespacedDeploymentAsync(new V1Patch("""{"spec":{"replicas":5}}""", V1Patch.PatchType.MergePatch), "dp", "default", fieldManager: "kubectl-scale");
        Assert.Equal(5, scaled.Spec.Replicas);

        var conflict = await Assert.ThrowsAsync<HttpOperationException>(() => ApplyDeploymentAsync("ours", 2, "img:1"));
        Assert.Equal(HttpStatusCode.Conflict, conflict.Response.StatusCode);
        Assert.Contains("conflict with \\\"kubectl-scale\\\"", conflict.Response.Content, StringComparison.Ordinal);
        Assert.Contains(".spec.replicas", conflict.Response.Content, StringComparison.Ordinal);
        Assert.Equal(5, (await Client.AppsV1.ReadNamespacedDeploymentAsync("dp", "default")).Spec.Replicas);

        var forced = await ApplyDeploymentAsync("ours", 2, "img:1", force: true);

        Assert.Equal(2, forced.Spec.Replicas);
        Assert.DoesNotContain(forced.Metadata.ManagedFields, e => e.Manager == "kubectl-scale" && KubernetesJson.Serialize(e.FieldsV1).Contains("f:replicas", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Apply_of_the_value_another_manager_also_set_is_no_conflict()
    {
        await ApplyDeploymentAsync("ours", 2, "img:1");
        await Client.AppsV1.PatchNamespacedDeploymentAsync(new V1Patch("""{"spec":{"replicas":4}}""", V1Patch.PatchType.MergePatch), "dp", "default", fieldManager: "someone");

        var applied = await ApplyDeploymentAsync("ours", 4, "img:1");

        Assert.Equal(4, applied.Spec.Replicas);
    }

    [Fact]
    public async Task Apply_without_a_field_manager_is_refused()
    {
        var refused = await Assert.ThrowsAsync<HttpOperationException>(() => Client.CoreV1.PatchNamespacedConfigMapAsync(
            Apply("""{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg"},"data":{"a":"1"}}"""), "cfg", "default"));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.Response.StatusCode);
        Assert.Contains("fieldManager", refused.Response.Content, StringComparison.Ordinal);
    }
}
