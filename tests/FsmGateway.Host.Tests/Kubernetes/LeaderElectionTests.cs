using FsmGateway.Host.Tests.Support;
using FsmGateway.Testing.Kubernetes;

namespace FsmGateway.Host.Tests.Kubernetes;

/// <summary>Two controller replicas against one API server: only the Lease holder writes; on its shutdown the other takes over.</summary>
public sealed class LeaderElectionTests : IAsyncLifetime
{
    private const string GatewayApi = "gateway.networking.k8s.io/v1";
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("fsm-lease-");
    private FakeApiServer _server = null!;
    private string _kubeconfig = null!;

    public async Task InitializeAsync()
    {
        _server = await FakeApiServer.StartAsync(new FakeApiServerOptions { Token = "lease-token" });
        _server.InstallGatewayApiCrds();
        _kubeconfig = _server.WriteKubeconfig(Path.Combine(_dir.FullName, "kubeconfig"));
        _server.ApplyYaml(File.ReadAllText(RepoPaths.Of("deploy/30-gatewayclass.yaml")));
        _server.ApplyYaml(Gateway(Net.FreePort()));
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _dir.Delete(recursive: true);
    }

    [Fact]
    public async Task Only_the_leader_writes_and_the_other_replica_takes_over_when_it_stops()
    {
        await using var first = Controller();
        await first.WaitForLineAsync("leads: it writes status");
        await using var second = Controller();
        await second.WaitUntilReadyAsync();
        await second.WaitForLineAsync("Leader is ");
        await Net.EventuallyAsync(() => Task.FromResult(ListenerPort() is not null), "the leader writes the Gateway's status");

        // A change: the leader writes it; the follower, ready and compiling the same config, writes nothing.
        var port = Net.FreePort();
        _server.ApplyYaml(Gateway(port));
        await Net.EventuallyAsync(() => Task.FromResult(ListenerName() == $"tcp-{port}"), "the leader writes the new listener's status");
        Assert.Contains("Wrote the status of Gateway", first.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Wrote the status", second.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("leads: it writes status", second.Output, StringComparison.Ordinal);

        // The leader stops (releasing the Lease); the follower takes over and writes the next change.
        Assert.Equal(0, await first.TerminateAsync());
        await second.WaitForLineAsync("leads: it writes status", TimeSpan.FromSeconds(30));
        port = Net.FreePort();
        _server.ApplyYaml(Gateway(port));
        await Net.EventuallyAsync(() => Task.FromResult(ListenerName() == $"tcp-{port}"), "the new leader writes status", TimeSpan.FromSeconds(30));
        Assert.Contains("released Lease", first.Output, StringComparison.Ordinal);
        Assert.Equal(0, await second.TerminateAsync());
    }

    private GatewayProcess Controller() => GatewayProcess.Start(
        "controller", "--stream-port", "0", "--kubeconfig", _kubeconfig, "--admin-port", "0", "--leader-election-namespace", "fsm-system",
        "--lease-duration", "6s", "--renew-deadline", "4s", "--retry-period", "1s");

    private string? ListenerName() =>
        _server.Get(GatewayApi, "Gateway", "apps", "gw")?["status"]?["listeners"]?[0]?["name"]?.GetValue<string>();

    private string? ListenerPort() => ListenerName();

    private static string Gateway(int port) => $"""
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata: {"{"} name: gw, namespace: apps {"}"}
        spec:
          gatewayClassName: fsm
          listeners: [{"{"} name: tcp-{port}, port: {port}, protocol: TCP {"}"}]
        """;
}
