using System.Net;
using System.Net.Sockets;
using FsmGateway.Transport.Connections;

namespace FsmGateway.Transport.Sockets;

/// <summary>The default transport: plain TCP sockets, IPv4 and IPv6, with <c>TCP_NODELAY</c> on every connection.</summary>
internal sealed class SocketTransport : IListenerFactory, IUpstreamConnector
{
    private const int LinuxSolSocket = 1;
    private const int LinuxSoReuseAddr = 2;
    private const int BsdSolSocket = 0xffff;
    private const int BsdSoReuseAddr = 4;
    private static readonly byte[] Enabled = BitConverter.GetBytes(1);

    public ValueTask<IConnectionListener> BindAsync(EndPoint endPoint, CancellationToken cancellationToken)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (endPoint is IPEndPoint { AddressFamily: AddressFamily.InterNetworkV6 } ip && ip.Address.Equals(IPAddress.IPv6Any))
            {
                // "Every address" means IPv4 too.
                socket.DualMode = true;
            }

            BindExclusively(socket, endPoint);

            // Accepted sockets inherit TCP_NODELAY from the listener on Linux: one system call per connection fewer.
            socket.NoDelay = true;
            socket.Listen(1024);
            return ValueTask.FromResult<IConnectionListener>(new SocketConnectionListener(socket));
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Binds so that a second process asking for the same port fails (EADDRINUSE) instead of sharing it, while a
    /// restarted gateway can still bind over its predecessor's connections in TIME_WAIT. .NET's
    /// <see cref="SocketOptionName.ReuseAddress"/> sets <c>SO_REUSEPORT</c> as well on Linux and macOS, which lets
    /// two live listeners split one port's traffic; so the plain <c>SO_REUSEADDR</c> is set as a raw option there.
    /// Windows' <c>SO_REUSEADDR</c> would allow port stealing, so there the port is claimed exclusively instead.
    /// </summary>
    internal static void BindExclusively(Socket socket, EndPoint endPoint)
    {
        if (OperatingSystem.IsLinux())
        {
            socket.SetRawSocketOption(LinuxSolSocket, LinuxSoReuseAddr, Enabled);
        }
        else if (OperatingSystem.IsMacOS() || OperatingSystem.IsFreeBSD())
        {
            socket.SetRawSocketOption(BsdSolSocket, BsdSoReuseAddr, Enabled);
        }
        else if (OperatingSystem.IsWindows())
        {
            socket.ExclusiveAddressUse = true;
        }

        socket.Bind(endPoint);
    }

    public ValueTask<IDuplexConnection> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken) =>
        ConnectAsync(endPoint, UpstreamConnectOptions.None, cancellationToken);

    public async ValueTask<IDuplexConnection> ConnectAsync(EndPoint endPoint, UpstreamConnectOptions options, CancellationToken cancellationToken) =>
        new SocketConnection(await ConnectSocketAsync(endPoint, options, cancellationToken).ConfigureAwait(false), endPoint as IPEndPoint);

    /// <summary>
    /// A TCP socket connected to <paramref name="endPoint"/> with <c>TCP_NODELAY</c> and the keepalive of
    /// <paramref name="options"/>; disposed when the connect fails. Both transports connect upstream through it.
    /// </summary>
    internal static async ValueTask<Socket> ConnectSocketAsync(EndPoint endPoint, UpstreamConnectOptions options, CancellationToken cancellationToken)
    {
        var socket = endPoint is DnsEndPoint
            ? new Socket(SocketType.Stream, ProtocolType.Tcp)
            : new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.NoDelay = true;
            if (options.TcpKeepalive is { } keepalive)
            {
                SetKeepalive(socket, keepalive);
            }

            await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Turns keepalive on (<c>SO_KEEPALIVE</c>) and sets the fields given: <c>TCP_KEEPIDLE</c> and
    /// <c>TCP_KEEPINTVL</c> in whole seconds (the compiler accepts whole seconds only), <c>TCP_KEEPCNT</c>.
    /// </summary>
    internal static void SetKeepalive(Socket socket, Routing.TcpKeepalive keepalive)
    {
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
        if (keepalive.IdleTime is { } idle)
        {
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, Seconds(idle));
        }

        if (keepalive.Interval is { } interval)
        {
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, Seconds(interval));
        }

        if (keepalive.Probes is { } probes)
        {
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, probes);
        }

        static int Seconds(TimeSpan time) => (int)Math.Clamp(Math.Ceiling(time.TotalSeconds), 1, 32767);
    }

    private sealed class SocketConnectionListener(Socket socket) : IConnectionListener
    {
        private int _unbound;

        public EndPoint EndPoint { get; } = socket.LocalEndPoint!;

        public async ValueTask<IDuplexConnection?> AcceptAsync(CancellationToken cancellationToken)
        {
            while (true)
            {
                try
                {
                    var accepted = await socket.AcceptAsync(cancellationToken).ConfigureAwait(false);
                    if (!OperatingSystem.IsLinux())
                    {
                        // Linux copies TCP_NODELAY from the listener; elsewhere it is set on each connection.
                        try
                        {
                            accepted.NoDelay = true;
                        }
                        catch
                        {
                            accepted.Dispose();
                            throw;
                        }
                    }

                    return new SocketConnection(accepted);
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
                {
                    // The client gave up before we accepted it; take the next one.
                }
                catch (Exception e) when (Volatile.Read(ref _unbound) == 1 && e is SocketException or ObjectDisposedException)
                {
                    return null;
                }
            }
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken)
        {
            if (Interlocked.Exchange(ref _unbound, 1) == 0)
            {
                socket.Dispose();
            }

            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync() => UnbindAsync(CancellationToken.None);
    }
}
