using System.Net;
using System.Net.Sockets;
using FsmGateway.Transport.Connections;

namespace FsmGateway.Transport.Sockets;

/// <summary>
/// A TCP socket as an <see cref="IDuplexConnection"/>. Its endpoints are read when first asked for, not at accept or
/// connect: each is a system call (<c>getsockname</c>, <c>getpeername</c>) that most connections never need (an
/// accepted socket's peer and a connected socket's remote end are known without one). Once read, an endpoint is kept,
/// so it can still be reported after the socket has closed.
/// </summary>
internal sealed class SocketConnection : IDuplexConnection, IPeekableConnection, IKeepaliveConnection, INonBlockingReceive
{
    private readonly Socket _socket;
    private EndPoint? _localEndPoint;
    private EndPoint? _remoteEndPoint;
    private int _disposed;

    /// <summary>Wraps <paramref name="socket"/>.</summary>
    /// <param name="socket">The connected socket.</param>
    /// <param name="remoteEndPoint">Its remote end when the caller knows it (the endpoint connected to), so it is never asked of the socket.</param>
    public SocketConnection(Socket socket, EndPoint? remoteEndPoint = null)
    {
        _socket = socket;
        _remoteEndPoint = remoteEndPoint;
    }

    public EndPoint? LocalEndPoint => _localEndPoint ??= Read(static s => s.LocalEndPoint, _socket);

    public EndPoint? RemoteEndPoint => _remoteEndPoint ??= Read(static s => s.RemoteEndPoint, _socket);

    /// <summary>The socket (for tests that read its options back).</summary>
    internal Socket Socket => _socket;

    public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
        _socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);

    /// <inheritdoc />
    public int TryReceive(Span<byte> buffer)
    {
        if (_socket.Blocking)
        {
            // Only the flag .NET keeps: the descriptor is non-blocking already once an asynchronous operation ran
            // (or becomes so now, the same fcntl the first asynchronous operation would make).
            _socket.Blocking = false;
        }

        var received = _socket.Receive(buffer, SocketFlags.None, out var error);
        return error switch
        {
            SocketError.Success => received,
            SocketError.WouldBlock => -1,
            _ => throw new SocketException((int)error),
        };
    }

    public ValueTask<int> PeekAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
        _socket.ReceiveAsync(buffer, SocketFlags.Peek, cancellationToken);

    public async ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            var sent = await _socket.SendAsync(data, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            data = data[sent..];
        }
    }

    /// <summary>Turns TCP keepalive on with <paramref name="keepalive"/>'s settings (unset ones keep the system's).</summary>
    public void SetKeepalive(Routing.TcpKeepalive keepalive)
    {
        try
        {
            SocketTransport.SetKeepalive(_socket, keepalive);
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
            _socket.Shutdown(SocketShutdown.Send);
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
            _socket.LingerState = new LingerOption(enable: true, seconds: 0);
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

    private static EndPoint? Read(Func<Socket, EndPoint?> endPoint, Socket socket)
    {
        try
        {
            return endPoint(socket);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return null; // closed before anyone asked
        }
    }

    private void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _socket.Dispose();
        }
    }
}
