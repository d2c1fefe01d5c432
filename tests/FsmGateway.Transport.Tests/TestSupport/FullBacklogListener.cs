using System.Net;
using System.Net.Sockets;
using FsmGateway.Routing;

namespace FsmGateway.Transport.Tests.TestSupport;

/// <summary>
/// An endpoint that drops SYNs, offline and on loopback only: a listener with a backlog of 0 that never accepts,
/// its accept queue filled by one connection. Linux drops further SYNs while the queue is full, so a connect to it
/// hangs (SYN retransmits) until the caller gives up.
/// </summary>
internal sealed class FullBacklogListener : IDisposable
{
    private readonly Socket _listener;
    private readonly Socket _filler;

    private FullBacklogListener(Socket listener, Socket filler)
    {
        _listener = listener;
        _filler = filler;
    }

    public BackendEndpoint Endpoint => new("127.0.0.1", ((IPEndPoint)_listener.LocalEndPoint!).Port);

    public static FullBacklogListener Start()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(0);
        var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        filler.Connect(listener.LocalEndPoint!);
        return new FullBacklogListener(listener, filler);
    }

    public void Dispose()
    {
        _filler.Dispose();
        _listener.Dispose();
    }
}
