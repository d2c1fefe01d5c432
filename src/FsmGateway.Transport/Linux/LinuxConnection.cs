using System.Net;
using System.Net.Sockets;
using FsmGateway.Transport.Connections;
using FsmGateway.Transport.Sockets;

namespace FsmGateway.Transport.Linux;

/// <summary>
/// A TCP connection of the <see cref="LinuxTransport"/>: a <see cref="Socket"/> for everything that waits (so readiness
/// comes from .NET's own epoll) and its file descriptor for <c>splice(2)</c>, which the relay uses between two such
/// connections (<see cref="SplicePump"/>). Endpoints are read when first asked for.
/// </summary>
/// <param name="socket">The connected socket.</param>
/// <param name="transport">The transport that made it.</param>
/// <param name="remoteEndPoint">Its remote end when the caller knows it (the endpoint connected to), so it is never asked of the socket.</param>
internal sealed class LinuxConnection(Socket socket, LinuxTransport transport, EndPoint? remoteEndPoint = null) : IDuplexConnection, IPeekableConnection, IKeepaliveConnection, INonBlockingReceive
{
    private EndPoint? _local;
    private EndPoint? _remote = remoteEndPoint;
    private int _disposed;

    /// <summary>The socket's descriptor, for <c>splice(2)</c>; held (<c>DangerousAddRef</c>) around each call.</summary>
    public SafeSocketHandle Handle { get; } = socket.SafeHandle;

    /// <summary>The transport that made it: counts the bytes spliced.</summary>
    public LinuxTransport Transport => transport;

    public EndPoint? LocalEndPoint => _local ??= Read(static s => s.LocalEndPoint);

    public EndPoint? RemoteEndPoint => _remote ??= Read(static s => s.RemoteEndPoint);

    /// <summary>The socket (for tests that read its options back).</summary>
    internal Socket Socket => socket;

    public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
        socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);

    /// <inheritdoc />
    public int TryReceive(Span<byte> buffer)
    {
        EnsureNonBlocking();
        var received = socket.Receive(buffer, SocketFlags.None, out var error);
        return error switch
        {
            SocketError.Success => received,
            SocketError.WouldBlock => -1,
            _ => throw new SocketException((int)error),
        };
    }

    /// <summary>
    /// Makes the descriptor non-blocking, as <c>splice(2)</c> and <see cref="TryReceive"/> need: once per socket at most
    /// (<c>fcntl</c>), and not even that when an asynchronous operation (the upstream connect, a wait) has made it so
    /// already; afterwards it is only .NET's flag that is read.
    /// </summary>
    public void EnsureNonBlocking()
    {
        if (socket.Blocking)
        {
            socket.Blocking = false;
        }
    }

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

    private EndPoint? Read(Func<Socket, EndPoint?> endPoint)
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
}
