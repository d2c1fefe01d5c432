using System.Net;
using System.Text.Json.Nodes;
using FsmGateway.Configuration;
using FsmGateway.Kubernetes.Api;
using FsmGateway.Kubernetes.Tests.Watch;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;

namespace FsmGateway.Kubernetes.Tests.Contract;

/// <summary>
/// What FsmGateway relies on the API server for, checked on the fake and, when <c>KUBECONFIG</c> is set, on a real
/// cluster: so the fake can be compared with the real thing wherever a cluster exists.
/// </summary>
public sealed class ApiContractTests
{
    private const string Group = "gateway.networking.k8s.io";

    [KubernetesClusterFact]
    public void A_cluster_is_configured_for_the_contract_tests() => Assert.True(ContractTarget.ClusterConfigured);

    [Theory]
    [MemberData(nameof(ContractTarget.All), MemberType = typeof(ContractTarget))]
    public async Task Status_writes_keep_the_generation_and_spec_writes_bump_it(string target)
    {
        await using var t = await ContractTarget.CreateAsync(target);
        var version = await ApiDiscovery.ServedVersionAsync(t.Client, ApiKind.Gateway, CancellationToken.None);
        Assert.Equal("v1", version);
        var created = await t.Client.CustomObjects.CreateNamespacedCustomObjectAsync<JsonObject>(Gateway(8000), Group, "v1", t.Namespace, "gateways");
        Assert.Equal("1", created["metadata"]!["generation"]!.ToJsonString());

        created["status"] = JsonNode.Parse("""{"conditions":[{"type":"Accepted","status":"True","reason":"Accepted","message":"","lastTransitionTime":"2026-01-01T00:00:00Z","observedGeneration":1}]}""");
        var afterStatus = await t.Client.CustomObjects.ReplaceNamespacedCustomObjectStatusAsync<JsonObject>(created, Group, "v1", t.Namespace, "gateways", "gw");
        Assert.Equal("1", afterStatus["metadata"]!["generation"]!.ToJsonString());
        Assert.Equal("Accepted", afterStatus["status"]!["conditions"]![0]!["type"]!.GetValue<string>());

        afterStatus["spec"]!["listeners"]![0]!["port"] = 8001;
        var afterSpec = await t.Client.CustomObjects.ReplaceNamespacedCustomObjectAsync<JsonObject>(afterStatus, Group, "v1", t.Namespace, "gateways", "gw");
        Assert.Equal("2", afterSpec["metadata"]!["generation"]!.ToJsonString());
    }

    [Theory]
    [MemberData(nameof(ContractTarget.All), MemberType = typeof(ContractTarget))]
    public async Task A_write_with_a_stale_resourceVersion_is_a_409(string target)
    {
        await using var t = await ContractTarget.CreateAsync(target);
        var created = await t.Client.CustomObjects.CreateNamespacedCustomObjectAsync<JsonObject>(Gateway(8000), Group, "v1", t.Namespace, "gateways");
        var stale = (JsonObject)created.DeepClone();
        created["metadata"]!["labels"] = new JsonObject { ["changed"] = "yes" };
        await t.Client.CustomObjects.ReplaceNamespacedCustomObjectAsync<JsonObject>(created, Group, "v1", t.Namespace, "gateways", "gw");

        stale["status"] = new JsonObject { ["conditions"] = new JsonArray() };
        var error = await Assert.ThrowsAsync<HttpOperationException>(() =>
            t.Client.CustomObjects.ReplaceNamespacedCustomObjectStatusAsync<JsonObject>(stale, Group, "v1", t.Namespace, "gateways", "gw"));
        Assert.Equal(HttpStatusCode.Conflict, error.Response.StatusCode);
    }

    [Theory]
    [MemberData(nameof(ContractTarget.All), MemberType = typeof(ContractTarget))]
    public async Task The_watch_source_sees_creates_updates_and_deletes(string target)
    {
        await using var t = await ContractTarget.CreateAsync(target);
        var source = new KubernetesWatchSource(t.Client, ApiKind.Gateway, new KubernetesOptions(), TimeProvider.System, NullLogger.Instance);
        using var recorder = new EventRecorder(source);
        var at = await recorder.WaitForAsync(e => e is ConfigEvent.SourceSynced, what: "synced");

        var created = await t.Client.CustomObjects.CreateNamespacedCustomObjectAsync<JsonObject>(Gateway(8000), Group, "v1", t.Namespace, "gateways");
        at = await recorder.WaitForAsync(e => e is ConfigEvent.Upserted { Resource.Metadata.Name: "gw" } u && u.Resource.Metadata.Namespace == t.Namespace, at, "created");
        created["spec"]!["listeners"]![0]!["port"] = 8001;
        await t.Client.CustomObjects.ReplaceNamespacedCustomObjectAsync<JsonObject>(created, Group, "v1", t.Namespace, "gateways", "gw");
        at = await recorder.WaitForAsync(e => e is ConfigEvent.Upserted { Resource: Resources.Gateway g } && g.Metadata.Namespace == t.Namespace && g.Listeners[0].Port == 8001, at, "updated");
        await t.Client.CustomObjects.DeleteNamespacedCustomObjectAsync(Group, "v1", t.Namespace, "gateways", "gw");
        await recorder.WaitForAsync(e => e is ConfigEvent.Deleted d && d.Key.Namespace == t.Namespace, at, "deleted");
    }

    [Theory]
    [MemberData(nameof(ContractTarget.All), MemberType = typeof(ContractTarget))]
    public async Task Deleting_an_owner_deletes_its_dependents(string target)
    {
        await using var t = await ContractTarget.CreateAsync(target);
        var owner = await t.Client.CustomObjects.CreateNamespacedCustomObjectAsync<JsonObject>(Gateway(8000), Group, "v1", t.Namespace, "gateways");
        await t.Client.CoreV1.CreateNamespacedServiceAsync(
            new V1Service
            {
                Metadata = new V1ObjectMeta
                {
                    Name = "owned",
                    OwnerReferences = [new V1OwnerReference { ApiVersion = $"{Group}/v1", Kind = "Gateway", Name = "gw", Uid = owner["metadata"]!["uid"]!.GetValue<string>() }],
                },
                Spec = new V1ServiceSpec { Ports = [new V1ServicePort { Port = 80 }] },
            },
            t.Namespace);

        await t.Client.CustomObjects.DeleteNamespacedCustomObjectAsync(Group, "v1", t.Namespace, "gateways", "gw");

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while ((await t.Client.CoreV1.ListNamespacedServiceAsync(t.Namespace)).Items.Any(s => s.Metadata.Name == "owned"))
        {
            Assert.True(DateTime.UtcNow < deadline, "the dependent Service outlived its owner by 30 s");
            await Task.Delay(200);
        }
    }

    private static JsonObject Gateway(int port) => new()
    {
        ["apiVersion"] = $"{Group}/v1",
        ["kind"] = "Gateway",
        ["metadata"] = new JsonObject { ["name"] = "gw" },
        ["spec"] = new JsonObject
        {
            ["gatewayClassName"] = "fsm-contract",
            ["listeners"] = new JsonArray(new JsonObject { ["name"] = "tcp", ["port"] = port, ["protocol"] = "TCP" }),
        },
    };
}
