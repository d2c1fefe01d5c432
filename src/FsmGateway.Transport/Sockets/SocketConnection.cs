using System.Net;
using System.Net.Sockets;
using FsmGateway.Transport.Connections;

namespace FsmGateway.Transport.Sockets;

/// <summary>A TCP socket as an <see cref="IDuplexConnection"/>.</summary>
internal sealed class SocketConnection(Socket socket) : IDuplexConnection, IPeekableConnection, IKeepaliveConnection
{
    private int _disposed;

    public EndPoint? LocalEndPoint { get; } = socket.LocalEndPoint;

    public EndPoint? RemoteEndPoint { get; } = socket.RemoteEndPoint;

    /// <summary>The socket (for tests that read its options back).</summary>
    internal Socket Socket => socket;

    public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
        socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);

    public ValueTask<int> PeekAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
        socket.ReceiveAsync(buffer, SocketFlags.Peek, cancellationToken);

    public async ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            var sent = await socket.SendAsync(data, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            data = data[sent..];
        }
    }

    /// <summary>Turns TCP keepalive on with <paramref name="keepalive"/>'s settings (unset ones keep the system's).</summary>
    public void SetKeepalive(Routing.TcpKeepalive keepalive)
    {
        try
        {
            SocketTransport.SetKeepalive(socket, keepalive);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The connection is already gone.
        }
    }

    public void CompleteSend()
    {
        try
        {
            socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The connection is already gone; there is nothing left to half-close.
        }
    }

    public void Abort()
    {
        try
        {
            socket.LingerState = new LingerOption(enable: true, seconds: 0);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already closed.
        }

        Dispose();
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    private void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            socket.Dispose();
        }
    }
}
