using System.Text.Json.Nodes;
using FsmGateway.Host.Tests.Support;
using FsmGateway.Testing.Kubernetes;
using static FsmGateway.Host.Tests.Support.SeedCluster;

namespace FsmGateway.Host.Tests.Kubernetes;

/// <summary>
/// The controller and a data plane, each a real process, against a fake API server that goes down (connections
/// refused) and comes back on the same port with its watch history gone, so that every resumed watch gets 410 Gone.
/// </summary>
public sealed class ApiServerOutageTests : IAsyncLifetime
{
    private const string LeaseApi = "coordination.k8s.io/v1";
    private const string DataPlane = "fsm-gateway-simple-fsm-gateway";

    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private SeedCluster _cluster = null!;

    public async Task InitializeAsync()
    {
        _cluster = await SeedCluster.StartAsync("outage-token");
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _cluster.DisposeAsync();
    }

    [Fact]
    public async Task Controller_rides_out_a_30s_API_server_outage_leading_throughout_not_ready_meanwhile_and_catches_up_after_while_the_data_plane_serves()
    {
        await using var backendA = new BannerServer("A");
        await using var backendB = new BannerServer("B");
        _cluster.ApplyEndpoints(backendA.Port);

        // A renew deadline longer than the outage: the leader keeps leading through it.
        await using var controller = GatewayProcess.Start(
            "controller", "--stream-port", "0", "--kubeconfig", _cluster.Kubeconfig, "--image", "example.com/fsm-gateway:test", "--admin-port", "0",
            "--leader-election-namespace", "fsm-system", "--lease-duration", "60s", "--renew-deadline", "45s", "--retry-period", "1s");
        await controller.WaitUntilReadyAsync();
        await controller.WaitForLineAsync("leads: it writes status");
        var deployment = await _cluster.EventuallyGetAsync("apps/v1", "Deployment", Namespace, DataPlane, controller);
        await _cluster.EventuallyGetAsync("v1", "Service", Namespace, DataPlane, controller); // created after the Deployment
        _cluster.Server.SetStatus("apps/v1", "Deployment", Namespace, DataPlane, JsonNode.Parse("""{"replicas":1,"availableReplicas":1,"readyReplicas":1}""")!);
        _cluster.Server.SetStatus("v1", "Service", Namespace, DataPlane, JsonNode.Parse("""{"loadBalancer":{"ingress":[{"ip":"127.0.0.1"}]}}""")!);
        // Programmed needs a data plane reporting on the config stream; this one reads the API server (watch mode), so
        // the status written is enough here.
        await Net.EventuallyAsync(() => Task.FromResult(Programmed(GatewayName) is not null), "the Gateway has status", TimeSpan.FromSeconds(30));

        // The data plane, as the Deployment runs it, in the mode that reads the API server.
        var args = deployment["spec"]!["template"]!["spec"]!["containers"]![0]!["args"]!.AsArray().Select(a => a!.GetValue<string>()).ToList();
        args = [.. args.Select((a, i) => i > 0 && args[i - 1] == "--admin-port" ? "0" : i > 0 && args[i - 1] == "--admin-address" ? "127.0.0.1" : a)];
        await using var dataPlane = GatewayProcess.Start([.. args, "--kubeconfig", _cluster.Kubeconfig]);
        await dataPlane.WaitUntilReadyAsync();
        Assert.Equal("A", await BannerServer.ReadBannerAsync(_cluster.Foo));
        Assert.Equal(200, (await ReadyzAsync(controller)).Status);
        var holder = LeaseHolder();
        Assert.NotNull(holder);

        // The API server goes away for 30 s. Meanwhile the cluster changes behind it (as another API server replica
        // would record): a second Gateway, and the backend moves.
        await _cluster.Server.StopAsync();
        var outage = DateTime.UtcNow;
        var wasNotReady = false;
        var changed = false;
        var gw2Port = Net.FreePort();
        while (DateTime.UtcNow - outage < TimeSpan.FromSeconds(30))
        {
            Assert.False(controller.HasExited, $"the controller exited ({controller.Output})");
            Assert.False(dataPlane.HasExited, $"the data plane exited ({dataPlane.Output})");
            Assert.Equal("A", await BannerServer.ReadBannerAsync(_cluster.Foo));
            Assert.Equal(200, (await ReadyzAsync(dataPlane)).Status);
            var (status, body) = await ReadyzAsync(controller);
            if (status == 503)
            {
                Assert.Contains("kubernetes-api: the Kubernetes API server has not answered since", body, StringComparison.Ordinal);
                wasNotReady = true;
            }

            if (!changed && DateTime.UtcNow - outage > TimeSpan.FromSeconds(5))
            {
                changed = true;
                _cluster.ApplyEndpoints(backendB.Port);
                _cluster.Server.ApplyYaml(SecondGateway(gw2Port), Namespace);
            }

            await Task.Delay(1000);
        }

        Assert.True(wasNotReady, "the controller's /readyz never said 503 while the API server was away");
        Assert.Equal(503, (await ReadyzAsync(controller)).Status);

        // Back, with no watch history: everything is listed again and caught up.
        await _cluster.Server.RestartAsync();
        await Net.EventuallyAsync(async () => (await ReadyzAsync(controller)).Status == 200, "the controller is ready again", TimeSpan.FromSeconds(20));
        await Net.EventuallyAsync(
            () => Task.FromResult(_cluster.Server.Get("apps/v1", "Deployment", Namespace, "fsm-gateway-second") is not null && _cluster.Server.Get("v1", "Service", Namespace, "fsm-gateway-second") is not null),
            $"the Gateway added during the outage is provisioned; controller output:\n{controller.Output}",
            TimeSpan.FromSeconds(20));
        await Net.EventuallyAsync(() => Task.FromResult(Programmed("second") is not null), "the Gateway added during the outage has status", TimeSpan.FromSeconds(20));
        await Net.EventuallyAsync(async () => await BannerServer.ReadBannerAsync(_cluster.Foo) == "B", "the data plane routes to the backend moved during the outage", TimeSpan.FromSeconds(20));

        // One leader, the same one, throughout.
        Assert.Equal(holder, LeaseHolder());
        Assert.Equal(1, controller.CountLines("leads: it writes status"));
        Assert.DoesNotContain("no longer leads", controller.Output, StringComparison.Ordinal);
        Assert.Contains("still leading, retrying until the renew deadline", controller.Output, StringComparison.Ordinal);

        Assert.Equal(0, await dataPlane.TerminateAsync());
        Assert.Equal(0, await controller.TerminateAsync());
    }

    [Fact]
    public async Task Controller_whose_renew_deadline_passes_during_an_outage_steps_down_keeps_running_and_leads_again_when_the_server_is_back()
    {
        await using var controller = GatewayProcess.Start(
            "controller", "--stream-port", "0", "--kubeconfig", _cluster.Kubeconfig, "--admin-port", "0", "--leader-election-namespace", "fsm-system",
            "--lease-duration", "4s", "--renew-deadline", "3s", "--retry-period", "500ms");
        await controller.WaitUntilReadyAsync();
        await controller.WaitForLineAsync("leads: it writes status");
        await Net.EventuallyAsync(() => Task.FromResult(Programmed(GatewayName) is not null), "the leader writes status", TimeSpan.FromSeconds(30));

        await _cluster.Server.StopAsync();
        await controller.WaitForLineAsync("could not renew Lease .* for the renew deadline", TimeSpan.FromSeconds(30));
        await controller.WaitForLineAsync("no longer leads");
        Assert.False(controller.HasExited, $"the controller exited ({controller.Output})");
        Assert.Equal(503, (await ReadyzAsync(controller)).Status);

        await _cluster.Server.RestartAsync();
        await Net.EventuallyAsync(() => Task.FromResult(controller.CountLines("leads: it writes status") == 2), $"the controller leads again; output:\n{controller.Output}", TimeSpan.FromSeconds(30));
        var gateway = _cluster.Server.Get(GatewayApi, "Gateway", Namespace, GatewayName)!;
        gateway["spec"]!["listeners"]!.AsArray().Add(new JsonObject { ["name"] = "baz", ["port"] = Net.FreePort(), ["protocol"] = "TCP" });
        _cluster.Server.Apply(gateway);
        await Net.EventuallyAsync(
            () => Task.FromResult(_cluster.Server.Get(GatewayApi, "Gateway", Namespace, GatewayName)?["status"]?["listeners"]?.AsArray().Any(l => l?["name"]?.GetValue<string>() == "baz") == true),
            "the leader writes the new listener's status",
            TimeSpan.FromSeconds(30));
        Assert.Equal(0, await controller.TerminateAsync());
    }

    [Fact]
    public async Task Controller_started_while_the_API_server_is_unreachable_keeps_running_not_ready_and_becomes_ready_when_it_appears()
    {
        await _cluster.Server.StopAsync();
        await using var controller = GatewayProcess.Start(
            "controller", "--stream-port", "0", "--kubeconfig", _cluster.Kubeconfig, "--admin-port", "0", "--leader-election-namespace", "fsm-system",
            "--lease-duration", "6s", "--renew-deadline", "4s", "--retry-period", "1s");
        await controller.WaitForAdminAsync();
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (DateTime.UtcNow < until)
        {
            Assert.False(controller.HasExited, $"the controller exited ({controller.Output})");
            var (status, body) = await ReadyzAsync(controller);
            Assert.Equal(503, status);
            Assert.Contains("waiting for the first config sync", body, StringComparison.Ordinal);
            await Task.Delay(500);
        }

        Assert.Contains("kubernetes-api: the Kubernetes API server has not answered since", (await ReadyzAsync(controller)).Body, StringComparison.Ordinal);
        await _cluster.Server.RestartAsync();
        await controller.WaitForLineAsync("Gateway ready", TimeSpan.FromSeconds(30));
        await Net.EventuallyAsync(async () => (await ReadyzAsync(controller)).Status == 200, "the controller is ready once the API server answers", TimeSpan.FromSeconds(20));
        await controller.WaitForLineAsync("leads: it writes status");
        await Net.EventuallyAsync(() => Task.FromResult(Programmed(GatewayName) is not null), "the leader writes status", TimeSpan.FromSeconds(30));
        Assert.Equal(0, await controller.TerminateAsync());
    }

    private async Task<(int Status, string Body)> ReadyzAsync(GatewayProcess process)
    {
        using var response = await _http.GetAsync(new Uri(process.AdminUri!, "/readyz"));
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private string? LeaseHolder() =>
        _cluster.Server.Get(LeaseApi, "Lease", "fsm-system", "fsm-gateway-controller")?["spec"]?["holderIdentity"]?.GetValue<string>();

    private string? Programmed(string gateway) =>
        _cluster.Server.Get(GatewayApi, "Gateway", Namespace, gateway)?["status"]?["conditions"]?.AsArray()
            .FirstOrDefault(c => c?["type"]?.GetValue<string>() == "Programmed")?["status"]?.GetValue<string>();

    private static string SecondGateway(int port) => $"""
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata: {"{"} name: second {"}"}
        spec:
          gatewayClassName: fsm
          listeners: [{"{"} name: tcp, port: {port}, protocol: TCP {"}"}]
        """;
}
