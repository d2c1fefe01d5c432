using System.Net.Sockets;
using System.Text;
using FsmGateway.Routing;
using FsmGateway.Transport.Tests.TestSupport;

namespace FsmGateway.Transport.Tests;

/// <summary>
/// A backend's connection caps (<c>circuitBreaker.maxConnections</c> and <c>perEndpoint.maxConnections</c>): exact,
/// counted across listeners, a connection past the cap closed at once with <c>refused_backend_limit</c> and never
/// connected upstream, and admitted again once a connection closes. Real sockets on 127.0.0.1.
/// </summary>
public sealed class BackendCircuitBreakerTests
{
    [Fact(Timeout = Guard.TestTimeout)]
    public async Task MaxConnections_RefusesExactlyPastTheCap_AcrossListeners_AndAdmitsAgainWhenOneCloses()
    {
        await using var a = TaggingEcho("a");
        await using var b = TaggingEcho("b");
        var (port1, port2) = (FreePort.Get(), FreePort.Get());
        var policy = new BackendPolicy { MaxConnections = 5 };
        using var refused1 = new ClosedCounter(port1);
        using var refused2 = new ClosedCounter(port2);
        // Two listeners (two routes) to the same Service port: one backend, one count.
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(
            Routes.Listener(port1, Routes.Backend("svc", 1, a, b) with { Policy = policy }),
            Routes.Listener(port2, Routes.Backend("svc", 1, a, b) with { Policy = policy })));

        var open = new List<Socket>();
        for (var i = 0; i < 5; i++)
        {
            open.Add(await ConnectedAsync(i % 2 == 0 ? port1 : port2));
        }

        using var deadline = Guard.Deadline();
        Assert.True((await TestClient.ConnectAndReadToEndAsync(port1, deadline.Token)).ClosedWithoutData);
        Assert.True((await TestClient.ConnectAndReadToEndAsync(port2, deadline.Token)).ClosedWithoutData);
        Assert.Equal(5, a.Accepted + b.Accepted);
        await refused1.WaitForAsync("refused_backend_limit");
        await refused2.WaitForAsync("refused_backend_limit");

        // One closes: the next one is admitted, and the one after is refused again.
        open[0].Dispose();
        Assert.True(await Guard.Eventually(() => proxy.ActiveConnections == 4), $"{proxy.ActiveConnections} open");
        open[0] = await ConnectedAsync(port2);
        Assert.True((await TestClient.ConnectAndReadToEndAsync(port1, deadline.Token)).ClosedWithoutData);
        Assert.Equal(6, a.Accepted + b.Accepted);
        foreach (var socket in open)
        {
            await socket.AssertEchoesAsync();
            socket.Dispose();
        }
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task MaxConnectionsPerEndpoint_SkipsAFullEndpoint_RefusesWhenAllAreFull()
    {
        await using var a = TaggingEcho("a");
        await using var b = TaggingEcho("b");
        var port = FreePort.Get();
        using var closed = new ClosedCounter(port);
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(
            Routes.Listener(port, Routes.Backend("svc", 1, a, b) with { Policy = new BackendPolicy { MaxConnectionsPerEndpoint = 3 } })));

        // Round robin: a, b, a, b, a, b: both full.
        var open = new List<(Socket Socket, string Tag)>();
        for (var i = 0; i < 6; i++)
        {
            open.Add(await TaggedAsync(port));
        }

        Assert.Equal(3, open.Count(static c => c.Tag == "a"));
        using var deadline = Guard.Deadline();
        Assert.True((await TestClient.ConnectAndReadToEndAsync(port, deadline.Token)).ClosedWithoutData);
        await closed.WaitForAsync("refused_backend_limit");
        Assert.Equal(6, a.Accepted + b.Accepted);

        // One connection of the endpoint listed first (the lower port) closes. Round robin's next turn is the second
        // endpoint's (the refused connection drew the first's): it is full, so the connection goes on to the first
        // rather than being refused.
        var (first, firstServer) = a.Port < b.Port ? ("a", a) : ("b", b);
        var leaving = open.First(c => c.Tag == first);
        leaving.Socket.Dispose();
        open.Remove(leaving);
        Assert.True(await Guard.Eventually(() => firstServer.Open == 2), $"{first} holds {firstServer.Open}");
        Assert.True(await Guard.Eventually(() => proxy.ActiveConnections == 5), $"{proxy.ActiveConnections} open");
        var next = await TaggedAsync(port);
        Assert.Equal(first, next.Tag);
        open.Add(next);

        foreach (var (socket, _) in open)
        {
            socket.Dispose();
        }
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task NoPolicy_NoCap_ManyConnectionsToOneEndpoint()
    {
        await using var a = TaggingEcho("a");
        var port = FreePort.Get();
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, a))));

        // Well past Envoy Gateway's hidden default of 1,024.
        var open = new List<Socket>();
        try
        {
            for (var i = 0; i < 1100; i++)
            {
                open.Add(await ConnectedAsync(port));
            }

            Assert.Equal(1100, a.Accepted);
        }
        finally
        {
            foreach (var socket in open)
            {
                socket.Dispose();
            }
        }
    }

    /// <summary>Sends its tag, then echoes.</summary>
    private static TestBackend TaggingEcho(string tag)
    {
        var reply = Encoding.ASCII.GetBytes(tag);
        return TestBackend.Start(async (backend, socket, cancellationToken) =>
        {
            await socket.SendAllAsync(reply, cancellationToken);
            var buffer = new byte[1024];
            while (true)
            {
                var received = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
                if (received == 0)
                {
                    break;
                }

                await socket.SendAllAsync(buffer.AsMemory(0, received), cancellationToken);
            }

            socket.Shutdown(SocketShutdown.Send);
        });
    }

    private static async Task<Socket> ConnectedAsync(int port) => (await TaggedAsync(port)).Socket;

    /// <summary>Connects and reads the endpoint's one-byte tag: the connection reached the backend.</summary>
    private static async Task<(Socket Socket, string Tag)> TaggedAsync(int port)
    {
        using var deadline = Guard.Deadline();
        var socket = await TestClient.ConnectAsync(port, deadline.Token);
        var tag = new byte[1];
        await socket.ReceiveExactlyAsync(tag, deadline.Token);
        return (socket, Encoding.ASCII.GetString(tag));
    }
}
