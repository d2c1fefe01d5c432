using System.Net;
using System.Net.Sockets;
using FsmGateway.Routing;
using FsmGateway.Transport.Connections;
using FsmGateway.Transport.ProxyProtocol;
using FsmGateway.Transport.Sockets;
using FsmGateway.Transport.Tests.TestSupport;

namespace FsmGateway.Transport.Tests.ProxyProtocol;

/// <summary>
/// The reader on a real socket pair, through both of its paths: a socket it can peek (one look, then exactly the
/// header's length) and a connection it cannot (reads of at most what the header can still take). Either way the
/// bytes after the header stay in the socket, whether the header arrives whole or in pieces.
/// </summary>
public sealed class ProxyProtocolReaderTests
{
    private static readonly byte[] Payload = "PROXY TCP4 9.9.9.9 9.9.9.9 9 9\r\nthe payload"u8.ToArray();

    public static TheoryData<bool, ProxyProtocolVersion, bool> Cases()
    {
        var data = new TheoryData<bool, ProxyProtocolVersion, bool>();
        foreach (var peek in new[] { true, false })
        {
            foreach (var version in new[] { ProxyProtocolVersion.V1, ProxyProtocolVersion.V2 })
            {
                foreach (var pieces in new[] { false, true })
                {
                    data.Add(peek, version, pieces);
                }
            }
        }

        return data;
    }

    [Theory(Timeout = Guard.TestTimeout)]
    [MemberData(nameof(Cases))]
    public async Task ReadAsync_HeaderThenPayload_LeavesExactlyThePayload(bool peek, ProxyProtocolVersion version, bool pieces)
    {
        var (server, client) = await PairAsync(peek);
        await using var _ = server;
        using var __ = client;
        var source = new IPEndPoint(IPAddress.Parse("192.0.2.10"), 1234);
        var header = ProxyProtocolWriter.ToArray(version, source, new IPEndPoint(IPAddress.Parse("192.0.2.1"), 80));
        using var deadline = Guard.Deadline(15);

        var reading = ProxyProtocolReader.ReadAsync(server, optional: false, deadline.Token).AsTask();
        if (pieces)
        {
            // The header in three segments, the last one with the payload: the reader must wait, not overshoot.
            await client.SendAllAsync(header.AsMemory(0, 5), deadline.Token);
            await Task.Delay(50);
            await client.SendAllAsync(header.AsMemory(5, header.Length - 8), deadline.Token);
            await Task.Delay(50);
            await client.SendAllAsync(header[^3..].Concat(Payload).ToArray(), deadline.Token);
        }
        else
        {
            await client.SendAllAsync(header.Concat(Payload).ToArray(), deadline.Token);
        }

        var result = await reading;
        Assert.Null(result.Error);
        Assert.Equal(source, result.Header!.Source);
        Assert.True(result.Prefix.IsEmpty);
        client.Shutdown(SocketShutdown.Send);
        Assert.Equal(Payload, await ReadRestAsync(server, deadline.Token));
    }

    [Theory(Timeout = Guard.TestTimeout)]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ReadAsync_OptionalWithoutHeader_LosesNoByte(bool peek)
    {
        var (server, client) = await PairAsync(peek);
        await using var _ = server;
        using var __ = client;
        using var deadline = Guard.Deadline(15);
        var bytes = "SSH-2.0-OpenSSH_9.6\r\nmore"u8.ToArray();
        await client.SendAllAsync(bytes, deadline.Token);
        client.Shutdown(SocketShutdown.Send);

        var result = await ProxyProtocolReader.ReadAsync(server, optional: true, deadline.Token);

        Assert.Null(result.Error);
        Assert.Null(result.Header);
        Assert.Equal(bytes, result.Prefix.ToArray().Concat(await ReadRestAsync(server, deadline.Token)).ToArray());
    }

    private static async Task<byte[]> ReadRestAsync(IDuplexConnection connection, CancellationToken cancellationToken)
    {
        using var rest = new MemoryStream();
        var buffer = new byte[256];
        while (await connection.ReceiveAsync(buffer, cancellationToken) is var count and > 0)
        {
            rest.Write(buffer, 0, count);
        }

        return rest.ToArray();
    }

    private static async Task<(IDuplexConnection Server, Socket Client)> PairAsync(bool peek)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await client.ConnectAsync(listener.LocalEndPoint!);
        var accepted = new SocketConnection(await listener.AcceptAsync());
        return (peek ? accepted : new WithoutPeek(accepted), client);
    }
}
