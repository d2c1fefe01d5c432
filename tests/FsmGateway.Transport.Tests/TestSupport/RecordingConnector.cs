using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using FsmGateway.Transport.Connections;
using FsmGateway.Transport.Sockets;

namespace FsmGateway.Transport.Tests.TestSupport;

/// <summary>
/// Opens real sockets, and counts the connect attempts per port, so that a test can tell which endpoints the proxy
/// tried. Ports in <see cref="Blackholed"/> behave like an endpoint that drops SYNs: the connect never completes
/// until the proxy cancels it (its connect timeout).
/// </summary>
internal sealed class RecordingConnector : IUpstreamConnector
{
    private readonly SocketTransport _real = new();
    private readonly ConcurrentDictionary<int, int> _attempts = new();
    private int _hanging;

    /// <summary>Ports whose connects hang until cancelled.</summary>
    public ConcurrentDictionary<int, byte> Blackholed { get; } = new();

    /// <summary>Connects to blackholed ports waiting now.</summary>
    public int Hanging => Volatile.Read(ref _hanging);

    /// <summary>How many connects to <paramref name="port"/> were started.</summary>
    public int Attempts(int port) => _attempts.GetValueOrDefault(port);

    public async ValueTask<IDuplexConnection> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken)
    {
        var port = ((IPEndPoint)endPoint).Port;
        _attempts.AddOrUpdate(port, 1, static (_, n) => n + 1);
        if (!Blackholed.ContainsKey(port))
        {
            return await _real.ConnectAsync(endPoint, cancellationToken);
        }

        Interlocked.Increment(ref _hanging);
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
            throw new UnreachableException();
        }
        finally
        {
            Interlocked.Decrement(ref _hanging);
        }
    }
}
