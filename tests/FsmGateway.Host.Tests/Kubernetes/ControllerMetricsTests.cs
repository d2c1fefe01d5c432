using System.Text.Json.Nodes;
using FsmGateway.Host.Tests.Support;
using FsmGateway.Testing.Kubernetes;

namespace FsmGateway.Host.Tests.Kubernetes;

/// <summary>
/// The controller's metrics (meters <c>FsmGateway.Kubernetes</c> and <c>FsmGateway.Config</c>) from the real
/// <c>controller</c> process against the fake API server: the leader gauge, provisioning actions, status writes and
/// a 409 conflict, watch restarts after the watches are cut, relists after the history is compacted (410) and after an
/// error event —
/// each compared with what the API server really received.
/// </summary>
public sealed class ControllerMetricsTests : IAsyncLifetime
{
    private const string GatewayApi = "gateway.networking.k8s.io/v1";
    private const string Namespace = "apps";
    private static readonly TimeSpan Promptly = TimeSpan.FromSeconds(60);

    /// <summary>The kinds the controller lists and watches: the seven config kinds, plus the provisioned Deployments and Services and the ConfigMaps (parametersRef).</summary>
    private static readonly (string Kind, int Watches)[] Watched =
        [("GatewayClass", 1), ("Gateway", 1), ("TCPRoute", 1), ("ReferenceGrant", 1), ("Service", 2), ("EndpointSlice", 1), ("Namespace", 1), ("Deployment", 1), ("ConfigMap", 1)];

    /// <summary>How many watches the controller runs.</summary>
    private static readonly int Watches = Watched.Sum(w => w.Watches);

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("fsm-controller-metrics-");
    private FakeApiServer _server = null!;
    private string _kubeconfig = null!;

    public async Task InitializeAsync()
    {
        _server = await FakeApiServer.StartAsync(new FakeApiServerOptions { Token = "metrics-token" });
        _server.InstallGatewayApiCrds();
        _kubeconfig = _server.WriteKubeconfig(Path.Combine(_dir.FullName, "kubeconfig"));
        _server.ApplyYaml(File.ReadAllText(RepoPaths.Of("deploy/30-gatewayclass.yaml")));
        _server.ApplyYaml($"apiVersion: v1\nkind: Namespace\nmetadata: {{ name: {Namespace} }}\n");
        _server.ApplyYaml($$"""
            apiVersion: gateway.networking.k8s.io/v1
            kind: Gateway
            metadata: { name: gw, namespace: {{Namespace}} }
            spec:
              gatewayClassName: fsm
              listeners: [{ name: tcp, port: 7000, protocol: TCP }]
            ---
            apiVersion: gateway.networking.k8s.io/v1
            kind: TCPRoute
            metadata: { name: orphan, namespace: {{Namespace}} }
            spec:
              parentRefs: [{ name: gw }]
              rules: [{ backendRefs: [{ name: missing, port: 9000 }] }]
            """);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _dir.Delete(recursive: true);
    }

    [Fact]
    public async Task Controller_counts_leadership_provisioning_status_writes_conflicts_watch_restarts_and_relists()
    {
        // The first status write of the route meets a 409 (someone else changed it meanwhile): read again, written.
        var conflicted = 0;
        _server.FailRequest = r => r is { Verb: "update", Resource: "tcproutes", Subresource: "status" } && Interlocked.Exchange(ref conflicted, 1) == 0
            ? new FakeApiException(409, "Conflict", "the object has been modified; please apply your changes to the latest version and try again")
            : null;
        await using var controller = GatewayProcess.Start(
            "controller", "--stream-port", "0", "--kubeconfig", _kubeconfig, "--image", "example.com/fsm-gateway:test", "--admin-port", "0", "--leader-election-namespace", "fsm-system");
        await controller.WaitUntilReadyAsync();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var metrics = new Uri(controller.AdminUri!, "/metrics");
        await Net.EventuallyAsync(() => Task.FromResult(ProgrammedReason() == "Pending" && RouteWritten()), $"provisioned, statuses written; output:\n{controller.Output}", Promptly);
        var exposition = await SteadyAsync(http, metrics);

        Assert.Equal(1, exposition.Sum("fsmgateway_controller_leader"));
        // (No data-plane binding any more: the data plane has no API permissions. With --stream-port 0 the pods get no
        // controller address, so no CA ConfigMap either.)
        foreach (var kind in new[] { "ServiceAccount", "Deployment", "Service" })
        {
            Assert.Equal(1, exposition.Sum("fsmgateway_controller_provisioning_actions_total", ("kind", kind), ("action", "created")));
        }

        Assert.Equal(3, exposition.Sum("fsmgateway_controller_provisioning_actions_total"));

        // Every status PUT the API server received, by kind and outcome, and nothing else.
        foreach (var (kind, resource) in new[] { ("GatewayClass", "gatewayclasses"), ("Gateway", "gateways"), ("TCPRoute", "tcproutes") })
        {
            var puts = _server.Requests.Where(r => r is { Verb: "update", Subresource: "status" } && r.Resource == resource).ToList();
            Assert.Equal(puts.Count(r => r.StatusCode == 200), exposition.Sum("fsmgateway_controller_status_writes_total", ("kind", kind), ("outcome", "ok")));
            Assert.Equal(puts.Count(r => r.StatusCode == 409), exposition.Sum("fsmgateway_controller_status_writes_total", ("kind", kind), ("outcome", "conflict")));
            Assert.True(puts.Count(r => r.StatusCode == 200) >= 1, $"{kind}: no status written");
        }

        Assert.Equal(1, exposition.Sum("fsmgateway_controller_status_writes_total", ("kind", "TCPRoute"), ("outcome", "conflict")));
        Assert.Equal(0, exposition.Sum("fsmgateway_controller_status_writes_total", ("outcome", "error")));

        // The config side, in controller mode too.
        Assert.Equal(1, exposition.Sum("fsmgateway_config_objects", ("kind", "Gateway")));
        Assert.Equal(1, exposition.Sum("fsmgateway_config_objects", ("kind", "TCPRoute")));
        Assert.Equal(1, exposition.Sum("fsmgateway_config_objects", ("kind", "GatewayClass")));
        Assert.Equal(1, exposition.Sum("fsmgateway_config_objects_invalid", ("kind", "TCPRoute"), ("reason", "BackendNotFound")));
        Assert.True(exposition.Sum("fsmgateway_config_revisions_applied_total") >= 1);
        Assert.Equal(0, exposition.Sum("fsmgateway_kubernetes_watch_restarts_total"));
        Assert.Equal(0, exposition.Sum("fsmgateway_kubernetes_watch_relists_total"));

        // Every watch is cut: each is reopened from its last resourceVersion, with no list.
        var lists = Lists();
        _server.DropWatches();
        await Net.EventuallyAsync(
            async () => (exposition = await Exposition.ScrapeAsync(http, metrics)).Sum("fsmgateway_kubernetes_watch_restarts_total") >= Watches,
            $"every watch reopened; output:\n{controller.Output}",
            Promptly);
        foreach (var (kind, watches) in Watched)
        {
            Assert.Equal(watches, exposition.Sum("fsmgateway_kubernetes_watch_restarts_total", ("kind", kind)));
        }

        Assert.Equal(Watches, exposition.Sum("fsmgateway_kubernetes_watch_restarts_total", ("reason", "failed")));
        Assert.Equal(0, exposition.Sum("fsmgateway_kubernetes_watch_relists_total"));
        Assert.Equal(lists, Lists());

        // The history is compacted: every watch gets 410 Gone and its kind is listed again.
        _server.Compact();
        await Net.EventuallyAsync(
            async () => (exposition = await Exposition.ScrapeAsync(http, metrics)).Sum("fsmgateway_kubernetes_watch_relists_total") >= Watches,
            $"every kind re-listed; output:\n{controller.Output}",
            Promptly);
        foreach (var (kind, watches) in Watched)
        {
            Assert.Equal(watches, exposition.Sum("fsmgateway_kubernetes_watch_relists_total", ("kind", kind), ("reason", "expired")));
        }

        Assert.Equal(Watches, exposition.Sum("fsmgateway_kubernetes_watch_relists_total"));
        Assert.Equal(lists + Watches, Lists());
        Assert.Equal(Watches, exposition.Sum("fsmgateway_kubernetes_watch_restarts_total"));

        // The watches are cut again, and the Gateways' reopened watch reports an error (500): Gateways are listed again.
        var errorSent = 0;
        _server.FailWatch = r => r.Resource == "gateways" && Interlocked.Exchange(ref errorSent, 1) == 0
            ? new FakeApiException(500, "InternalError", "etcdserver: request timed out")
            : null;
        _server.DropWatches();
        await Net.EventuallyAsync(
            async () => (exposition = await Exposition.ScrapeAsync(http, metrics)).Sum("fsmgateway_kubernetes_watch_relists_total", ("reason", "error_event")) >= 1
                && exposition.Sum("fsmgateway_kubernetes_watch_restarts_total") >= 2 * Watches,
            $"the Gateways re-listed after the error event; output:\n{controller.Output}",
            Promptly);
        Assert.Equal(1, exposition.Sum("fsmgateway_kubernetes_watch_relists_total", ("kind", "Gateway"), ("reason", "error_event")));
        Assert.Equal(Watches + 1, exposition.Sum("fsmgateway_kubernetes_watch_relists_total"));
        Assert.Equal(2 * Watches, exposition.Sum("fsmgateway_kubernetes_watch_restarts_total", ("reason", "failed")));
        Assert.Equal(2 * Watches, exposition.Sum("fsmgateway_kubernetes_watch_restarts_total"));
        Assert.Equal(1, exposition.Sum("fsmgateway_controller_leader"));

        await MetricsTests.PromtoolAsync(exposition.Text);
        Assert.Equal(0, await controller.TerminateAsync());
    }

    [Fact]
    public async Task Gateway_mode_counts_its_config_and_relists_and_has_no_controller_metrics()
    {
        await using var gateway = StartEdgeGateway();
        await gateway.WaitUntilReadyAsync();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var metrics = new Uri(gateway.AdminUri!, "/metrics");

        var exposition = await Exposition.ScrapeAsync(http, metrics);
        Assert.True(exposition.Sum("fsmgateway_config_revisions_applied_total") >= 1);
        Assert.True(exposition.Sum("fsmgateway_config_compile_duration_seconds_count") >= 1);
        Assert.Equal(2, exposition.Sum("fsmgateway_config_objects", ("kind", "Gateway")));
        Assert.Equal(1, exposition.Sum("fsmgateway_config_objects", ("kind", "TCPRoute")));
        Assert.Equal(1, exposition.Sum("fsmgateway_config_objects", ("kind", "GatewayClass")));
        Assert.Equal(1, exposition.Sum("fsmgateway_config_objects", ("kind", "Namespace")));
        Assert.Equal(1, exposition.Sum("fsmgateway_config_objects_invalid", ("kind", "TCPRoute"), ("reason", "BackendNotFound")));
        Assert.DoesNotContain(exposition.Names, n => n.StartsWith("fsmgateway_controller_", StringComparison.Ordinal));

        // The data plane watches the seven config kinds (no Deployments, no provisioned Services).
        _server.Compact();
        await Net.EventuallyAsync(
            async () => (exposition = await Exposition.ScrapeAsync(http, metrics)).Sum("fsmgateway_kubernetes_watch_relists_total") >= 7,
            $"every kind re-listed; output:\n{gateway.Output}",
            Promptly);
        foreach (var kind in new[] { "GatewayClass", "Gateway", "TCPRoute", "ReferenceGrant", "Service", "EndpointSlice", "Namespace" })
        {
            Assert.Equal(1, exposition.Sum("fsmgateway_kubernetes_watch_relists_total", ("kind", kind), ("reason", "expired")));
        }

        Assert.Equal(7, exposition.Sum("fsmgateway_kubernetes_watch_relists_total"));
        Assert.Equal(0, exposition.Sum("fsmgateway_kubernetes_watch_restarts_total"));
        await MetricsTests.PromtoolAsync(exposition.Text);
        Assert.Equal(0, await gateway.TerminateAsync());
    }

    /// <summary>
    /// The controller's admin and metrics ports answer as the data plane's, request for request (one admin server and
    /// one pipeline in every mode): probes, HEAD, 404 under an endpoint's path, 405, the metrics port's 404.
    /// </summary>
    [Fact]
    public async Task Controller_admin_and_metrics_ports_answer_as_the_data_planes()
    {
        await using var controller = GatewayProcess.Start(
            "controller", "--stream-port", "0", "--kubeconfig", _kubeconfig, "--image", "example.com/fsm-gateway:test", "--admin-port", "0", "--metrics-port", "0", "--leader-election-namespace", "fsm-system");
        await using var gateway = StartEdgeGateway("--metrics-port", "0");
        var controllerMetrics = (await controller.WaitForMetricsAsync()).Port;
        var gatewayMetrics = (await gateway.WaitForMetricsAsync()).Port;
        await controller.WaitUntilReadyAsync();
        await gateway.WaitUntilReadyAsync();
        var controllerAdmin = controller.AdminUri!.Port;
        var gatewayAdmin = gateway.AdminUri!.Port;
        await Net.EventuallyAsync(
            async () => Status(await AnswerAsync(controllerAdmin, "GET /readyz")) == 200 && Status(await AnswerAsync(gatewayAdmin, "GET /readyz")) == 200,
            $"both ready; output:\n{controller.Output}\n{gateway.Output}",
            Promptly);

        Assert.StartsWith("HTTP/1.1 404 Not Found\r\n", await AnswerAsync(controllerAdmin, "GET /metrics/x"), StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 404 Not Found\r\n", await AnswerAsync(controllerAdmin, "GET /healthz/x"), StringComparison.Ordinal);
        foreach (var request in new[] { "GET /healthz", "HEAD /healthz", "GET /readyz", "HEAD /readyz", "GET /healthz/x", "GET /readyz/x", "GET /metrics/x", "GET /status/x", "GET /nothing", "POST /healthz", "DELETE /status" })
        {
            Assert.Equal(await AnswerAsync(gatewayAdmin, request), await AnswerAsync(controllerAdmin, request));
        }

        foreach (var request in new[] { "GET /healthz", "GET /status", "GET /metrics/x", "POST /metrics" })
        {
            Assert.Equal(await AnswerAsync(gatewayMetrics, request), await AnswerAsync(controllerMetrics, request));
        }

        // The expositions and the compilations differ: the status line and the content type agree.
        foreach (var (gatewayPort, controllerPort, request) in new[] { (gatewayAdmin, controllerAdmin, "GET /metrics"), (gatewayAdmin, controllerAdmin, "HEAD /metrics"), (gatewayAdmin, controllerAdmin, "GET /status"), (gatewayMetrics, controllerMetrics, "GET /metrics") })
        {
            Assert.Equal(StatusAndType(await AnswerAsync(gatewayPort, request)), StatusAndType(await AnswerAsync(controllerPort, request)));
        }

        Assert.Equal(0, await controller.TerminateAsync());
        Assert.Equal(0, await gateway.TerminateAsync());

        static async Task<string> AnswerAsync(int port, string request) =>
            await Net.HttpExchangeAsync(port, $"{request} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");

        static int Status(string answer) => int.Parse(answer.AsSpan(9, 3), System.Globalization.CultureInfo.InvariantCulture);

        static string StatusAndType(string answer) =>
            string.Join("\n", answer.Split("\r\n").TakeWhile(static l => l.Length > 0).Where(static l => l.StartsWith("HTTP/", StringComparison.Ordinal) || l.StartsWith("Content-Type:", StringComparison.OrdinalIgnoreCase)));
    }

    /// <summary>A data plane in <c>gateway</c> mode (reading the API server) for a Gateway <c>edge</c> of its own on a free port.</summary>
    private GatewayProcess StartEdgeGateway(params string[] arguments)
    {
        _server.ApplyYaml($$"""
            apiVersion: gateway.networking.k8s.io/v1
            kind: Gateway
            metadata: { name: edge, namespace: {{Namespace}} }
            spec:
              gatewayClassName: fsm
              listeners: [{ name: tcp, port: {{Net.FreePort()}}, protocol: TCP }]
            """);
        return GatewayProcess.Start(["gateway", "--gateway", $"{Namespace}/edge", "--kubeconfig", _kubeconfig, "--admin-port", "0", .. arguments]);
    }

    /// <summary>Scrapes until two scrapes 3 s apart agree on the controller's counters (nothing is still being written).</summary>
    private static async Task<Exposition> SteadyAsync(HttpClient http, Uri metrics)
    {
        Exposition? last = null;
        await Net.EventuallyAsync(
            async () =>
            {
                var before = await Exposition.ScrapeAsync(http, metrics);
                await Task.Delay(TimeSpan.FromSeconds(3));
                last = await Exposition.ScrapeAsync(http, metrics);
                return Counters(before) == Counters(last);
            },
            "the controller's counters steady",
            Promptly);
        return last!;

        static string Counters(Exposition e) => string.Join(
            ",",
            new[] { "fsmgateway_controller_status_writes_total", "fsmgateway_controller_provisioning_actions_total", "fsmgateway_config_revisions_applied_total" }.Select(n => e.Sum(n)));
    }

    /// <summary>The list requests the controller made (not watches).</summary>
    private int Lists() => _server.Requests.Count(r => r.Verb == "list" && r.Resource != "leases" && r.UserAgent?.Contains("(controller)", StringComparison.Ordinal) == true);

    private bool RouteWritten() => _server.Get(GatewayApi, "TCPRoute", Namespace, "orphan")?["status"]?["parents"] is JsonArray { Count: > 0 };

    private string? ProgrammedReason() =>
        _server.Get(GatewayApi, "Gateway", Namespace, "gw")?["status"]?["conditions"]?.AsArray()
            .FirstOrDefault(c => c?["type"]?.GetValue<string>() == "Programmed")?["reason"]?.GetValue<string>();
}
