using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json.Nodes;
using FsmGateway.Host.Tests.Support;
using FsmGateway.Testing.Kubernetes;
using static FsmGateway.Host.Tests.Support.SeedCluster;

namespace FsmGateway.Host.Tests.Kubernetes;

/// <summary>
/// Two controller replicas with leader election, each serving the config stream, and a data plane given both
/// addresses (as a Service in front of the replicas would reach either): real processes against the fake API server.
/// Only the leader writes status, yet it counts the reports of a data plane connected to the other replica (shared
/// through that replica's report Lease, ADR 0010); a data plane moved between replicas keeps serving and Programmed
/// does not flap; the reports of a replica that died expire with its Lease.
/// </summary>
public sealed class ControllerReplicasTests : IAsyncLifetime
{

    private readonly int _streamA = Net.FreePort();
    private readonly int _streamB = Net.FreePort();
    private SeedCluster _cluster = null!;

    public async Task InitializeAsync()
    {
        _cluster = await SeedCluster.StartAsync("replicas-token");
    }

    public async Task DisposeAsync()
    {
        await _cluster.DisposeAsync();
    }

    [Fact]
    public async Task DataPlaneOnTheNonLeader_IsProgrammed_AndMovedToTheLeaderWhenItsReplicaDies_WithoutFlapping()
    {
        await using var echo = new EchoServer();
        _cluster.ApplyEndpoints(echo.Port);
        await using var leader = StartController("controller-a", _streamA);
        await leader.WaitForLineAsync("leads: it writes status");
        await using var follower = StartController("controller-b", _streamB);
        await follower.WaitUntilReadyAsync();
        await follower.WaitForLineAsync("Leader is ");

        // The data plane tries the follower first: its stream and its reports are the follower's alone.
        await using var dataPlane = StartDataPlane(_streamB, _streamA);
        await dataPlane.WaitUntilReadyAsync();
        await follower.WaitForLineAsync("data plane dp-0 subscribed for");
        await Net.EventuallyAsync(
            () => Task.FromResult(_cluster.GatewayStatus() is { } s && Is(s, "Programmed", "True", "Programmed")
                && Listener(s, "foo") is { } foo && Is(foo, "Programmed", "True", "Programmed")
                && Listener(s, "bar") is { } bar && Is(bar, "Programmed", "True", "Programmed")),
            $"the leader writes Programmed=True from the follower's data plane's report; status: {_cluster.GatewayStatus()?.ToJsonString()}",
            TimeSpan.FromSeconds(30));
        Assert.DoesNotContain("subscribed for", leader.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Wrote the status", follower.Output, StringComparison.Ordinal);
        using var held = await Net.ConnectAsync(_cluster.Foo);
        Assert.Equal("before", await Net.RoundTripAsync(held, "before"));

        // From here on, every status the leader writes must keep the Gateway Programmed.
        using var watching = new CancellationTokenSource();
        var seen = new ConcurrentQueue<string>();
        var watcher = Task.Run(async () =>
        {
            while (!watching.IsCancellationRequested)
            {
                if (_cluster.GatewayStatus() is { } s && !(Is(s, "Programmed", "True", "Programmed")
                    && Listener(s, "foo") is { } foo && Is(foo, "Programmed", "True", "Programmed")
                    && Listener(s, "bar") is { } bar && Is(bar, "Programmed", "True", "Programmed")))
                {
                    seen.Enqueue(s.ToJsonString());
                }

                await Task.Delay(20, CancellationToken.None);
            }
        });

        // The follower dies (SIGKILL): the data plane keeps its connection, moves to the leader, and keeps serving.
        await follower.DisposeAsync();
        await dataPlane.WaitForLineAsync("Config stream from .* ended");
        await leader.WaitForLineAsync("data plane dp-0 subscribed for", TimeSpan.FromSeconds(30));
        Assert.Equal("during", await Net.RoundTripAsync(held, "during"));
        Assert.Equal("new", await Net.EchoOnceAsync(_cluster.Bar, "new"));

        // The dead replica's reports expire (its Lease is not renewed for its lease duration); the data plane's report to
        // the leader carries on, so the Gateway stays Programmed throughout.
        await leader.WaitForLineAsync("controller-b has not renewed its data-plane reports", TimeSpan.FromSeconds(30));
        await Task.Delay(TimeSpan.FromSeconds(2));
        await watching.CancelAsync();
        await watcher;
        Assert.True(seen.IsEmpty, $"Programmed flapped while the data plane moved: {seen.FirstOrDefault()}");
        Assert.Equal("after", await Net.RoundTripAsync(held, "after"));
        Assert.False(dataPlane.HasExited);

        // A data plane that is gone for good stops counting once its report outlived its stream by the lease duration.
        await dataPlane.DisposeAsync();
        await Net.EventuallyAsync(
            () => Task.FromResult(_cluster.GatewayStatus() is { } s && Is(s, "Programmed", "False", "Pending")),
            $"Programmed=False/Pending once the data plane is gone; status: {_cluster.GatewayStatus()?.ToJsonString()}",
            TimeSpan.FromSeconds(30));
        Assert.Equal(0, await leader.TerminateAsync());
    }

    [Fact]
    public async Task ReplicaDiesWithItsDataPlane_ItsReportsExpire_AndTheLeaderWritesProgrammedFalse()
    {
        await using var echo = new EchoServer();
        _cluster.ApplyEndpoints(echo.Port);
        await using var leader = StartController("controller-a", _streamA);
        await leader.WaitForLineAsync("leads: it writes status");
        await using var follower = StartController("controller-b", _streamB);
        await follower.WaitUntilReadyAsync();
        await using var dataPlane = StartDataPlane(_streamB);
        await dataPlane.WaitUntilReadyAsync();
        await Net.EventuallyAsync(
            () => Task.FromResult(_cluster.GatewayStatus() is { } s && Is(s, "Programmed", "True", "Programmed")),
            $"Programmed=True from the follower's data plane; status: {_cluster.GatewayStatus()?.ToJsonString()}",
            TimeSpan.FromSeconds(30));

        // Both die at once (a node lost): nothing will ever report for them again, and the leader must not keep the
        // Gateway Programmed on the dead replica's last word.
        await dataPlane.DisposeAsync();
        await follower.DisposeAsync();
        await Net.EventuallyAsync(
            () => Task.FromResult(_cluster.GatewayStatus() is { } s && Is(s, "Programmed", "False", "Pending")
                && Condition(s, "Programmed")!["message"]!.GetValue<string>().Contains("no data plane", StringComparison.Ordinal)),
            $"Programmed=False/Pending once the dead replica's reports expire; status: {_cluster.GatewayStatus()?.ToJsonString()}",
            TimeSpan.FromSeconds(30));
        Assert.Contains("controller-b has not renewed its data-plane reports", leader.Output, StringComparison.Ordinal);

        // Two lease durations on, the leader deletes the dead replica's report Lease.
        await Net.EventuallyAsync(
            () => Task.FromResult(_cluster.Server.List("coordination.k8s.io/v1", "Lease").All(l => l["metadata"]?["name"]?.GetValue<string>() != "fsm-gateway-reports-controller-b")),
            "the expired report Lease is deleted",
            TimeSpan.FromSeconds(30));
        Assert.Equal(0, await leader.TerminateAsync());
    }

    private GatewayProcess StartController(string pod, int streamPort) => GatewayProcess.Start(
        new Dictionary<string, string?> { ["POD_NAME"] = pod },
        "controller", "--stream-insecure", "--kubeconfig", _cluster.Kubeconfig, "--admin-port", "0", "--leader-election-namespace", "fsm-system",
        "--lease-duration", "6s", "--renew-deadline", "4s", "--retry-period", "1s",
        "--stream-address", "127.0.0.1", "--stream-port", streamPort.ToString(CultureInfo.InvariantCulture));

    private GatewayProcess StartDataPlane(params int[] streamPorts) => GatewayProcess.Start(
        new Dictionary<string, string?> { ["KUBECONFIG"] = null, ["POD_NAME"] = "dp-0" },
        [
            "gateway", "--gateway", $"{Namespace}/{GatewayName}", "--admin-port", "0",
            .. streamPorts.SelectMany(p => new[] { "--controller-address", $"http://127.0.0.1:{p.ToString(CultureInfo.InvariantCulture)}" }),
        ]);
}
