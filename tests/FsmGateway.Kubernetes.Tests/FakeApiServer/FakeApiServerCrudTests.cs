using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using FsmGateway.Kubernetes.Tests.Support;
using FsmGateway.Testing.Kubernetes;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace FsmGateway.Kubernetes.Tests.FakeApi;

/// <summary>Discovery, CRUD, paging, selectors, conflicts and generation, through the real KubernetesClient.</summary>
public sealed class FakeApiServerCrudTests() : FakeApiServerTest(new FakeApiServerOptions { Token = "s3cret", InstallGatewayApiCrds = true })
{
    private const string Gw = "gateway.networking.k8s.io";
    private static V1Service Service(string name, string ns = "default", IDictionary<string, string>? labels = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns, Labels = labels },
        Spec = new V1ServiceSpec { Ports = [new V1ServicePort { Port = 80 }] },
    };

    private static JsonObject TcpRoute(string name, int port = 8080) => new()
    {
        ["apiVersion"] = $"{Gw}/v1",
        ["kind"] = "TCPRoute",
        ["metadata"] = new JsonObject { ["name"] = name },
        ["spec"] = new JsonObject
        {
            ["parentRefs"] = new JsonArray(new JsonObject { ["name"] = "gw" }),
            ["rules"] = new JsonArray(new JsonObject { ["backendRefs"] = new JsonArray(new JsonObject { ["name"] = "httpbin", ["port"] = port }) }),
        },
    };

    [Fact]
    public async Task FakeApiServer_discovery_lists_groups_versions_and_resources()
    {
        var groups = await Client.Apis.GetAPIVersionsAsync();
        var gateway = Assert.Single(groups.Groups, g => g.Name == Gw);
        Assert.Equal("v1", gateway.PreferredVersion.Version);
        Assert.Contains(gateway.Versions, v => v.Version == "v1beta1");
        Assert.Contains(groups.Groups, g => g.Name == "coordination.k8s.io");
        Assert.Contains(groups.Groups, g => g.Name == "apps");

        var core = await Client.Core.GetAPIVersionsAsync();
        Assert.Contains("v1", core.Versions);

        var resources = await Client.CustomObjects.GetAPIResourcesAsync(Gw, "v1");
        Assert.Equal($"{Gw}/v1", resources.GroupVersion);
        var gateways = Assert.Single(resources.Resources, r => r.Name == "gateways");
        Assert.True(gateways.Namespaced);
        Assert.Equal("Gateway", gateways.Kind);
        Assert.Contains("watch", gateways.Verbs);
        Assert.Contains(resources.Resources, r => r.Name == "gateways/status");
        Assert.Contains(resources.Resources, r => r.Name == "tcproutes/status");
        Assert.DoesNotContain(resources.Resources, r => r.Name == "referencegrants/status");
        Assert.False(resources.Resources.Single(r => r.Name == "gatewayclasses").Namespaced);

        var coreResources = await Client.CoreV1.GetAPIResourcesAsync();
        Assert.Contains(coreResources.Resources, r => r.Name == "services" && r.ShortNames.Contains("svc"));

        var missing = await Assert.ThrowsAsync<HttpOperationException>(() => Client.CustomObjects.GetAPIResourcesAsync("nope.example.com", "v1"));
        Assert.Equal(HttpStatusCode.NotFound, missing.Response.StatusCode);
        var status = JsonNode.Parse(missing.Response.Content)!;
        Assert.Equal("Status", status["kind"]!.ToString());
        Assert.Equal(404, status["code"]!.GetValue<int>());
    }

    [Fact]
    public async Task FakeApiServer_service_create_read_replace_patch_delete()
    {
        var created = await Client.CoreV1.CreateNamespacedServiceAsync(Service("web"), "default");
        Assert.False(string.IsNullOrEmpty(created.Metadata.Uid));
        Assert.Equal(1, created.Metadata.Generation);
        Assert.NotNull(created.Metadata.CreationTimestamp);
        Assert.False(string.IsNullOrEmpty(created.Spec.ClusterIP));
        Assert.Equal("v1", created.ApiVersion);
        Assert.Equal("Service", created.Kind);

        var again = await Assert.ThrowsAsync<HttpOperationException>(() => Client.CoreV1.CreateNamespacedServiceAsync(Service("web"), "default"));
        Assert.Equal(HttpStatusCode.Conflict, again.Response.StatusCode);
        Assert.Contains("AlreadyExists", again.Response.Content, StringComparison.Ordinal);

        var read = await Client.CoreV1.ReadNamespacedServiceAsync("web", "default");
        Assert.Equal(created.Metadata.Uid, read.Metadata.Uid);
        Assert.Equal(created.Metadata.ResourceVersion, read.Metadata.ResourceVersion);

        read.Spec.Ports[0].Port = 81;
        var replaced = await Client.CoreV1.ReplaceNamespacedServiceAsync(read, "web", "default");
        Assert.Equal(81, replaced.Spec.Ports[0].Port);
        Assert.True(long.Parse(replaced.Metadata.ResourceVersion, System.Globalization.CultureInfo.InvariantCulture) > long.Parse(read.Metadata.ResourceVersion, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(2, replaced.Metadata.Generation);
        Assert.Equal(created.Metadata.Uid, replaced.Metadata.Uid);

        var patch = new V1Patch("""{"metadata":{"labels":{"tier":"front"}}}""", V1Patch.PatchType.MergePatch);
        var patched = await Client.CoreV1.PatchNamespacedServiceAsync(patch, "web", "default");
        Assert.Equal("front", patched.Metadata.Labels["tier"]);
        Assert.Equal(2, patched.Metadata.Generation); // metadata only

        var jsonPatch = new V1Patch("""[{"op":"replace","path":"/spec/ports/0/port","value":82}]""", V1Patch.PatchType.JsonPatch);
        patched = await Client.CoreV1.PatchNamespacedServiceAsync(jsonPatch, "web", "default");
        Assert.Equal(82, patched.Spec.Ports[0].Port);

        var status = new V1Patch("""{"status":{"loadBalancer":{"ingress":[{"ip":"10.0.0.7"}]}}}""", V1Patch.PatchType.MergePatch);
        var withStatus = await Client.CoreV1.PatchNamespacedServiceStatusAsync(status, "web", "default");
        Assert.Equal("10.0.0.7", withStatus.Status.LoadBalancer.Ingress[0].Ip);
        Assert.Equal(patched.Metadata.Generation, withStatus.Metadata.Generation);

        await Client.CoreV1.DeleteNamespacedServiceAsync("web", "default");
        var gone = await Assert.ThrowsAsync<HttpOperationException>(() => Client.CoreV1.ReadNamespacedServiceAsync("web", "default"));
        Assert.Equal(HttpStatusCode.NotFound, gone.Response.StatusCode);
        Assert.Contains("services \\\"web\\\" not found", gone.Response.Content, StringComparison.Ordinal);
        var deleteAgain = await Assert.ThrowsAsync<HttpOperationException>(() => Client.CoreV1.DeleteNamespacedServiceAsync("web", "default"));
        Assert.Equal(HttpStatusCode.NotFound, deleteAgain.Response.StatusCode);

        var verbs = Server.Requests.Where(r => r.Resource == "services").Select(r => (r.Verb, r.Subresource)).ToList();
        Assert.Contains(("create", null), verbs);
        Assert.Contains(("update", null), verbs);
        Assert.Contains(("patch", "status"), verbs);
        Assert.Contains(("delete", null), verbs);
        Assert.Contains(Server.Requests, r => r.Verb == "get" && r.Resource == "services" && r.StatusCode == 404 && r.Name == "web");
    }

    [Fact]
    public async Task FakeApiServer_requires_the_bearer_token_when_configured()
    {
        var anonymous = new KubernetesClientConfiguration { Host = Server.Url.ToString() };
        using var client = new k8s.Kubernetes(anonymous);
        var denied = await Assert.ThrowsAsync<HttpOperationException>(() => client.CoreV1.ListNamespacedServiceAsync("default"));
        Assert.Equal(HttpStatusCode.Unauthorized, denied.Response.StatusCode);
        Assert.Empty((await Client.CoreV1.ListNamespacedServiceAsync("default")).Items);

        // the kubeconfig carries the token: a client built from the file gets in
        var folder = Directory.CreateTempSubdirectory("fake-kubeconfig-");
        try
        {
            var path = Server.WriteKubeconfig(Path.Combine(folder.FullName, "config"));
            using var fromFile = new k8s.Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(path));
            Assert.Empty((await fromFile.CoreV1.ListNamespacedServiceAsync("default")).Items);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
        Assert.Contains(Server.Requests, r => r.StatusCode == 401);
    }

    [Fact]
    public async Task FakeApiServer_tcproute_with_custom_objects_and_generation_only_on_spec_changes()
    {
        var created = JsonSerializer.SerializeToNode(await Client.CustomObjects.CreateNamespacedCustomObjectAsync(TcpRoute("r1"), Gw, "v1", "apps", "tcproutes"))!;
        Assert.Equal(1, created["metadata"]!["generation"]!.GetValue<long>());
        Assert.Equal($"{Gw}/v1", created["apiVersion"]!.ToString());

        // status through the subresource: no generation bump, spec untouched
        var withStatus = (JsonObject)created.DeepClone();
        withStatus["status"] = new JsonObject { ["parents"] = new JsonArray(new JsonObject { ["controllerName"] = "flomesh.io/gateway-controller" }) };
        withStatus["spec"]!["rules"] = new JsonArray();
        var afterStatus = JsonSerializer.SerializeToNode(await Client.CustomObjects.ReplaceNamespacedCustomObjectStatusAsync(withStatus, Gw, "v1", "apps", "tcproutes", "r1"))!;
        Assert.Equal(1, afterStatus["metadata"]!["generation"]!.GetValue<long>());
        Assert.Equal("flomesh.io/gateway-controller", afterStatus["status"]!["parents"]![0]!["controllerName"]!.ToString());
        Assert.Single(afterStatus["spec"]!["rules"]!.AsArray());

        // a main-resource write ignores status, bumps generation when spec changes
        var specChange = (JsonObject)afterStatus.DeepClone();
        specChange["spec"]!["rules"]![0]!["backendRefs"]![0]!["port"] = 9090;
        specChange["status"] = new JsonObject();
        var afterSpec = JsonSerializer.SerializeToNode(await Client.CustomObjects.ReplaceNamespacedCustomObjectAsync(specChange, Gw, "v1", "apps", "tcproutes", "r1"))!;
        Assert.Equal(2, afterSpec["metadata"]!["generation"]!.GetValue<long>());
        Assert.Equal("flomesh.io/gateway-controller", afterSpec["status"]!["parents"]![0]!["controllerName"]!.ToString());

        // a label change is metadata: no bump
        var label = new V1Patch("""{"metadata":{"labels":{"a":"b"}}}""", V1Patch.PatchType.MergePatch);
        var afterLabel = JsonSerializer.SerializeToNode(await Client.CustomObjects.PatchNamespacedCustomObjectAsync(label, Gw, "v1", "apps", "tcproutes", "r1"))!;
        Assert.Equal(2, afterLabel["metadata"]!["generation"]!.GetValue<long>());

        // server-side view, and a status write the way a controller does it
        Server.SetStatus($"{Gw}/v1", "TCPRoute", "apps", "r1", new JsonObject { ["parents"] = new JsonArray() });
        var stored = Server.Get($"{Gw}/v1", "TCPRoute", "apps", "r1")!;
        Assert.Equal(2, stored["metadata"]!["generation"]!.GetValue<long>());
        Assert.Empty(stored["status"]!["parents"]!.AsArray());

        var list = JsonSerializer.SerializeToNode(await Client.CustomObjects.ListClusterCustomObjectAsync(Gw, "v1", "tcproutes"))!;
        Assert.Equal("TCPRouteList", list["kind"]!.ToString());
        Assert.Equal("TCPRoute", list["items"]![0]!["kind"]!.ToString());
    }

    [Fact]
    public async Task FakeApiServer_gateway_is_served_at_v1_and_v1beta1()
    {
        Server.Apply(new JsonObject
        {
            ["apiVersion"] = $"{Gw}/v1",
            ["kind"] = "Gateway",
            ["metadata"] = new JsonObject { ["name"] = "gw", ["namespace"] = "infra" },
            ["spec"] = new JsonObject { ["gatewayClassName"] = "fsm" },
        });
        var beta = JsonSerializer.SerializeToNode(await Client.CustomObjects.GetNamespacedCustomObjectAsync(Gw, "v1beta1", "infra", "gateways", "gw"))!;
        Assert.Equal($"{Gw}/v1beta1", beta["apiVersion"]!.ToString());
        Assert.Equal("fsm", beta["spec"]!["gatewayClassName"]!.ToString());
    }

    [Fact]
    public async Task FakeApiServer_stale_update_is_a_409_conflict()
    {
        var v1 = await Client.CoreV1.CreateNamespacedServiceAsync(Service("web"), "default");
        var fresh = await Client.CoreV1.ReadNamespacedServiceAsync("web", "default");
        fresh.Metadata.Labels = new Dictionary<string, string> { ["x"] = "1" };
        await Client.CoreV1.ReplaceNamespacedServiceAsync(fresh, "web", "default");

        v1.Metadata.Labels = new Dictionary<string, string> { ["x"] = "2" };
        var conflict = await Assert.ThrowsAsync<HttpOperationException>(() => Client.CoreV1.ReplaceNamespacedServiceAsync(v1, "web", "default"));
        Assert.Equal(HttpStatusCode.Conflict, conflict.Response.StatusCode);
        var status = JsonNode.Parse(conflict.Response.Content)!;
        Assert.Equal("Conflict", status["reason"]!.ToString());
        Assert.Equal(409, status["code"]!.GetValue<int>());
        Assert.Contains("the object has been modified", status["message"]!.ToString(), StringComparison.Ordinal);
        Assert.Equal("1", (await Client.CoreV1.ReadNamespacedServiceAsync("web", "default")).Metadata.Labels["x"]);
    }

    [Fact]
    public async Task FakeApiServer_lists_in_pages_with_limit_and_continue()
    {
        foreach (var name in new[] { "a", "b", "c" })
        {
            await Client.CoreV1.CreateNamespacedServiceAsync(Service(name), "default");
        }
        await Client.CoreV1.CreateNamespacedServiceAsync(Service("z", ns: "other"), "other");

        var names = new List<string>();
        string? token = null;
        string? rv = null;
        var pages = 0;
        do
        {
            var page = await Client.CoreV1.ListNamespacedServiceAsync("default", limit: 1, continueParameter: token);
            pages++;
            names.AddRange(page.Items.Select(s => s.Metadata.Name));
            rv ??= page.Metadata.ResourceVersion;
            Assert.Equal(rv, page.Metadata.ResourceVersion); // one consistent snapshot
            token = page.Metadata.ContinueProperty;
            if (pages == 1)
            {
                // a write between pages does not show up in the paged list
                await Client.CoreV1.CreateNamespacedServiceAsync(Service("b2"), "default");
            }
        }
        while (!string.IsNullOrEmpty(token));
        Assert.Equal(["a", "b", "c"], names);
        Assert.Equal(3, pages);

        var all = await Client.CoreV1.ListServiceForAllNamespacesAsync();
        Assert.Equal(5, all.Items.Count);
        Assert.Equal("ServiceList", all.Kind);

        var compactedToken = (await Client.CoreV1.ListNamespacedServiceAsync("default", limit: 2)).Metadata.ContinueProperty;
        Server.Compact();
        var expired = await Assert.ThrowsAsync<HttpOperationException>(() => Client.CoreV1.ListNamespacedServiceAsync("default", limit: 2, continueParameter: compactedToken));
        Assert.Equal(HttpStatusCode.Gone, expired.Response.StatusCode);
    }

    [Fact]
    public async Task FakeApiServer_page_size_limit_pages_unlimited_lists()
    {
        await using var server = await FakeApiServer.StartAsync(new FakeApiServerOptions { PageSizeLimit = 2 });
        using var client = server.CreateClient();
        for (var i = 0; i < 5; i++)
        {
            await client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = $"cm{i}" } }, "default");
        }
        var first = await client.CoreV1.ListNamespacedConfigMapAsync("default");
        Assert.Equal(2, first.Items.Count);
        Assert.Equal(3, first.Metadata.RemainingItemCount);
        var second = await client.CoreV1.ListNamespacedConfigMapAsync("default", continueParameter: first.Metadata.ContinueProperty);
        Assert.Equal(["cm2", "cm3"], second.Items.Select(c => c.Metadata.Name));
    }

    [Fact]
    public async Task FakeApiServer_filters_by_label_and_field_selectors()
    {
        await Client.CoreV1.CreateNamespacedServiceAsync(Service("a", labels: new Dictionary<string, string> { ["app"] = "x", ["tier"] = "front" }), "default");
        await Client.CoreV1.CreateNamespacedServiceAsync(Service("b", labels: new Dictionary<string, string> { ["app"] = "y" }), "default");
        await Client.CoreV1.CreateNamespacedServiceAsync(Service("c"), "default");

        async Task<string[]> Names(string? labels = null, string? fields = null) =>
            [.. (await Client.CoreV1.ListNamespacedServiceAsync("default", labelSelector: labels, fieldSelector: fields)).Items.Select(s => s.Metadata.Name)];

        Assert.Equal(["a"], await Names("app=x"));
        Assert.Equal(["a"], await Names("app==x"));
        Assert.Equal(["b", "c"], await Names("app!=x"));
        Assert.Equal(["a", "b"], await Names("app in (x, y)"));
        Assert.Equal(["b", "c"], await Names("app notin (x)"));
        Assert.Equal(["a", "b"], await Names("app"));
        Assert.Equal(["c"], await Names("!app"));
        Assert.Equal(["a"], await Names("app,tier=front"));
        Assert.Equal(["b"], await Names(fields: "metadata.name=b"));
        Assert.Equal(["a", "c"], await Names(fields: "metadata.name!=b,metadata.namespace=default"));
        var bad = await Assert.ThrowsAsync<HttpOperationException>(() => Names("app in x"));
        Assert.Equal(HttpStatusCode.BadRequest, bad.Response.StatusCode);
    }

    [Fact]
    public async Task FakeApiServer_deleting_an_owner_deletes_its_dependents()
    {
        var deployment = Server.ApplyYaml("""
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: web
            spec:
              replicas: 1
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: other-owner
            """, "default");
        var ownerUid = deployment[0]["metadata"]!["uid"]!.ToString();
        var otherUid = deployment[1]["metadata"]!["uid"]!.ToString();
        V1OwnerReference Ref(string kind, string apiVersion, string name, string uid) => new() { ApiVersion = apiVersion, Kind = kind, Name = name, Uid = uid };

        var child = Service("child");
        child.Metadata.OwnerReferences = [Ref("Deployment", "apps/v1", "web", ownerUid)];
        child = await Client.CoreV1.CreateNamespacedServiceAsync(child, "default");
        var grandchild = new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "grandchild", OwnerReferences = [Ref("Service", "v1", "child", child.Metadata.Uid)] } };
        await Client.CoreV1.CreateNamespacedConfigMapAsync(grandchild, "default");
        var shared = new V1ConfigMap
        {
            Metadata = new V1ObjectMeta
            {
                Name = "shared",
                OwnerReferences = [Ref("Deployment", "apps/v1", "web", ownerUid), Ref("ConfigMap", "v1", "other-owner", otherUid)],
            },
        };
        await Client.CoreV1.CreateNamespacedConfigMapAsync(shared, "default");

        await Client.AppsV1.DeleteNamespacedDeploymentAsync("web", "default", propagationPolicy: "Background");

        Assert.Null(Server.Get("v1", "Service", "default", "child"));
        Assert.Null(Server.Get("v1", "ConfigMap", "default", "grandchild"));
        Assert.NotNull(Server.Get("v1", "ConfigMap", "default", "shared")); // another owner is alive
        Assert.True(Server.Delete("v1", "ConfigMap", "default", "other-owner"));
        Assert.Null(Server.Get("v1", "ConfigMap", "default", "shared"));
        Assert.False(Server.Delete("v1", "ConfigMap", "default", "other-owner"));
    }

    [Fact]
    public async Task FakeApiServer_crd_removed_then_added_again()
    {
        await Client.CustomObjects.CreateNamespacedCustomObjectAsync(TcpRoute("r1"), Gw, "v1", "apps", "tcproutes");
        Server.RemoveCrd(Gw, "tcproutes");

        var resources = await Client.CustomObjects.GetAPIResourcesAsync(Gw, "v1");
        Assert.DoesNotContain(resources.Resources, r => r.Name == "tcproutes");
        var gone = await Assert.ThrowsAsync<HttpOperationException>(() => Client.CustomObjects.ListNamespacedCustomObjectAsync(Gw, "v1", "apps", "tcproutes"));
        Assert.Equal(HttpStatusCode.NotFound, gone.Response.StatusCode);

        // re-added through the API, at another version: it is served again, and empty
        var crd = FakeApiServer.Crd(Gw, "tcproutes", "tcproute", "TCPRoute", namespaced: true, status: true, [], "v1alpha2");
        await Client.ApiextensionsV1.CreateCustomResourceDefinitionAsync(KubernetesJson.Deserialize<V1CustomResourceDefinition>(crd.ToJsonString()));
        var alpha = await Client.CustomObjects.GetAPIResourcesAsync(Gw, "v1alpha2");
        Assert.Contains(alpha.Resources, r => r.Name == "tcproutes");
        var list = JsonSerializer.SerializeToNode(await Client.CustomObjects.ListNamespacedCustomObjectAsync(Gw, "v1alpha2", "apps", "tcproutes"))!;
        Assert.Empty(list["items"]!.AsArray());
        var groups = await Client.Apis.GetAPIVersionsAsync();
        Assert.Contains(groups.Groups.Single(g => g.Name == Gw).Versions, v => v.Version == "v1alpha2");

        var established = await Client.ApiextensionsV1.ReadCustomResourceDefinitionAsync($"tcproutes.{Gw}");
        Assert.Contains(established.Status.Conditions, c => c.Type == "Established" && c.Status == "True");
    }

    [Fact]
    public async Task FakeApiServer_server_side_apply_creates_then_merges()
    {
        var apply = new V1Patch("""{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg"},"data":{"a":"1"}}""", V1Patch.PatchType.ApplyPatch);
        var created = await Client.CoreV1.PatchNamespacedConfigMapAsync(apply, "cfg", "default", fieldManager: "test", force: true);
        Assert.Equal("1", created.Data["a"]);
        var apply2 = new V1Patch("""{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg"},"data":{"b":"2"}}""", V1Patch.PatchType.ApplyPatch);
        var merged = await Client.CoreV1.PatchNamespacedConfigMapAsync(apply2, "cfg", "default", fieldManager: "test", force: true);
        Assert.Equal("2", merged.Data["b"]);
    }

    [Fact]
    public async Task FakeApiServer_generate_name_and_deletecollection()
    {
        var made = await Client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { GenerateName = "cfg-", Labels = new Dictionary<string, string> { ["k"] = "v" } } }, "default");
        Assert.StartsWith("cfg-", made.Metadata.Name, StringComparison.Ordinal);
        Assert.Equal(9, made.Metadata.Name.Length);
        await Client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "keep" } }, "default");
        await Client.CoreV1.DeleteCollectionNamespacedConfigMapAsync("default", labelSelector: "k=v");
        Assert.Equal(["keep"], (await Client.CoreV1.ListNamespacedConfigMapAsync("default")).Items.Select(c => c.Metadata.Name));
    }

    [Fact]
    public async Task FakeApiServer_core_alias_under_apis_with_an_empty_group()
    {
        await Client.CoreV1.CreateNamespacedServiceAsync(Service("web"), "default");
        var list = JsonSerializer.SerializeToNode(await Client.CustomObjects.ListNamespacedCustomObjectAsync("", "v1", "default", "services"))!;
        Assert.Equal("web", list["items"]![0]!["metadata"]!["name"]!.ToString());
        // KubernetesClient 21.0.8 itself maps the empty group to /api/v1; the server also takes "/apis//v1/..." as an alias
        Assert.Contains(Server.Requests, r => r.Verb == "list" && r.Path.StartsWith("/api/v1/namespaces/default/services", StringComparison.Ordinal));
        using var http = new HttpClient { BaseAddress = Server.Url };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "s3cret");
        var raw = JsonNode.Parse(await http.GetStringAsync(new Uri("apis//v1/namespaces/default/services", UriKind.Relative)))!;
        Assert.Equal("ServiceList", raw["kind"]!.ToString());
        Assert.Equal("web", raw["items"]![0]!["metadata"]!["name"]!.ToString());
    }

    [Fact]
    public async Task FakeApiServer_injected_failures_are_status_responses()
    {
        Server.FailRequest = r => r.Verb == "list" && r.Resource == "services" ? new FakeApiException(429, "TooManyRequests", "slow down") : null;
        var failed = await Assert.ThrowsAsync<HttpOperationException>(() => Client.CoreV1.ListNamespacedServiceAsync("default"));
        Assert.Equal((HttpStatusCode)429, failed.Response.StatusCode);
        Assert.Equal("TooManyRequests", JsonNode.Parse(failed.Response.Content)!["reason"]!.ToString());
        await Client.CoreV1.CreateNamespacedServiceAsync(Service("web"), "default"); // other requests pass
        Server.FailRequest = null;
        Assert.Single((await Client.CoreV1.ListNamespacedServiceAsync("default")).Items);
    }
}
