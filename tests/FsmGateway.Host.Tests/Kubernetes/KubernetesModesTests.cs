using System.Text.Json.Nodes;
using FsmGateway.Host.Tests.Support;
using FsmGateway.Testing.Kubernetes;
using static FsmGateway.Host.Tests.Support.SeedCluster;

namespace FsmGateway.Host.Tests.Kubernetes;

/// <summary>
/// <c>fsm-gateway controller</c> and <c>fsm-gateway gateway</c> end to end, each in its own process, against the fake
/// API server on loopback: the FSM guide's steps with the seed manifest (listener ports moved to free ones), plus
/// EndpointSlices pointing at loopback backends, and the test playing the cloud load balancer.
/// </summary>
public sealed class KubernetesModesTests : IAsyncLifetime
{
    private const string RouteApi = "gateway.networking.k8s.io/v1alpha2";
    private const string DataPlane = "fsm-gateway-simple-fsm-gateway";

    private SeedCluster _cluster = null!;

    public async Task InitializeAsync()
    {
        // Responses framed as kube-apiserver frames them (chunked above 2 KiB, the final chunk late): the data plane runs
        // with inline socket completions, and its API client must never read them synchronously (ADR 0005).
        _cluster = await SeedCluster.StartAsync("e2e-token", chunkedAbove: 2048);

        // Backend policies (issue 15) that change nothing the data plane does here (round robin, the default connect
        // timeout), so the routing below stays as it is once the transport honours them.
        _cluster.Server.InstallPolicyCrds();
        _cluster.Server.ApplyYaml("""
            apiVersion: gateway.flomesh.io/v1alpha2
            kind: BackendLBPolicy
            metadata: { name: lb }
            spec:
              targetRefs: [{ group: "", kind: Service, name: httpbin }]
              algorithm: RoundRobin
            ---
            apiVersion: gateway.fsmgateway.io/v1alpha1
            kind: BackendTrafficPolicy
            metadata: { name: route-timeout }
            spec:
              targetRefs: [{ group: gateway.networking.k8s.io, kind: TCPRoute, name: tcp-route }]
              timeout: { tcp: { connectTimeout: 10s } }
            """, Namespace);
    }

    public async Task DisposeAsync()
    {
        await _cluster.DisposeAsync();
    }

    [Fact]
    public async Task Controller_provisions_and_writes_status_and_the_data_plane_routes_and_follows_changes()
    {
        await using var backendA = new BannerServer("A");
        await using var backendB = new BannerServer("B");
        await using var backendC = new BannerServer("C");
        _cluster.ApplyEndpoints(Namespace, "httpbin", backendA.Port);

        var stream = Net.FreePort();
        // The stream is secured (the default): the provisioned pods are told to connect to https://127.0.0.1:PORT, which
        // the controller's serving certificate therefore names.
        var streamText = stream.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await using var controller = GatewayProcess.Start("controller", "--kubeconfig", _cluster.Kubeconfig, "--image", "example.com/fsm-gateway:test", "--admin-port", "0", "--leader-election-namespace", "fsm-system", "--stream-address", "127.0.0.1", "--stream-port", streamText, "--data-plane-controller-address", $"https://127.0.0.1:{streamText}");
        await controller.WaitUntilReadyAsync();

        // The controller provisions the data plane: a Deployment and a LoadBalancer Service labelled app=fsm-gateway, owned by the Gateway.
        var deployment = await _cluster.EventuallyGetAsync("apps/v1", "Deployment", Namespace, DataPlane, controller);
        var service = await _cluster.EventuallyGetAsync("v1", "Service", Namespace, DataPlane, controller);
        var gatewayUid = _cluster.Server.Get(GatewayApi, "Gateway", Namespace, GatewayName)!["metadata"]!["uid"]!.GetValue<string>();
        Assert.Equal("fsm-gateway", service["metadata"]!["labels"]!["app"]!.GetValue<string>());
        Assert.Equal("LoadBalancer", service["spec"]!["type"]!.GetValue<string>());
        Assert.Equal([_cluster.Foo, _cluster.Bar], service["spec"]!["ports"]!.AsArray().Select(p => p!["port"]!.GetValue<int>()));
        Assert.Equal(gatewayUid, service["metadata"]!["ownerReferences"]![0]!["uid"]!.GetValue<string>());
        Assert.Equal(gatewayUid, deployment["metadata"]!["ownerReferences"]![0]!["uid"]!.GetValue<string>());
        var container = deployment["spec"]!["template"]!["spec"]!["containers"]![0]!;
        Assert.Equal("example.com/fsm-gateway:test", container["image"]!.GetValue<string>());
        var args = container["args"]!.AsArray().Select(a => a!.GetValue<string>()).ToList();
        Assert.Equal(["gateway", "--gateway", $"{Namespace}/{GatewayName}"], args.Take(3));

        // Prometheus finds the data plane's metrics through the usual pod annotations: /metrics on the admin port.
        var annotations = deployment["spec"]!["template"]!["metadata"]!["annotations"]!;
        Assert.Equal("true", annotations["prometheus.io/scrape"]!.GetValue<string>());
        Assert.Equal("/metrics", annotations["prometheus.io/path"]!.GetValue<string>());
        Assert.Equal(container["ports"]![0]!["containerPort"]!.GetValue<int>().ToString(System.Globalization.CultureInfo.InvariantCulture), annotations["prometheus.io/port"]!.GetValue<string>());
        Assert.Single(_cluster.Server.List("v1", "Service", Namespace), s => s["metadata"]?["labels"]?["app"]?.GetValue<string>() == "fsm-gateway");

        // Until its data plane runs and has an address, the Gateway is accepted but not programmed.
        await Net.EventuallyAsync(() => Task.FromResult(_cluster.GatewayStatus() is { } s && Condition(s, "Programmed")?["reason"]?.GetValue<string>() == "Pending"), "Programmed=False Pending while no data plane has reported", TimeSpan.FromSeconds(30));

        // No role is bound to the data plane: its ServiceAccount may do nothing at the API server, and its pods mount no
        // API token, only the CA ConfigMap and a projected token for the controller.
        Assert.Empty(_cluster.Server.List("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"));
        Assert.Empty(_cluster.Server.List("rbac.authorization.k8s.io/v1", "RoleBinding", Namespace));
        Assert.False(deployment["spec"]!["template"]!["spec"]!["automountServiceAccountToken"]!.GetValue<bool>());
        var authority = await _cluster.EventuallyGetAsync("v1", "ConfigMap", Namespace, "fsm-gateway-controller-ca", controller);

        // The data plane runs what the Deployment runs (here as a local process), its config streamed by the controller:
        // no kubeconfig, no request to the API server. The files the pod would mount: the CA from the ConfigMap, and the
        // projected token of ServiceAccount httpbin/fsm-gateway, which the fake API server's TokenReview knows.
        var caFile = Path.Combine(_cluster.Directory.FullName, "ca.crt");
        File.WriteAllText(caFile, authority["data"]!["ca.crt"]!.GetValue<string>());
        var tokenFile = Path.Combine(_cluster.Directory.FullName, "token");
        File.WriteAllText(tokenFile, FakeApiServer.ProjectedToken("httpbin-data-plane-token"));
        _cluster.Server.AddServiceAccountToken(FakeApiServer.ProjectedToken("httpbin-data-plane-token"), Namespace, "fsm-gateway", "fsm-gateway-controller");
        Assert.Equal($"https://127.0.0.1:{streamText}", args[args.IndexOf("--controller-address") + 1]);
        args = [.. args.Select((a, i) => (i > 0 ? args[i - 1] : null) switch
        {
            "--admin-port" => "0",
            "--admin-address" => "127.0.0.1",
            "--controller-ca-file" => caFile,
            "--controller-token-file" => tokenFile,
            _ => a,
        })];
        await using var dataPlane = GatewayProcess.Start(new Dictionary<string, string?> { ["KUBECONFIG"] = null }, [.. args]);
        await dataPlane.WaitUntilReadyAsync();
        await Net.EventuallyAsync(() => Task.FromResult(_cluster.GatewayStatus() is { } s && Condition(s, "Programmed")?["message"]?.GetValue<string>()?.Contains("Deployment", StringComparison.Ordinal) == true), "Programmed=False Pending while the Deployment has no available replica", TimeSpan.FromSeconds(30));
        _cluster.Server.SetStatus("apps/v1", "Deployment", Namespace, DataPlane, JsonNode.Parse("""{"replicas":1,"availableReplicas":1,"readyReplicas":1}""")!);
        await Net.EventuallyAsync(() => Task.FromResult(_cluster.GatewayStatus() is { } s && Condition(s, "Programmed")?["reason"]?.GetValue<string>() == "AddressNotAssigned"), "Programmed=False AddressNotAssigned while the Service has no load-balancer address", TimeSpan.FromSeconds(30));

        // The cloud assigns the Service an address; the Gateway's status.addresses reports it.
        _cluster.Server.SetStatus("v1", "Service", Namespace, DataPlane, JsonNode.Parse("""{"loadBalancer":{"ingress":[{"ip":"127.0.0.1"}]}}""")!);
        await Net.EventuallyAsync(() => Task.FromResult(_cluster.GatewayStatus()?["addresses"]?[0]?["value"]?.GetValue<string>() == "127.0.0.1" && Condition(_cluster.GatewayStatus()!, "Programmed")?["status"]?.GetValue<string>() == "True"), "Gateway status.addresses from the Service's load-balancer ingress, and Programmed", TimeSpan.FromSeconds(30));

        // The statuses gateway-api-tcp.md requires.
        var status = _cluster.GatewayStatus()!;
        Assert.Equal("IPAddress", status["addresses"]![0]!["type"]!.GetValue<string>());
        AssertCondition(status, "Accepted", "True", "Accepted");
        AssertCondition(status, "Programmed", "True", "Programmed");
        foreach (var listener in status["listeners"]!.AsArray())
        {
            Assert.Equal(1, listener!["attachedRoutes"]!.GetValue<int>());
            Assert.Equal("TCPRoute", listener["supportedKinds"]![0]!["kind"]!.GetValue<string>());
            AssertCondition(listener, "Accepted", "True", "Accepted");
            AssertCondition(listener, "ResolvedRefs", "True", "ResolvedRefs");
            AssertCondition(listener, "Programmed", "True", "Programmed");
            AssertCondition(listener, "Conflicted", "False", "NoConflicts");
        }

        AssertCondition(_cluster.Server.Get(GatewayApi, "GatewayClass", null, "fsm")!["status"]!, "Accepted", "True", "Accepted");
        var parents = RouteParents();
        Assert.Equal(2, parents.Count);
        Assert.All(parents, p =>
        {
            Assert.Equal("flomesh.io/gateway-controller", p!["controllerName"]!.GetValue<string>());
            AssertCondition(p, "Accepted", "True", "Accepted");
            AssertCondition(p, "ResolvedRefs", "True", "ResolvedRefs");
        });

        // Each policy reports, in status.ancestors, the Gateway it reaches: written by the controller like every other status.
        foreach (var (apiVersion, kind, name) in new[] { ("gateway.flomesh.io/v1alpha2", "BackendLBPolicy", "lb"), ("gateway.fsmgateway.io/v1alpha1", "BackendTrafficPolicy", "route-timeout") })
        {
            await Net.EventuallyAsync(
                () => Task.FromResult(_cluster.Server.Get(apiVersion, kind, Namespace, name)?["status"]?["ancestors"]?[0] is { } ancestor
                    && ancestor["ancestorRef"]?["name"]?.GetValue<string>() == GatewayName
                    && ancestor["controllerName"]?.GetValue<string>() == "flomesh.io/gateway-controller"
                    && Condition(ancestor, "Accepted")?["status"]?.GetValue<string>() == "True"),
                $"{kind} {name}: status.ancestors names Gateway {GatewayName}, Accepted=True",
                TimeSpan.FromSeconds(30));
        }

        Assert.Equal("A", await BannerServer.ReadBannerAsync(_cluster.Foo));
        using (var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) })
        {
            var text = await http.GetStringAsync(new Uri(dataPlane.AdminUri!, annotations["prometheus.io/path"]!.GetValue<string>()));
            Assert.Contains("fsmgateway_connections_accepted_total{", text, StringComparison.Ordinal);
        }

        Assert.Equal("A", await BannerServer.ReadBannerAsync(_cluster.Bar));

        // A scaled backend: the new endpoint gets connections too.
        _cluster.ApplyEndpoints(Namespace, "httpbin", backendA.Port, backendB.Port);
        await Net.EventuallyAsync(async () => await BannerServer.ReadBannerAsync(_cluster.Foo) == "B", "connections reach the second endpoint");

        // A cross-namespace backend, allowed by a ReferenceGrant; then the grant is deleted.
        _cluster.Server.ApplyYaml($"""
            apiVersion: v1
            kind: Namespace
            metadata: {"{"} name: shared {"}"}
            ---
            apiVersion: v1
            kind: Service
            metadata: {"{"} name: shared, namespace: shared {"}"}
            spec: {"{"} ports: [{"{"} port: 9000, protocol: TCP {"}"}] {"}"}
            ---
            apiVersion: gateway.networking.k8s.io/v1beta1
            kind: ReferenceGrant
            metadata: {"{"} name: from-httpbin, namespace: shared {"}"}
            spec:
              from: [{"{"} group: gateway.networking.k8s.io, kind: TCPRoute, namespace: {Namespace} {"}"}]
              to: [{"{"} group: "", kind: Service {"}"}]
            """);
        _cluster.ApplyEndpoints("shared", "shared", backendC.Port);
        var route = _cluster.Server.Get(RouteApi, "TCPRoute", Namespace, "tcp-route")!;
        route["spec"]!["rules"] = JsonNode.Parse("""[{"backendRefs":[{"name":"shared","namespace":"shared","port":9000}]}]""");
        _cluster.Server.Apply(route);
        await Net.EventuallyAsync(async () => await BannerServer.ReadBannerAsync(_cluster.Foo) == "C", "connections reach the granted cross-namespace backend");

        _cluster.Server.Delete("gateway.networking.k8s.io/v1beta1", "ReferenceGrant", "shared", "from-httpbin");
        await Net.EventuallyAsync(
            () => Task.FromResult(RouteParents().All(p => Condition(p!, "ResolvedRefs")?["reason"]?.GetValue<string>() == "RefNotPermitted")),
            "ResolvedRefs=False RefNotPermitted on both parents",
            TimeSpan.FromSeconds(30));
        await Net.EventuallyAsync(async () => await BannerServer.ReadBannerAsync(_cluster.Foo) == string.Empty, "connections are closed once the grant is gone");

        // A listener added to the Gateway: the provisioned Service exposes its port, and the data plane binds it.
        var baz = Net.FreePort();
        var gateway = _cluster.Server.Get(GatewayApi, "Gateway", Namespace, GatewayName)!;
        gateway["spec"]!["listeners"]!.AsArray().Add(new JsonObject { ["name"] = "baz", ["port"] = baz, ["protocol"] = "TCP" });
        _cluster.Server.Apply(gateway);
        await Net.EventuallyAsync(
            () => Task.FromResult(_cluster.Server.Get("v1", "Service", Namespace, DataPlane)?["spec"]?["ports"]?.AsArray().Any(p => p?["port"]?.GetValue<int>() == baz) == true),
            "the Service exposes the new listener's port",
            TimeSpan.FromSeconds(30));
        await Net.EventuallyAsync(async () => !await Net.IsRefusedAsync(baz), "the data plane binds the new listener");

        // Deleting the Gateway deletes what was provisioned for it, and the data plane stops listening.
        _cluster.Server.Delete(GatewayApi, "Gateway", Namespace, GatewayName);
        await Net.EventuallyAsync(() => Task.FromResult(_cluster.Server.Get("apps/v1", "Deployment", Namespace, DataPlane) is null && _cluster.Server.Get("v1", "Service", Namespace, DataPlane) is null), "the Deployment and Service are gone with their Gateway");
        Assert.Null(_cluster.Server.Get("v1", "ConfigMap", Namespace, "fsm-gateway-controller-ca"));
        Assert.Null(_cluster.Server.Get("v1", "ServiceAccount", Namespace, "fsm-gateway"));
        await Net.EventuallyAsync(() => Net.IsRefusedAsync(_cluster.Foo), "the data plane unbinds the deleted Gateway's listeners");

        Assert.Equal(0, await dataPlane.TerminateAsync());
        Assert.Equal(0, await controller.TerminateAsync());
        Assert.DoesNotContain(_cluster.Server.Requests, r => r.StatusCode >= 500);

        // Every call the controller made is one that deploy/10-rbac.yaml grants it (RequiredPermissions is kept equal to
        // it), among them the TokenReview of the data plane's token; the data plane, fed by the controller's stream,
        // made none.
        AssertAllowed("(controller)", RequiredPermissions.Controller);
        Assert.Contains(_cluster.Server.Requests, r => r is { Resource: "tokenreviews", Verb: "create", StatusCode: 201 } && r.UserAgent!.Contains("(controller)", StringComparison.Ordinal));
        Assert.DoesNotContain(_cluster.Server.Requests, r => r.UserAgent?.Contains("(gateway)", StringComparison.Ordinal) == true);
    }

    private void AssertAllowed(string userAgent, IReadOnlyList<RequiredPermission> granted)
    {
        var calls = _cluster.Server.Requests.Where(r => r.UserAgent?.Contains(userAgent, StringComparison.Ordinal) == true && r.Resource.Length > 0).ToList();
        Assert.NotEmpty(calls);
        var denied = calls
            .Select(r => (r.Group, Resource: r.Subresource is null ? r.Resource : $"{r.Resource}/{r.Subresource}", r.Verb))
            .Distinct()
            .Where(c => !granted.Any(p => p.Group == c.Group && p.Resource == c.Resource && p.Verb == c.Verb))
            .ToList();
        Assert.True(denied.Count == 0, $"{userAgent} made calls its RBAC does not grant: {string.Join(", ", denied)}");
    }

    private List<JsonNode?> RouteParents() =>
        [.. (_cluster.Server.Get(RouteApi, "TCPRoute", Namespace, "tcp-route")?["status"]?["parents"]?.AsArray() ?? [])];

    private static void AssertCondition(JsonNode owner, string type, string status, string reason)
    {
        var condition = Condition(owner, type);
        Assert.True(condition is not null, $"no {type} condition in {owner.ToJsonString()}");
        Assert.Equal((status, reason), (condition!["status"]!.GetValue<string>(), condition["reason"]!.GetValue<string>()));
        Assert.NotNull(condition["lastTransitionTime"]);
    }
}
