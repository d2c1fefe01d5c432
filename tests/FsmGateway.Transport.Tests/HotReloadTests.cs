using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using FsmGateway.Routing;
using FsmGateway.Transport.Proxy;
using FsmGateway.Transport.Tests.TestSupport;

namespace FsmGateway.Transport.Tests;

/// <summary>ApplyAsync as a diff: what changes, what stays, and what a port that cannot be bound reports.</summary>
public sealed class HotReloadTests
{
    [Fact(Timeout = Guard.TestTimeout)]
    public async Task ApplyAsync_ListenerAdded_ConnectionOnUnchangedListenerKeepsFlowing()
    {
        await using var echo = TestBackend.Echo();
        var ports = FreePort.Get(2);
        var svc = Routes.Backend("svc", 1, echo);
        var first = Routes.Listener(ports[0], svc);

        // A short drain: had the unchanged listener been torn down and rebound, its connection would be cut soon.
        var options = new ProxyOptions { DrainTimeout = TimeSpan.FromMilliseconds(300) };
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(first), options);
        using var deadline = Guard.Deadline(30);
        using var client = await TestClient.ConnectAsync(ports[0], deadline.Token);
        await client.AssertEchoesAsync("before");

        // Keep bytes moving on the live connection while the new table is applied.
        using var stopPinging = new CancellationTokenSource();
        var pings = 0;
        var pinger = Task.Run(async () =>
        {
            while (!stopPinging.IsCancellationRequested)
            {
                await client.AssertEchoesAsync($"ping {pings++}");
            }
        });

        var bindings = await proxy.ApplyAsync(Routes.Table(first, Routes.Listener(ports[1], svc)), deadline.Token);
        Assert.All(bindings.ByPort.Values, static o => Assert.Equal(BindState.Bound, o.State));
        await Task.Delay(TimeSpan.FromSeconds(1.5), deadline.Token);
        await stopPinging.CancelAsync();
        await pinger.Within("the pings during the apply");

        await client.AssertEchoesAsync("after");
        Assert.True(pings > 0);
        using var other = await TestClient.ConnectAsync(ports[1], deadline.Token);
        await other.AssertEchoesAsync("new listener");
        Assert.Equal(2, echo.Accepted);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task ApplyAsync_ListenerRemoved_StopsAcceptingAndDrainsItsConnectionsUntilTheDeadline()
    {
        await using var echo = TestBackend.Echo();
        var ports = FreePort.Get(2);
        var (kept, removed) = (ports[0], ports[1]);
        var svc = Routes.Backend("svc", 1, echo);
        var drain = TimeSpan.FromSeconds(2);
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Listener(kept, svc), Routes.Listener(removed, svc)), new ProxyOptions { DrainTimeout = drain });
        using var deadline = Guard.Deadline(30);
        using var finishing = await TestClient.ConnectAsync(removed, deadline.Token);
        using var lingering = await TestClient.ConnectAsync(removed, deadline.Token);
        await finishing.AssertEchoesAsync();
        await lingering.AssertEchoesAsync();

        var bindings = await proxy.ApplyAsync(Routes.Table(Routes.Listener(kept, svc)), deadline.Token);
        var removedAt = Stopwatch.StartNew();

        Assert.Equal([kept], bindings.ByPort.Keys);
        Assert.Equal(SocketError.ConnectionRefused, await TestClient.TryConnectAsync(removed));

        // Open connections of the removed listener keep working: one finishes its exchange and closes cleanly.
        await finishing.AssertEchoesAsync("still here");
        await lingering.AssertEchoesAsync("me too");
        finishing.Shutdown(SocketShutdown.Send);
        var finished = await finishing.ReadToEndAsync();
        Assert.False(finished.Reset, "the finishing connection was reset instead of closed");

        // The other stays open past the drain deadline and is then aborted.
        var cut = await lingering.ReadToEndAsync();
        Assert.True(cut.ClosedWithoutData);
        Assert.True(removedAt.Elapsed >= drain - TimeSpan.FromMilliseconds(300), $"aborted {removedAt.Elapsed.TotalMilliseconds} ms after the removal, before the {drain.TotalSeconds} s drain deadline");
        Assert.True(await Guard.Eventually(() => proxy.ActiveConnections == 0), $"{proxy.ActiveConnections} connection(s) still open");

        // The listener that stayed is untouched.
        using var client = await TestClient.ConnectAsync(kept, deadline.Token);
        await client.AssertEchoesAsync();
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task ApplyAsync_EndpointChanged_NewConnectionsGoToNewEndpointAndLiveOneStaysOnOld()
    {
        await using var before = TestBackend.Echo();
        await using var after = TestBackend.Echo();
        var port = FreePort.Get();
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, before))));
        using var deadline = Guard.Deadline(30);
        using var live = await TestClient.ConnectAsync(port, deadline.Token);
        await live.AssertEchoesAsync("1234");

        var bindings = await proxy.ApplyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, after))), deadline.Token);
        Assert.Equal(BindState.Bound, bindings.ByPort[port].State);

        using var fresh = await TestClient.ConnectAsync(port, deadline.Token);
        await fresh.AssertEchoesAsync("abcdefgh");
        await live.AssertEchoesAsync("5678");

        Assert.Equal(1, before.Accepted);
        Assert.Equal(1, after.Accepted);
        Assert.Equal(8, before.BytesReceived);
        Assert.Equal(8, after.BytesReceived);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task ApplyAsync_PortInUse_ReportsFailedForItBoundForOthersAndBindsItOnceFreed()
    {
        await using var echo = TestBackend.Echo();
        var ports = FreePort.Get(2);
        var (busy, free) = (ports[0], ports[1]);
        var occupier = new TcpListener(IPAddress.Loopback, busy);
        occupier.Start();
        var table = Routes.Table(Routes.Listener(busy, Routes.Backend("svc", 1, echo)), Routes.Listener(free, Routes.Backend("svc", 1, echo)));
        await using var proxy = GatewayProxy.CreateDefault(new ProxyOptions());
        using var deadline = Guard.Deadline(30);
        try
        {
            var bindings = await proxy.ApplyAsync(table, deadline.Token);

            Assert.Equal(BindState.Failed, bindings.ByPort[busy].State);
            Assert.Equal("address already in use", bindings.ByPort[busy].Message);
            Assert.Equal(BindOutcome.Bound, bindings.ByPort[free]);
            using var client = await TestClient.ConnectAsync(free, deadline.Token);
            await client.AssertEchoesAsync();
        }
        finally
        {
            occupier.Stop();
        }

        var retried = await proxy.ApplyAsync(table, deadline.Token);

        Assert.Equal(BindOutcome.Bound, retried.ByPort[busy]);
        Assert.Equal(BindOutcome.Bound, retried.ByPort[free]);
        using var now = await TestClient.ConnectAsync(busy, deadline.Token);
        await now.AssertEchoesAsync("the proxy has it now");
        Assert.Equal(2, echo.Accepted);
    }
}
