using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using FsmGateway.Host.Tests.Support;
using FsmGateway.Testing.Kubernetes;
using static FsmGateway.Host.Tests.Support.SeedCluster;

namespace FsmGateway.Host.Tests.Kubernetes;

/// <summary>
/// The controller streams a data plane its Gateway's config (ADR 0010), end to end with real processes against the
/// fake API server: <c>fsm-gateway controller</c> and <c>fsm-gateway gateway --controller-address</c>, the seed
/// manifest with its two listeners on free ports, loopback backends. The data plane has no kubeconfig and makes no
/// request to the API server; what it binds comes back on the stream and decides <c>Programmed</c>.
/// </summary>
public sealed class ConfigStreamTests : IAsyncLifetime
{

    private readonly int _stream = Net.FreePort();
    private SeedCluster _cluster = null!;

    public async Task InitializeAsync()
    {
        _cluster = await SeedCluster.StartAsync("stream-token");
    }

    public async Task DisposeAsync()
    {
        await _cluster.DisposeAsync();
    }

    [Fact]
    public async Task DataPlaneWithoutApiAccess_ServesBothListeners_AndProgrammedFollowsWhatItBound()
    {
        await using var backendA = new BannerServer("A");
        await using var backendB = new BannerServer("B");
        _cluster.ApplyEndpoints(backendA.Port);
        await using var controller = StartController();
        await controller.WaitUntilReadyAsync();

        // Nothing provisioned (no --image) and no data plane connected: not Programmed, and the status says why.
        await Net.EventuallyAsync(
            () => Task.FromResult(_cluster.GatewayStatus() is { } s && Condition(s, "Programmed") is { } p
                && p["status"]!.GetValue<string>() == "False" && p["reason"]!.GetValue<string>() == "Pending"
                && Listener(s, "foo") is { } foo && Condition(foo, "Programmed")!["message"]!.GetValue<string>().Contains("no data plane is provisioned", StringComparison.Ordinal)),
            $"Programmed=False/Pending saying no data plane is provisioned; status: {_cluster.GatewayStatus()?.ToJsonString()}",
            TimeSpan.FromSeconds(30));

        // The data plane's second port is taken: it binds the first, and reports the second's failure.
        using var squatter = new TcpListener(IPAddress.Any, _cluster.Bar);
        squatter.Start();
        await using var dataPlane = StartDataPlane();
        await dataPlane.WaitUntilReadyAsync();
        Assert.Equal("A", await BannerServer.ReadBannerAsync(_cluster.Foo));
        await Net.EventuallyAsync(
            () => Task.FromResult(_cluster.GatewayStatus() is { } s
                && Listener(s, "bar") is { } bar && Is(bar, "Accepted", "False", "PortUnavailable") && Is(bar, "Programmed", "False", "Invalid")
                && Listener(s, "foo") is { } foo && Is(foo, "Programmed", "True", "Programmed")),
            $"listener bar PortUnavailable and not Programmed, foo Programmed; status: {_cluster.GatewayStatus()?.ToJsonString()}",
            TimeSpan.FromSeconds(15));

        // The port frees: the data plane binds it at its next retry, and the status clears.
        squatter.Stop();
        await Net.EventuallyAsync(
            () => Task.FromResult(_cluster.GatewayStatus() is { } s && Is(s, "Programmed", "True", "Programmed")
                && Listener(s, "bar") is { } bar && Is(bar, "Accepted", "True", "Accepted") && Is(bar, "Programmed", "True", "Programmed")),
            $"listener bar bound and Programmed once its port is free; status: {_cluster.GatewayStatus()?.ToJsonString()}",
            TimeSpan.FromSeconds(30));
        Assert.Equal("A", await BannerServer.ReadBannerAsync(_cluster.Bar));

        // Changes stream through: the endpoints move to another backend.
        _cluster.ApplyEndpoints(backendB.Port);
        // (Listeners take a new table one after the other, so each is waited for.)
        await Net.EventuallyAsync(async () => await BannerServer.ReadBannerAsync(_cluster.Foo) == "B", "connections to foo reach the new endpoint");
        await Net.EventuallyAsync(async () => await BannerServer.ReadBannerAsync(_cluster.Bar) == "B", "connections to bar reach the new endpoint");

        Assert.Equal(0, await dataPlane.TerminateAsync());
        Assert.Equal(0, await controller.TerminateAsync());

        // Every request the API server saw came from the controller: none from the data plane.
        var calls = _cluster.Server.Requests.Where(r => r.Resource.Length > 0).ToList();
        Assert.NotEmpty(calls);
        Assert.DoesNotContain(calls, r => r.UserAgent?.Contains("(gateway)", StringComparison.Ordinal) == true);
        Assert.All(calls, r => Assert.Contains("(controller)", r.UserAgent ?? string.Empty, StringComparison.Ordinal));
    }

    [Fact]
    public async Task ControllerKilledAndRestarted_TheOpenConnectionLivesAndNewConnectionsAreServed()
    {
        await using var echo = new EchoServer();
        _cluster.ApplyEndpoints(echo.Port);

        // A data plane started before any controller is up is alive but not ready: it has no config yet.
        await using var dataPlane = StartDataPlane();
        await dataPlane.WaitForAdminAsync();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var notReady = await http.GetAsync(new Uri(dataPlane.AdminUri!, "/readyz"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, notReady.StatusCode);
        Assert.True(await Net.IsRefusedAsync(_cluster.Foo));

        var controller = StartController();
        try
        {
            await controller.WaitUntilReadyAsync();
            await dataPlane.WaitForLineAsync("Gateway ready");
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri(dataPlane.AdminUri!, "/readyz"))).StatusCode);
            using var held = await Net.ConnectAsync(_cluster.Foo);
            Assert.Equal("before", await Net.RoundTripAsync(held, "before"));

            // The controller dies (SIGKILL): the data plane keeps its config, its connection and its readiness.
            await controller.DisposeAsync();
            await dataPlane.WaitForLineAsync("Config stream from .* ended");
            Assert.Equal("during", await Net.RoundTripAsync(held, "during"));
            Assert.Equal("new", await Net.EchoOnceAsync(_cluster.Bar, "new"));
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri(dataPlane.AdminUri!, "/readyz"))).StatusCode);

            // A change made while no controller runs reaches the data plane once one is back.
            await using var other = new EchoServer();
            _cluster.ApplyEndpoints(other.Port);

            controller = StartController();
            await controller.WaitUntilReadyAsync();
            await Net.EventuallyAsync(() => Task.FromResult(dataPlane.CountLines("Config stream: synced") >= 2), "the data plane resyncs with the new controller", TimeSpan.FromSeconds(30));
            Assert.Equal("after", await Net.RoundTripAsync(held, "after"));
            Assert.Equal("again", await Net.EchoOnceAsync(_cluster.Foo, "again"));
            Assert.False(dataPlane.HasExited);

            // The new controller learns what the data plane bound at once, without a new apply.
            await Net.EventuallyAsync(
                () => Task.FromResult(_cluster.GatewayStatus() is { } s && Is(s, "Programmed", "True", "Programmed")),
                $"Programmed=True from the data plane's report to the new controller; status: {_cluster.GatewayStatus()?.ToJsonString()}",
                TimeSpan.FromSeconds(30));
        }
        finally
        {
            await controller.DisposeAsync();
        }

        Assert.Equal(0, await dataPlane.TerminateAsync());
    }

    private GatewayProcess StartController() => GatewayProcess.Start(
        "controller", "--stream-insecure", "--kubeconfig", _cluster.Kubeconfig, "--admin-port", "0", "--no-leader-election",
        "--stream-address", "127.0.0.1", "--stream-port", _stream.ToString(System.Globalization.CultureInfo.InvariantCulture));

    private GatewayProcess StartDataPlane() => GatewayProcess.Start(
        new Dictionary<string, string?> { ["KUBECONFIG"] = null, ["POD_NAME"] = "dp-0" },
        "gateway", "--gateway", $"{Namespace}/{GatewayName}", "--controller-address", $"http://127.0.0.1:{_stream}", "--admin-port", "0");
}
