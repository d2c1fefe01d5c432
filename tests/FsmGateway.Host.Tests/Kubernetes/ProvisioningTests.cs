using System.Text.Json.Nodes;
using FsmGateway.Host.Tests.Support;
using FsmGateway.Testing.Kubernetes;
using k8s;
using k8s.Models;

namespace FsmGateway.Host.Tests.Kubernetes;

/// <summary>
/// The controller (a real process) provisions with server-side apply against the fake API server: the objects are
/// applied by field manager <c>fsm-gateway-controller</c> (no create, no read-compare-patch), a hand edit of a field it
/// set is undone at once while a field someone else added stays, the Gateway's infrastructure labels reach the objects,
/// a parametersRef ConfigMap (FsmGateway's flat keys, or FSM's values.yaml) scales the data plane (with a
/// PodDisruptionBudget above one replica), an invalid one is reported on the Gateway and changes nothing, and deleting the Gateway removes everything made for it.
/// </summary>
public sealed class ProvisioningTests : IAsyncLifetime
{
    private const string GatewayApi = "gateway.networking.k8s.io/v1";
    private const string Namespace = "apps";
    private const string DataPlane = "fsm-gateway-gw";
    private const string Manager = "fsm-gateway-controller";

    /// <summary>Generous for a busy machine, and far below the 5-minute resync.</summary>
    private static readonly TimeSpan Promptly = TimeSpan.FromSeconds(60);

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("fsm-provisioning-");
    private FakeApiServer _server = null!;
    private IKubernetes _someoneElse = null!;
    private string _kubeconfig = null!;

    public async Task InitializeAsync()
    {
        _server = await FakeApiServer.StartAsync(new FakeApiServerOptions { Token = "provisioning-token", BookmarkInterval = TimeSpan.FromSeconds(2) });
        _server.InstallGatewayApiCrds();
        _kubeconfig = _server.WriteKubeconfig(Path.Combine(_dir.FullName, "kubeconfig"));
        _someoneElse = _server.CreateClient();
        _server.ApplyYaml(File.ReadAllText(RepoPaths.Of("deploy/30-gatewayclass.yaml")));
        _server.ApplyYaml($"apiVersion: v1\nkind: Namespace\nmetadata: {{ name: {Namespace} }}\n");
    }

    public async Task DisposeAsync()
    {
        _someoneElse.Dispose();
        await _server.DisposeAsync();
        _dir.Delete(recursive: true);
    }

    [Fact]
    public async Task Objects_are_server_side_applied_a_hand_edit_is_undone_and_deleting_the_gateway_removes_them()
    {
        _server.ApplyYaml(GatewayYaml("labels: { team: payments }", "annotations: { example.com/owner: alice }"));
        await using var controller = StartController();

        var deployment = await EventuallyAsync(() => _server.Get("apps/v1", "Deployment", Namespace, DataPlane), "the Deployment", controller);
        var service = await EventuallyAsync(() => _server.Get("v1", "Service", Namespace, DataPlane), "the Service", controller);
        var account = await EventuallyAsync(() => _server.Get("v1", "ServiceAccount", Namespace, "fsm-gateway"), "the ServiceAccount", controller);

        // Applied, owned by our field manager; nothing was created or replaced another way, nothing read to compare.
        foreach (var applied in new[] { deployment, service, account })
        {
            Assert.Contains(applied["metadata"]!["managedFields"]!.AsArray(), e => e!["manager"]!.GetValue<string>() == Manager && e["operation"]!.GetValue<string>() == "Apply");
        }

        var provisioning = ControllerRequests(r => r.Resource is "deployments" or "services" or "serviceaccounts" or "poddisruptionbudgets");
        Assert.NotEmpty(provisioning);
        Assert.All(provisioning, r => Assert.True(
            r is { Verb: "patch" } && r.Path.Contains($"fieldManager={Manager}", StringComparison.Ordinal) || r.Verb is "list" or "watch",
            $"{r.Verb} {r.Path}: provisioning is server-side apply only"));
        Assert.Null(_server.Get("policy/v1", "PodDisruptionBudget", Namespace, DataPlane));

        // The Gateway's infrastructure labels and annotations reach the objects and the pods.
        Assert.Equal("payments", service["metadata"]!["labels"]!["team"]!.GetValue<string>());
        Assert.Equal("alice", deployment["metadata"]!["annotations"]!["example.com/owner"]!.GetValue<string>());
        Assert.Equal("payments", deployment["spec"]!["template"]!["metadata"]!["labels"]!["team"]!.GetValue<string>());

        // Someone scales the Deployment and changes its image by hand, and adds an annotation of their own.
        await _someoneElse.AppsV1.PatchNamespacedDeploymentAsync(
            new V1Patch("""{"metadata":{"annotations":{"example.com/note":"kept"}},"spec":{"replicas":5,"template":{"spec":{"containers":[{"name":"gateway","image":"evil.example.com/x:1"}]}}}}""", V1Patch.PatchType.MergePatch),
            DataPlane,
            Namespace,
            fieldManager: "kubectl-edit");
        await Net.EventuallyAsync(
            () => Task.FromResult(_server.Get("apps/v1", "Deployment", Namespace, DataPlane) is { } d
                && d["spec"]?["replicas"]?.GetValue<int>() == 1
                && d["spec"]?["template"]?["spec"]?["containers"]?[0]?["image"]?.GetValue<string>() == "example.com/fsm-gateway:test"),
            $"the hand edit undone; controller output:\n{controller.Output}",
            Promptly);
        var restored = _server.Get("apps/v1", "Deployment", Namespace, DataPlane)!;
        Assert.Equal("kept", restored["metadata"]!["annotations"]!["example.com/note"]!.GetValue<string>());
        Assert.Contains("was changed by someone else", controller.Output, StringComparison.Ordinal);

        // Deleting the Gateway deletes what was made for it.
        _server.Delete(GatewayApi, "Gateway", Namespace, "gw");
        await Net.EventuallyAsync(
            () => Task.FromResult(_server.Get("apps/v1", "Deployment", Namespace, DataPlane) is null
                && _server.Get("v1", "Service", Namespace, DataPlane) is null
                && _server.Get("v1", "ServiceAccount", Namespace, "fsm-gateway") is null),
            "the Deployment, Service and ServiceAccount are gone with their Gateway",
            Promptly);

        // The data plane's ServiceAccount was never bound to any role (the controller only looked for what earlier
        // versions left, and found nothing to remove).
        Assert.DoesNotContain(_server.Requests, r => r.Group == "rbac.authorization.k8s.io" && r.Verb is not ("list" or "get"));

        Assert.Equal(0, await controller.TerminateAsync());
        AssertAllowed();
    }

    [Fact]
    public async Task ParametersRef_config_map_flat_or_fsm_values_yaml_scales_the_data_plane_an_invalid_one_is_reported_and_changes_nothing()
    {
        _server.ApplyYaml($$"""
            apiVersion: v1
            kind: ConfigMap
            metadata: { name: gateway-params, namespace: {{Namespace}} }
            data:
              replicas: "3"
              serviceType: NodePort
              externalTrafficPolicy: Local
              resources: |
                requests: { cpu: 250m, memory: 128Mi }
            """);
        _server.ApplyYaml(GatewayYaml("""parametersRef: { group: "", kind: ConfigMap, name: gateway-params }"""));
        await using var controller = StartController();

        var deployment = await EventuallyAsync(() => _server.Get("apps/v1", "Deployment", Namespace, DataPlane), "the Deployment", controller);
        Assert.Equal(3, deployment["spec"]!["replicas"]!.GetValue<int>());
        Assert.Equal("250m", deployment["spec"]!["template"]!["spec"]!["containers"]![0]!["resources"]!["requests"]!["cpu"]!.GetValue<string>());
        var service = await EventuallyAsync(() => _server.Get("v1", "Service", Namespace, DataPlane), "the Service", controller);
        Assert.Equal(("NodePort", "Local"), (service["spec"]!["type"]!.GetValue<string>(), service["spec"]!["externalTrafficPolicy"]!.GetValue<string>()));
        var budget = await EventuallyAsync(() => _server.Get("policy/v1", "PodDisruptionBudget", Namespace, DataPlane), "the PodDisruptionBudget (3 replicas)", controller);
        Assert.Equal(1, budget["spec"]!["minAvailable"]!.GetValue<int>());

        // A NodePort Service's address is its cluster IP: once a replica is available (and its data plane, here a local
        // process on the config stream, has bound the listener) the Gateway is Programmed.
        await using var dataPlane = GatewayProcess.Start("gateway", "--gateway", $"{Namespace}/gw", "--controller-address", $"http://127.0.0.1:{_stream}", "--admin-port", "0");
        await dataPlane.WaitUntilReadyAsync();
        _server.SetStatus("apps/v1", "Deployment", Namespace, DataPlane, JsonNode.Parse("""{"replicas":3,"availableReplicas":3,"readyReplicas":3}""")!);
        await Net.EventuallyAsync(() => Task.FromResult(Condition("Programmed")?["status"]?.GetValue<string>() == "True"), $"Programmed=True; controller output:\n{controller.Output}", Promptly);

        // An invalid value: reported on the Gateway, naming the ConfigMap and the field; the data plane stays as it was.
        SetParameters("""{"replicas":"three","serviceType":"NodePort"}""");
        await Net.EventuallyAsync(
            () => Task.FromResult(Condition("Accepted") is { } accepted && accepted["reason"]?.GetValue<string>() == "InvalidParameters"),
            $"Accepted=False InvalidParameters; controller output:\n{controller.Output}",
            Promptly);
        var message = Condition("Accepted")!["message"]!.GetValue<string>();
        Assert.Contains($"ConfigMap {Namespace}/gateway-params: data.replicas: 'three'", message, StringComparison.Ordinal);
        Assert.Equal("False", Condition("Accepted")!["status"]!.GetValue<string>());
        Assert.Equal("True", Condition("Programmed")!["status"]!.GetValue<string>());
        Assert.Equal(3, _server.Get("apps/v1", "Deployment", Namespace, DataPlane)!["spec"]!["replicas"]!.GetValue<int>());
        Assert.NotNull(_server.Get("policy/v1", "PodDisruptionBudget", Namespace, DataPlane));

        // Fixed, down to one replica: applied at once, and the PodDisruptionBudget goes (it would block every drain).
        SetParameters("""{"replicas":"1"}""");
        await Net.EventuallyAsync(
            () => Task.FromResult(Condition("Accepted")?["status"]?.GetValue<string>() == "True"
                && _server.Get("apps/v1", "Deployment", Namespace, DataPlane)?["spec"]?["replicas"]?.GetValue<int>() == 1
                && _server.Get("policy/v1", "PodDisruptionBudget", Namespace, DataPlane) is null
                && _server.Get("v1", "Service", Namespace, DataPlane)?["spec"]?["type"]?.GetValue<string>() == "LoadBalancer"
                && _server.Get("v1", "Service", Namespace, DataPlane)?["spec"]?["externalTrafficPolicy"] is null),
            $"one replica, no PodDisruptionBudget, the Service back to the defaults; controller output:\n{controller.Output}",
            Promptly);

        // The same ConfigMap in FSM's layout (Helm values of FSM's gateway chart under data["values.yaml"], as in FSM's
        // own e2e test): applied at once, values FsmGateway does not map (logLevel, nodeSelector) ignored as FSM's chart does.
        SetParameters("""
            {"values.yaml": "fsm:\n  gateway:\n    logLevel: debug\n    replicas: 2\n    serviceType: NodePort\n    externalTrafficPolicy: Local\n    nodeSelector: { disktype: ssd }\n    resources:\n      requests:\n        cpu: 123m\n        memory: 257Mi\n      limits:\n        cpu: 1314m\n        memory: 2048Mi\n"}
            """);
        await Net.EventuallyAsync(
            () => Task.FromResult(Condition("Accepted")?["status"]?.GetValue<string>() == "True"
                && _server.Get("apps/v1", "Deployment", Namespace, DataPlane)?["spec"]?["replicas"]?.GetValue<int>() == 2
                && _server.Get("apps/v1", "Deployment", Namespace, DataPlane)?["spec"]?["template"]?["spec"]?["containers"]?[0]?["resources"]?["requests"]?["cpu"]?.GetValue<string>() == "123m"
                && _server.Get("policy/v1", "PodDisruptionBudget", Namespace, DataPlane) is not null
                && _server.Get("v1", "Service", Namespace, DataPlane)?["spec"]?["type"]?.GetValue<string>() == "NodePort"
                && _server.Get("v1", "Service", Namespace, DataPlane)?["spec"]?["externalTrafficPolicy"]?.GetValue<string>() == "Local"),
            $"two replicas with FSM's resources, a PodDisruptionBudget, a NodePort Service with policy Local; controller output:\n{controller.Output}",
            Promptly);

        // An invalid value in FSM's layout: reported naming the ConfigMap, the key and the value's path; nothing changes.
        SetParameters("""{"values.yaml": "fsm:\n  gateway:\n    replicas: three\n"}""");
        await Net.EventuallyAsync(
            () => Task.FromResult(Condition("Accepted") is { } accepted && accepted["reason"]?.GetValue<string>() == "InvalidParameters"),
            $"Accepted=False InvalidParameters; controller output:\n{controller.Output}",
            Promptly);
        Assert.Contains($"ConfigMap {Namespace}/gateway-params: data.values.yaml: fsm.gateway.replicas: 'three'", Condition("Accepted")!["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(2, _server.Get("apps/v1", "Deployment", Namespace, DataPlane)!["spec"]!["replicas"]!.GetValue<int>());
        Assert.Equal("NodePort", _server.Get("v1", "Service", Namespace, DataPlane)!["spec"]!["type"]!.GetValue<string>());

        Assert.Equal(0, await controller.TerminateAsync());
        AssertAllowed();
    }

    [Theory]
    [InlineData("7s", 7L)]
    [InlineData("0s", null)]
    public async Task Pre_stop_delay_and_drain_timeout_options_set_the_data_planes_pre_stop_sleep_and_grace_period(string delay, long? sleep)
    {
        _server.ApplyYaml(GatewayYaml());
        await using var controller = StartController("--drain-timeout", "20s", "--data-plane-pre-stop-delay", delay);

        var deployment = await EventuallyAsync(() => _server.Get("apps/v1", "Deployment", Namespace, DataPlane), "the Deployment", controller);
        var pod = deployment["spec"]!["template"]!["spec"]!;
        Assert.Equal((sleep ?? 0) + 20 + 10, pod["terminationGracePeriodSeconds"]!.GetValue<long>());
        Assert.Equal(sleep, pod["containers"]![0]!["lifecycle"]?["preStop"]?["sleep"]?["seconds"]?.GetValue<long>());
        Assert.Contains("20s", pod["containers"]![0]!["args"]!.AsArray().Select(a => a!.GetValue<string>()));
        Assert.Equal(0, await controller.TerminateAsync());
    }

    private readonly int _stream = Net.FreePort();
    private readonly int _listener = Net.FreePort();

    /// <summary>Gateway gw with one TCP listener, and each of <paramref name="infrastructure"/> (a line such as <c>labels: { team: payments }</c>) under <c>spec.infrastructure</c>.</summary>
    private string GatewayYaml(params string[] infrastructure) => string.Join('\n', [
        "apiVersion: gateway.networking.k8s.io/v1",
        "kind: Gateway",
        $"metadata: {{ name: gw, namespace: {Namespace} }}",
        "spec:",
        "  gatewayClassName: fsm",
        .. infrastructure.Length == 0 ? Array.Empty<string>() : ["  infrastructure:", .. infrastructure.Select(static line => "    " + line)],
        $"  listeners: [{{ name: tcp, port: {_listener}, protocol: TCP }}]",
    ]);

    private GatewayProcess StartController(params string[] extra) =>
        GatewayProcess.Start(["controller", "--stream-insecure", "--stream-address", "127.0.0.1", "--stream-port", _stream.ToString(System.Globalization.CultureInfo.InvariantCulture), "--kubeconfig", _kubeconfig, "--image", "example.com/fsm-gateway:test", "--admin-port", "0", "--leader-election-namespace", "fsm-system", .. extra]);

    private void SetParameters(string data)
    {
        var configMap = _server.Get("v1", "ConfigMap", Namespace, "gateway-params")!;
        configMap["data"] = JsonNode.Parse(data);
        _server.Apply(configMap);
    }

    private List<ApiRequest> ControllerRequests(Func<ApiRequest, bool> filter) =>
        [.. _server.Requests.Where(r => r.UserAgent?.Contains("(controller)", StringComparison.Ordinal) == true && filter(r))];

    private void AssertAllowed()
    {
        var allowed = RequiredPermissions.Controller.Select(p => (p.Group, p.Resource, p.Verb)).ToHashSet();
        foreach (var r in ControllerRequests(r => r.Resource.Length > 0))
        {
            var resource = r.Subresource is null ? r.Resource : $"{r.Resource}/{r.Subresource}";
            Assert.True(allowed.Contains((r.Group, resource, r.Verb)), $"the controller's {r.Verb} {r.Path} is not granted by deploy/10-rbac.yaml");
        }
    }

    private JsonNode? Condition(string type) =>
        _server.Get(GatewayApi, "Gateway", Namespace, "gw")?["status"]?["conditions"]?.AsArray().FirstOrDefault(c => c?["type"]?.GetValue<string>() == type);

    private static async Task<JsonObject> EventuallyAsync(Func<JsonObject?> get, string what, GatewayProcess controller)
    {
        JsonObject? found = null;
        await Net.EventuallyAsync(() => Task.FromResult((found = get()) is not null), $"{what} provisioned; controller output:\n{controller.Output}", Promptly);
        return found!;
    }
}
