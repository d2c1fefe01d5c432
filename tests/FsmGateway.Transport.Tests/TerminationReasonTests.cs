using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net.Sockets;
using FsmGateway.Routing;
using FsmGateway.Transport.Proxy;
using FsmGateway.Transport.Tests.TestSupport;

namespace FsmGateway.Transport.Tests;

/// <summary>
/// Why each connection ended, as <c>fsmgateway.connections.closed{reason}</c> counts it: real sockets, one scripted
/// connection per reason, the counter read for the listener's own port (other tests run at the same time).
/// </summary>
public abstract class TerminationReasonTests : TransportTestBase
{
    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Closed_ClientEndsFirst_IsClientClosed()
    {
        await using var backend = TestBackend.Echo();
        var port = FreePort.Get();
        using var closed = new ClosedCounter(port);
        await using var proxy = await StartProxyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, backend))));

        using (var client = await TestClient.ConnectAsync(port, CancellationToken.None))
        {
            await client.AssertEchoesAsync();
            client.Shutdown(SocketShutdown.Send);
            Assert.False((await client.ReadToEndAsync()).Reset);
        }

        await closed.WaitForAsync("client_closed");
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Closed_BackendEndsFirst_IsBackendClosed()
    {
        await using var backend = TestBackend.Tagging("hello");
        var port = FreePort.Get();
        using var closed = new ClosedCounter(port);
        await using var proxy = await StartProxyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, backend))));

        using (var client = await TestClient.ConnectAsync(port, CancellationToken.None))
        {
            Assert.Equal("hello"u8.ToArray(), (await client.ReadToEndAsync()).Data);
        }

        await closed.WaitForAsync("backend_closed");
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Closed_ClientResets_IsClientReset()
    {
        await using var backend = TestBackend.Echo();
        var port = FreePort.Get();
        using var closed = new ClosedCounter(port);
        await using var proxy = await StartProxyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, backend))));

        using (var client = await TestClient.ConnectAsync(port, CancellationToken.None))
        {
            await client.AssertEchoesAsync();
            client.LingerState = new LingerOption(enable: true, seconds: 0); // close sends RST
        }

        await closed.WaitForAsync("client_reset");
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Closed_BackendResets_IsBackendReset()
    {
        await using var backend = TestBackend.Start(static async (_, socket, cancellationToken) =>
        {
            var buffer = new byte[4];
            await socket.ReceiveExactlyAsync(buffer, cancellationToken);
            socket.LingerState = new LingerOption(enable: true, seconds: 0); // the handler's close sends RST
        });
        var port = FreePort.Get();
        using var closed = new ClosedCounter(port);
        await using var proxy = await StartProxyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, backend))));

        using (var client = await TestClient.ConnectAsync(port, CancellationToken.None))
        {
            await client.SendAllAsync("ping"u8.ToArray(), CancellationToken.None);
            Assert.True((await client.ReadToEndAsync()).Reset, "the backend's reset was not passed on as a reset");
        }

        await closed.WaitForAsync("backend_reset");
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Closed_IdleAndMaxDuration_AreTheirOwnReasons()
    {
        await using var backend = TestBackend.Echo();
        var ports = FreePort.Get(2);
        using var idleClosed = new ClosedCounter(ports[0]);
        await using (var idleProxy = await StartProxyAsync(
            Routes.Table(Routes.Listener(ports[0], Routes.Backend("svc", 1, backend))),
            new ProxyOptions { IdleTimeout = TimeSpan.FromMilliseconds(300) }))
        {
            using var client = await TestClient.ConnectAsync(ports[0], CancellationToken.None);
            await client.AssertEchoesAsync();
            await client.ReadToEndAsync();
            await idleClosed.WaitForAsync("idle_timeout");
        }

        using var maxClosed = new ClosedCounter(ports[1]);
        await using (var maxProxy = await StartProxyAsync(
            Routes.Table(Routes.Listener(ports[1], Routes.Backend("svc", 1, backend))),
            new ProxyOptions { MaxConnectionDuration = TimeSpan.FromMilliseconds(300) }))
        {
            using var client = await TestClient.ConnectAsync(ports[1], CancellationToken.None);
            await client.AssertEchoesAsync();
            await client.ReadToEndAsync();
            await maxClosed.WaitForAsync("max_duration");
        }
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Closed_OpenAtTheDrainDeadline_IsDrain()
    {
        await using var backend = TestBackend.Echo();
        var port = FreePort.Get();
        using var closed = new ClosedCounter(port);
        var proxy = await StartProxyAsync(
            Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, backend))),
            new ProxyOptions { DrainTimeout = TimeSpan.FromMilliseconds(200) });
        await using (proxy)
        {
            using var client = await TestClient.ConnectAsync(port, CancellationToken.None);
            await client.AssertEchoesAsync();
            await proxy.StopAsync(CancellationToken.None).Within("the drain");
            await closed.WaitForAsync("drain");
        }
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Closed_Refusals_AreTheirOwnReasons()
    {
        var ports = FreePort.Get(4);
        var (noRoute, invalid, dead, deadEndpoint) = (ports[0], ports[1], ports[2], ports[3]);
        using var noRouteClosed = new ClosedCounter(noRoute);
        using var invalidClosed = new ClosedCounter(invalid);
        using var deadClosed = new ClosedCounter(dead);
        await using var proxy = await StartProxyAsync(Routes.Table(
            Routes.Unrouted(noRoute),
            Routes.Listener(invalid, Routes.Invalid("missing", 1)),
            Routes.Listener(dead, Routes.Backend("dead", 1, new BackendEndpoint("127.0.0.1", deadEndpoint)))));

        using var deadline = Guard.Deadline();
        foreach (var port in ports[..3])
        {
            Assert.True((await TestClient.ConnectAndReadToEndAsync(port, deadline.Token)).ClosedWithoutData);
        }

        await noRouteClosed.WaitForAsync("refused_no_route");
        await invalidClosed.WaitForAsync("refused_no_healthy_endpoint");
        await deadClosed.WaitForAsync("refused_upstream_connect_failed");
    }

    /// <summary>
    /// A reload that rebuilds the listener's route model (here its backend's weight changes) keeps the listener's
    /// counters: they are totals per label set, not per route model, so Prometheus never sees a counter reset.
    /// </summary>
    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Counters_SurviveAReloadThatRebuildsTheRouteModel()
    {
        await using var backend = TestBackend.Echo();
        var port = FreePort.Get();
        using var closed = new ClosedCounter(port);
        await using var proxy = await StartProxyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, backend))));
        await EchoAndCloseAsync(port);
        await closed.WaitForAsync("client_closed");

        await proxy.ApplyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 2, backend))), CancellationToken.None);
        await EchoAndCloseAsync(port);
        await closed.WaitForAsync("client_closed", count: 2);
    }

    private static async Task EchoAndCloseAsync(int port)
    {
        using var client = await TestClient.ConnectAsync(port, CancellationToken.None);
        await client.AssertEchoesAsync();
        client.Shutdown(SocketShutdown.Send);
        Assert.False((await client.ReadToEndAsync()).Reset);
    }
}

/// <summary>The termination reasons tests on the portable sockets transport.</summary>
public sealed class SocketsTerminationReasonTests : TerminationReasonTests
{
    protected override ProxyTransport Transport => ProxyTransport.Sockets;
}

/// <summary>The termination reasons tests on the Linux transport (splice, accept4, listener shards).</summary>
public sealed class LinuxTerminationReasonTests : TerminationReasonTests
{
    protected override ProxyTransport Transport => ProxyTransport.Linux;
}
