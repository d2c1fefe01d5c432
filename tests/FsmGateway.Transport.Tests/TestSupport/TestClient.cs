using System.Net;
using System.Net.Sockets;

namespace FsmGateway.Transport.Tests.TestSupport;

/// <summary>How a connection ended for the reader.</summary>
/// <param name="Data">Every byte received before the end.</param>
/// <param name="Reset">True when the end was a reset (or another socket error) rather than a clean end of stream.</param>
internal sealed record ReadToEnd(byte[] Data, bool Reset)
{
    /// <summary>Closed at once: nothing received, whether by reset or end of stream.</summary>
    public bool ClosedWithoutData => Data.Length == 0;
}

/// <summary>The client side: plain sockets to the proxy on 127.0.0.1.</summary>
internal static class TestClient
{
    /// <summary>Connects to 127.0.0.1:<paramref name="port"/>.</summary>
    /// <param name="port">The port.</param>
    /// <param name="cancellationToken">Cancels the connect.</param>
    /// <param name="receiveBufferSize">SO_RCVBUF to set before connecting, or null for the kernel's autotuning.</param>
    /// <returns>The connected socket.</returns>
    public static async Task<Socket> ConnectAsync(int port, CancellationToken cancellationToken, int? receiveBufferSize = null)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            if (receiveBufferSize is { } size)
            {
                socket.ReceiveBufferSize = size;
            }

            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cancellationToken);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Connects from <paramref name="source"/> (a 127.x.y.z or ::1 address, so that the address the gateway sees is
    /// meaningful) to <paramref name="target"/>:<paramref name="port"/> (127.0.0.1 when null).
    /// </summary>
    /// <param name="source">The client's own address.</param>
    /// <param name="port">The port.</param>
    /// <param name="cancellationToken">Cancels the connect.</param>
    /// <param name="target">The address to connect to; 127.0.0.1 when null.</param>
    /// <returns>The connected socket.</returns>
    public static async Task<Socket> ConnectFromAsync(IPAddress source, int port, CancellationToken cancellationToken, IPAddress? target = null)
    {
        var socket = new Socket(source.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            socket.Bind(new IPEndPoint(source, 0));
            await socket.ConnectAsync(new IPEndPoint(target ?? IPAddress.Loopback, port), cancellationToken);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Connects and expects the connection to be refused (nothing listens).</summary>
    /// <param name="port">The port.</param>
    /// <returns>The socket error seen, or <see cref="SocketError.Success"/> when the connect succeeded.</returns>
    public static async Task<SocketError> TryConnectAsync(int port)
    {
        using var deadline = Guard.Deadline(10);
        try
        {
            using var socket = await ConnectAsync(port, deadline.Token);
            return SocketError.Success;
        }
        catch (SocketException e)
        {
            return e.SocketErrorCode;
        }
    }

    /// <summary>Sends all of <paramref name="data"/>.</summary>
    /// <param name="socket">The socket.</param>
    /// <param name="data">The bytes.</param>
    /// <param name="cancellationToken">Cancels the send.</param>
    /// <returns>A task that completes when every byte is handed to the kernel.</returns>
    public static async Task SendAllAsync(this Socket socket, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            var sent = await socket.SendAsync(data, SocketFlags.None, cancellationToken);
            data = data[sent..];
        }
    }

    /// <summary>Fills <paramref name="buffer"/>; fails on end of stream.</summary>
    /// <param name="socket">The socket.</param>
    /// <param name="buffer">Where to put the bytes.</param>
    /// <param name="cancellationToken">Cancels the receive.</param>
    /// <returns>A task that completes when the buffer is full.</returns>
    public static async Task ReceiveExactlyAsync(this Socket socket, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (!buffer.IsEmpty)
        {
            var received = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
            if (received == 0)
            {
                throw new EndOfStreamException($"end of stream with {buffer.Length} byte(s) still expected");
            }

            buffer = buffer[received..];
        }
    }

    /// <summary>Sends <paramref name="payload"/> and reads back as many bytes (for an echo backend).</summary>
    /// <param name="socket">The socket.</param>
    /// <param name="payload">The bytes.</param>
    /// <param name="cancellationToken">Cancels the exchange.</param>
    /// <returns>What came back.</returns>
    public static async Task<byte[]> RoundTripAsync(this Socket socket, byte[] payload, CancellationToken cancellationToken)
    {
        var reply = new byte[payload.Length];
        var receive = socket.ReceiveExactlyAsync(reply, cancellationToken);
        await socket.SendAllAsync(payload, cancellationToken);
        await receive;
        return reply;
    }

    /// <summary>Sends a short message through an echo backend and asserts that it came back unchanged.</summary>
    /// <param name="socket">The socket.</param>
    /// <param name="text">The message.</param>
    /// <returns>A task that completes when the echo has been checked.</returns>
    public static async Task AssertEchoesAsync(this Socket socket, string text = "ping")
    {
        using var deadline = Guard.Deadline(15);
        var payload = System.Text.Encoding.UTF8.GetBytes(text);
        var reply = await socket.RoundTripAsync(payload, deadline.Token);
        Assert.Equal(text, System.Text.Encoding.UTF8.GetString(reply));
    }

    /// <summary>Reads until end of stream or a reset.</summary>
    /// <param name="socket">The socket.</param>
    /// <param name="cancellationToken">Cancels the read (a failure guard).</param>
    /// <returns>What was read and how it ended.</returns>
    public static async Task<ReadToEnd> ReadToEndAsync(this Socket socket, CancellationToken cancellationToken)
    {
        using var data = new MemoryStream();
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var received = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
                if (received == 0)
                {
                    return new ReadToEnd(data.ToArray(), Reset: false);
                }

                data.Write(buffer, 0, received);
            }
        }
        catch (SocketException)
        {
            return new ReadToEnd(data.ToArray(), Reset: true);
        }
    }

    /// <summary>Reads until end of stream or a reset, failing after <paramref name="seconds"/>.</summary>
    /// <param name="socket">The socket.</param>
    /// <param name="seconds">The failure guard.</param>
    /// <returns>What was read and how it ended.</returns>
    public static async Task<ReadToEnd> ReadToEndAsync(this Socket socket, double seconds = 15)
    {
        using var deadline = Guard.Deadline(seconds);
        try
        {
            return await socket.ReadToEndAsync(deadline.Token);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            throw new TimeoutException($"the connection was still open after {seconds} s");
        }
    }

    /// <summary>
    /// Connects and reads everything. A connection the proxy closes at once may be reset before the client's connect
    /// has even completed; that counts as closed without data too (a refusal would not: nothing would be listening).
    /// </summary>
    /// <param name="port">The port.</param>
    /// <param name="cancellationToken">The failure guard.</param>
    /// <returns>What was read and how it ended.</returns>
    public static async Task<ReadToEnd> ConnectAndReadToEndAsync(int port, CancellationToken cancellationToken)
    {
        Socket client;
        try
        {
            client = await ConnectAsync(port, cancellationToken);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return new ReadToEnd([], Reset: true);
        }

        using (client)
        {
            return await client.ReadToEndAsync(cancellationToken);
        }
    }
}
