using System.Diagnostics;
using System.Net.Sockets;
using FsmGateway.Transport.Proxy;
using FsmGateway.Transport.Tests.TestSupport;

namespace FsmGateway.Transport.Tests;

/// <summary>Stopping: graceful drain, the deadline, and dispose.</summary>
public abstract class LifecycleTests : TransportTestBase
{
    [Fact(Timeout = Guard.TestTimeout)]
    public async Task StopAsync_ConnectionMidConversation_CompletesItsExchangeThenStopsAndRefusesNewConnections()
    {
        await using var echo = TestBackend.Echo();
        var port = FreePort.Get();
        await using var proxy = await StartProxyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, echo))), new ProxyOptions { DrainTimeout = TimeSpan.FromSeconds(20) });
        using var deadline = Guard.Deadline(30);
        using var client = await TestClient.ConnectAsync(port, deadline.Token);
        await client.AssertEchoesAsync("request, part 1");

        var stop = proxy.StopAsync(CancellationToken.None);

        Assert.Equal(SocketError.ConnectionRefused, await TestClient.TryConnectAsync(port));
        await client.AssertEchoesAsync("request, part 2");
        Assert.False(stop.IsCompleted, "StopAsync returned while a connection was still open and within the drain timeout");
        client.Shutdown(SocketShutdown.Send);
        var end = await client.ReadToEndAsync();
        Assert.False(end.Reset, "the connection was reset during a graceful stop");

        await stop.Within("StopAsync after the last connection closed");
        Assert.Equal(0, proxy.ActiveConnections);
        Assert.Empty(proxy.BoundEndPoints);
        Assert.Equal(SocketError.ConnectionRefused, await TestClient.TryConnectAsync(port));
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task StopAsync_ConnectionOutlivesDrainTimeout_IsAbortedAtTheDeadline()
    {
        await using var echo = TestBackend.Echo();
        var port = FreePort.Get();
        var drain = TimeSpan.FromSeconds(1);
        await using var proxy = await StartProxyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, echo))), new ProxyOptions { DrainTimeout = drain });
        using var deadline = Guard.Deadline(30);
        using var client = await TestClient.ConnectAsync(port, deadline.Token);
        await client.AssertEchoesAsync();

        var started = Stopwatch.StartNew();
        await proxy.StopAsync(CancellationToken.None).Within("StopAsync");

        Assert.True(started.Elapsed >= drain - TimeSpan.FromMilliseconds(200), $"StopAsync returned after {started.Elapsed.TotalMilliseconds} ms, before the drain timeout");
        Assert.True((await client.ReadToEndAsync()).ClosedWithoutData);
        Assert.Equal(0, proxy.ActiveConnections);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task DisposeAsync_OpenConnections_ClosesThemAtOnce()
    {
        await using var echo = TestBackend.Echo();
        var port = FreePort.Get();
        var proxy = await StartProxyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, echo))), new ProxyOptions { DrainTimeout = TimeSpan.FromMinutes(5) });
        using var deadline = Guard.Deadline(30);
        using var client = await TestClient.ConnectAsync(port, deadline.Token);
        await client.AssertEchoesAsync();

        await proxy.DisposeAsync().AsTask().Within("DisposeAsync with a 5 minute drain timeout");

        Assert.True((await client.ReadToEndAsync()).ClosedWithoutData);
        Assert.True(await Guard.Eventually(() => echo.Open == 0), "the upstream connection is still open");
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task DisposeAsync_ConnectionOfRemovedListenerStillDraining_ClosesItAtOnce()
    {
        await using var echo = TestBackend.Echo();
        var ports = FreePort.Get(2);
        var svc = Routes.Backend("svc", 1, echo);
        var proxy = await StartProxyAsync(Routes.Table(Routes.Listener(ports[0], svc), Routes.Listener(ports[1], svc)), new ProxyOptions { DrainTimeout = TimeSpan.FromMinutes(5) });
        using var deadline = Guard.Deadline(30);
        using var client = await TestClient.ConnectAsync(ports[1], deadline.Token);
        await client.AssertEchoesAsync();
        await proxy.ApplyAsync(Routes.Table(Routes.Listener(ports[0], svc)), deadline.Token);
        await client.AssertEchoesAsync("draining");

        await proxy.DisposeAsync().AsTask().Within("DisposeAsync while a removed listener drains with a 5 minute deadline");

        Assert.True((await client.ReadToEndAsync()).ClosedWithoutData);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task StopAsync_ConnectionOfRemovedListenerStillDraining_WaitsForItToFinish()
    {
        await using var echo = TestBackend.Echo();
        var ports = FreePort.Get(2);
        var svc = Routes.Backend("svc", 1, echo);
        await using var proxy = await StartProxyAsync(Routes.Table(Routes.Listener(ports[0], svc), Routes.Listener(ports[1], svc)), new ProxyOptions { DrainTimeout = TimeSpan.FromSeconds(20) });
        using var deadline = Guard.Deadline(30);
        using var client = await TestClient.ConnectAsync(ports[1], deadline.Token);
        await client.AssertEchoesAsync();
        await proxy.ApplyAsync(Routes.Table(Routes.Listener(ports[0], svc)), deadline.Token);

        var stop = proxy.StopAsync(CancellationToken.None);

        await client.AssertEchoesAsync("a graceful stop lets me finish");
        Assert.False(stop.IsCompleted, "StopAsync returned while a removed listener's connection was still draining");
        client.Shutdown(SocketShutdown.Send);
        Assert.False((await client.ReadToEndAsync()).Reset);
        await stop.Within("StopAsync after the draining connection closed");
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task DisposeAsync_CalledTwice_SecondCallDoesNothing()
    {
        var proxy = await StartProxyAsync(Routes.Table(Routes.Unrouted(FreePort.Get())));

        await proxy.DisposeAsync();
        await proxy.DisposeAsync();
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task ApplyAsync_AfterStop_Throws()
    {
        await using var proxy = GatewayProxy.CreateDefault();
        await proxy.StopAsync(CancellationToken.None);

        await Assert.ThrowsAsync<ObjectDisposedException>(() => proxy.ApplyAsync(Routes.Table(Routes.Unrouted(FreePort.Get())), CancellationToken.None));
    }
}

/// <summary>The lifecycle tests on the portable sockets transport.</summary>
public sealed class SocketsLifecycleTests : LifecycleTests
{
    protected override ProxyTransport Transport => ProxyTransport.Sockets;
}

/// <summary>The lifecycle tests on the Linux transport (splice, accept4, listener shards).</summary>
public sealed class LinuxLifecycleTests : LifecycleTests
{
    protected override ProxyTransport Transport => ProxyTransport.Linux;
}
