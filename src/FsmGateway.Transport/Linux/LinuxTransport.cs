using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using FsmGateway.Transport.Connections;
using FsmGateway.Transport.Sockets;

namespace FsmGateway.Transport.Linux;

/// <summary>
/// The Linux transport: listeners set <c>TCP_NODELAY</c> once on the listening socket (accepted sockets inherit it: no
/// per-connection <c>setsockopt</c>) and accept through .NET (<see cref="Socket.AcceptAsync(CancellationToken)"/>), a
/// listener can be sharded over several <c>SO_REUSEPORT</c> sockets with one accept loop each, and the relay splices
/// bulk data between two of its connections (<see cref="SplicePump"/>). Waiting is left to <see cref="Socket"/>, so
/// .NET's epoll drives it as it drives the sockets transport.
/// </summary>
internal sealed class LinuxTransport : IListenerFactory, IUpstreamConnector
{
    private long _splicedBytes;

    /// <param name="listenerShards">Sockets (and accept loops) per listening endpoint: 1 binds one socket exclusively.</param>
    public LinuxTransport(int listenerShards)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(listenerShards, 1);
        if (!IsSupported)
        {
            throw new PlatformNotSupportedException("the Linux transport needs Linux");
        }

        ListenerShards = listenerShards;
    }

    /// <summary>Whether this platform has the transport.</summary>
    public static bool IsSupported => OperatingSystem.IsLinux();

    /// <summary>Sockets (and accept loops) per listening endpoint.</summary>
    public int ListenerShards { get; }

    /// <summary>Bytes relayed with <c>splice(2)</c> (never copied into the process) by connections of this transport.</summary>
    public long SplicedBytes => Interlocked.Read(ref _splicedBytes);

    public ValueTask<IConnectionListener> BindAsync(EndPoint endPoint, CancellationToken cancellationToken)
    {
        if (ListenerShards == 1)
        {
            return ValueTask.FromResult<IConnectionListener>(new Shard(Listen(endPoint, SocketTransport.BindExclusively), this));
        }

        // SO_REUSEPORT would let a second gateway (same user) join this port's group and take half its connections
        // unnoticed. A socket without it cannot bind a port anything listens on: try one first, as the sockets
        // transport binds, so a port in use fails as it does there.
        if (endPoint is IPEndPoint { Port: not 0 })
        {
            using var probe = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            Prepare(probe, endPoint);
            SocketTransport.BindExclusively(probe, endPoint);
        }

        var shards = new List<Shard>(ListenerShards);
        try
        {
            for (var i = 0; i < ListenerShards; i++)
            {
                // Port 0: the first shard's port, for every other one.
                var bind = i == 0 ? endPoint : shards[0].EndPoint;
                shards.Add(new Shard(Listen(bind, BindShared), this));
            }
        }
        catch
        {
            foreach (var shard in shards)
            {
                shard.Close();
            }

            throw;
        }

        return ValueTask.FromResult<IConnectionListener>(new ShardedListener(shards));
    }

    public ValueTask<IDuplexConnection> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken) =>
        ConnectAsync(endPoint, UpstreamConnectOptions.None, cancellationToken);

    // The connect is asynchronous, so .NET has made the socket non-blocking, as splice needs.
    public async ValueTask<IDuplexConnection> ConnectAsync(EndPoint endPoint, UpstreamConnectOptions options, CancellationToken cancellationToken) =>
        new LinuxConnection(await SocketTransport.ConnectSocketAsync(endPoint, options, cancellationToken).ConfigureAwait(false), this, endPoint as IPEndPoint);

    internal void Spliced(long bytes) => Interlocked.Add(ref _splicedBytes, bytes);

    private static Socket Listen(EndPoint endPoint, Action<Socket, EndPoint> bind)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            Prepare(socket, endPoint);

            // Inherited by every accepted socket (Linux copies the listener's TCP options into the child).
            socket.NoDelay = true;
            bind(socket, endPoint);
            socket.Listen(1024);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static void Prepare(Socket socket, EndPoint endPoint)
    {
        if (endPoint is IPEndPoint { AddressFamily: AddressFamily.InterNetworkV6 } ip && ip.Address.Equals(IPAddress.IPv6Any))
        {
            socket.DualMode = true; // "every address" means IPv4 too
        }
    }

    private static void BindShared(Socket socket, EndPoint endPoint)
    {
        socket.SetRawSocketOption(LinuxNative.SOL_SOCKET, LinuxNative.SO_REUSEADDR, BitConverter.GetBytes(1));
        socket.SetRawSocketOption(LinuxNative.SOL_SOCKET, LinuxNative.SO_REUSEPORT, BitConverter.GetBytes(1));
        socket.Bind(endPoint);
    }

    /// <summary>One listening socket and its accepts.</summary>
    private sealed class Shard(Socket listener, LinuxTransport transport) : IConnectionListener
    {
        private int _unbound;

        public EndPoint EndPoint { get; } = listener.LocalEndPoint!;

        /// <summary>
        /// Takes the next connection with <see cref="Socket.AcceptAsync(CancellationToken)"/>: .NET accepts from the
        /// backlog at once when it holds one, and otherwise waits on its epoll. Its socket is built from the accept
        /// itself (the peer's address comes with it); wrapping an <c>accept4</c>'d descriptor with
        /// <c>new Socket(SafeSocketHandle)</c> instead made .NET read the socket back from the kernel (<c>fstat</c>,
        /// four <c>getsockopt</c>, <c>fcntl</c>, <c>getsockname</c>, <c>getpeername</c>): ~6 % more CPU per connection
        /// than this path (benchmarks/README.md).
        /// </summary>
        public async ValueTask<IDuplexConnection?> AcceptAsync(CancellationToken cancellationToken)
        {
            while (Volatile.Read(ref _unbound) == 0)
            {
                try
                {
                    var socket = await listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
                    return new LinuxConnection(socket, transport);
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
                {
                    // The client gave up before we accepted it; take the next one.
                }
                catch (Exception e) when (Volatile.Read(ref _unbound) == 1 && e is SocketException or ObjectDisposedException)
                {
                    return null;
                }
            }

            return null;
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken)
        {
            Close();
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync() => UnbindAsync(CancellationToken.None);

        public void Close()
        {
            if (Interlocked.Exchange(ref _unbound, 1) == 0)
            {
                listener.Dispose();
            }
        }
    }

    /// <summary>
    /// The shards of one endpoint. The proxy accepts from each <see cref="Shards"/> in its own loop; a caller that only
    /// knows <see cref="IConnectionListener"/> gets them merged (one loop per shard feeding <see cref="AcceptAsync"/>).
    /// </summary>
    private sealed class ShardedListener(IReadOnlyList<Shard> shards) : IShardedConnectionListener
    {
        private readonly Lock _lock = new();
        private Channel<IDuplexConnection>? _merged;

        public EndPoint EndPoint => shards[0].EndPoint;

        public IReadOnlyList<IConnectionListener> Shards => shards;

        public async ValueTask<IDuplexConnection?> AcceptAsync(CancellationToken cancellationToken)
        {
            var merged = Merge();
            return await merged.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false) && merged.Reader.TryRead(out var connection)
                ? connection
                : null;
        }

        public async ValueTask UnbindAsync(CancellationToken cancellationToken)
        {
            foreach (var shard in shards)
            {
                await shard.UnbindAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        public ValueTask DisposeAsync() => UnbindAsync(CancellationToken.None);

        private Channel<IDuplexConnection> Merge()
        {
            lock (_lock)
            {
                if (_merged is null)
                {
                    _merged = Channel.CreateUnbounded<IDuplexConnection>();
                    var loops = shards.Select(shard => Task.Run(async () =>
                    {
                        while (await shard.AcceptAsync(CancellationToken.None).ConfigureAwait(false) is { } connection)
                        {
                            await _merged.Writer.WriteAsync(connection).ConfigureAwait(false);
                        }
                    }));
                    _ = Task.WhenAll(loops).ContinueWith(static (_, channel) => ((Channel<IDuplexConnection>)channel!).Writer.TryComplete(), _merged, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                }

                return _merged;
            }
        }
    }
}
