using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using FsmGateway.Routing;
using FsmGateway.Transport.Connections;
using FsmGateway.Transport.Proxy;
using FsmGateway.Transport.Sockets;
using FsmGateway.Transport.Tests.TestSupport;
using Microsoft.Extensions.Options;

namespace FsmGateway.Transport.Tests;

/// <summary>
/// A backend's policy on its upstream sockets: the connect timeout that replaces the global one (against an endpoint
/// that drops SYNs: a loopback listener whose accept queue is full) and TCP keepalive, read back from the gateway's
/// real upstream socket with getsockopt.
/// </summary>
public sealed class UpstreamSocketTests
{
    [Fact(Timeout = Guard.TestTimeout)]
    public async Task ConnectTimeout_OfTheBackendsPolicy_ReplacesTheGlobalOne()
    {
        using var blackhole = FullBacklogListener.Start();
        var port = FreePort.Get();
        using var closed = new ClosedCounter(port);
        var backend = Routes.Backend("svc", 1, blackhole.Endpoint) with { Policy = new BackendPolicy { ConnectTimeout = TimeSpan.FromMilliseconds(500) } };
        // The global timeout is far beyond the test's deadline: only the policy's can end the connect in time.
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Listener(port, backend)), new ProxyOptions { ConnectTimeout = TimeSpan.FromHours(1) });

        var watch = Stopwatch.StartNew();
        using var deadline = Guard.Deadline(30);
        var result = await TestClient.ConnectAndReadToEndAsync(port, deadline.Token);

        Assert.True(result.ClosedWithoutData);
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(450), $"closed after {watch.Elapsed}: the connect did not hang, the blackhole is not one");
        await closed.WaitForAsync("refused_upstream_connect_failed");
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task TcpKeepalive_OfTheBackendsPolicy_IsSetOnTheUpstreamSocket_OthersLeftAlone()
    {
        await using var kept = TestBackend.Echo();
        await using var plain = TestBackend.Echo();
        var (port1, port2) = (FreePort.Get(), FreePort.Get());
        var connector = new CapturingConnector();
        var keepalive = new TcpKeepalive(Probes: 4, IdleTime: TimeSpan.FromSeconds(7), Interval: TimeSpan.FromSeconds(3));
        await using var proxy = new GatewayProxy(new SocketTransport(), connector, [], Options.Create(new ProxyOptions()), TimeProvider.System);
        await proxy.ApplyAsync(
            Routes.Table(
                Routes.Listener(port1, Routes.Backend("kept", 1, kept) with { Policy = new BackendPolicy { TcpKeepalive = keepalive } }),
                Routes.Listener(port2, Routes.Backend("plain", 1, plain))),
            CancellationToken.None);

        using var deadline = Guard.Deadline();
        using var client1 = await TestClient.ConnectAsync(port1, deadline.Token);
        await client1.AssertEchoesAsync();
        using var client2 = await TestClient.ConnectAsync(port2, deadline.Token);
        await client2.AssertEchoesAsync();

        var upstream = connector.To(kept.Port);
        Assert.NotEqual(0, (int)upstream.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive)!);
        Assert.Equal(7, (int)upstream.GetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime)!);
        Assert.Equal(3, (int)upstream.GetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval)!);
        Assert.Equal(4, (int)upstream.GetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount)!);
        Assert.Equal(0, (int)connector.To(plain.Port).GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive)!);
    }

    /// <summary>The real socket transport, keeping each upstream socket so that the test can read its options.</summary>
    private sealed class CapturingConnector : IUpstreamConnector
    {
        private readonly SocketTransport _real = new();
        private readonly ConcurrentDictionary<int, Socket> _sockets = new();

        public Socket To(int port) => _sockets[port];

        public ValueTask<IDuplexConnection> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken) =>
            ConnectAsync(endPoint, UpstreamConnectOptions.None, cancellationToken);

        public async ValueTask<IDuplexConnection> ConnectAsync(EndPoint endPoint, UpstreamConnectOptions options, CancellationToken cancellationToken)
        {
            var connection = await _real.ConnectAsync(endPoint, options, cancellationToken);
            _sockets[((IPEndPoint)endPoint).Port] = ((SocketConnection)connection).Socket;
            return connection;
        }
    }
}
