using System.Net;
using System.Net.Sockets;
using FsmGateway.Transport.Connections;
using FsmGateway.Transport.Sockets;
using FsmGateway.Transport.Tests.TestSupport;

namespace FsmGateway.Transport.Tests;

/// <summary>
/// The sockets transport's connections, on real loopback sockets: what the connection path saves per connection
/// (TCP_NODELAY from the listener, endpoints read only when asked for, a receive that does not wait) still behaves.
/// </summary>
public sealed class SocketConnectionTests
{
    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Accept_ConnectionHasNoDelay_WithoutTheGatewaySettingItPerConnection()
    {
        var transport = new SocketTransport();
        await using var listener = await transport.BindAsync(new IPEndPoint(IPAddress.Loopback, 0), CancellationToken.None);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.EndPoint);

        await using var accepted = (SocketConnection)(await listener.AcceptAsync(CancellationToken.None))!;

        Assert.True(accepted.Socket.NoDelay);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Endpoints_ReadWhenAskedFor_AndKeptAfterTheSocketCloses()
    {
        var transport = new SocketTransport();
        await using var listener = await transport.BindAsync(new IPEndPoint(IPAddress.Loopback, 0), CancellationToken.None);
        var accepting = listener.AcceptAsync(CancellationToken.None);
        await using var upstream = await transport.ConnectAsync(listener.EndPoint, CancellationToken.None);
        await using var accepted = (await accepting)!;

        var local = (IPEndPoint)upstream.LocalEndPoint!;
        Assert.Equal(listener.EndPoint, upstream.RemoteEndPoint);
        Assert.Equal(local, accepted.RemoteEndPoint);
        Assert.Equal(listener.EndPoint, accepted.LocalEndPoint);

        upstream.Abort();
        Assert.Equal(local, upstream.LocalEndPoint);
        Assert.Equal(listener.EndPoint, upstream.RemoteEndPoint);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Endpoints_NeverReadBeforeClose_AreNullAfterIt_NotAnException()
    {
        var transport = new SocketTransport();
        await using var listener = await transport.BindAsync(new IPEndPoint(IPAddress.Loopback, 0), CancellationToken.None);
        var accepting = listener.AcceptAsync(CancellationToken.None);
        await using var upstream = await transport.ConnectAsync(listener.EndPoint, CancellationToken.None);
        await using var accepted = (await accepting)!;

        accepted.Abort();

        Assert.Null(accepted.LocalEndPoint);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task TryReceive_NothingThere_MinusOne_ThenTheBytes_ThenZeroAtEndOfStream()
    {
        var transport = new SocketTransport();
        await using var listener = await transport.BindAsync(new IPEndPoint(IPAddress.Loopback, 0), CancellationToken.None);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.EndPoint);
        await using var accepted = (await listener.AcceptAsync(CancellationToken.None))!;
        var receiver = Assert.IsAssignableFrom<INonBlockingReceive>(accepted);
        var buffer = new byte[16];

        Assert.Equal(-1, receiver.TryReceive(buffer));

        await client.SendAsync("hello"u8.ToArray());
        await accepted.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None); // until the bytes are there
        Assert.Equal(5, receiver.TryReceive(buffer));
        Assert.Equal("hello"u8.ToArray(), buffer[..5]);

        client.Shutdown(SocketShutdown.Send);
        await accepted.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None);
        Assert.Equal(0, receiver.TryReceive(buffer));

        // The socket still works asynchronously afterwards.
        await accepted.SendAsync("bye"u8.ToArray(), CancellationToken.None);
        var reply = new byte[3];
        Assert.Equal(3, await client.ReceiveAsync(reply));
    }
}
