using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using FsmGateway.Routing;

namespace FsmGateway.Transport.Tests.TestSupport;

/// <summary>
/// A real TCP server on 127.0.0.1 (port chosen by the kernel) that runs a handler per accepted connection and counts
/// what it saw. Handlers end with the connection: the socket is closed when the handler returns.
/// </summary>
internal sealed class TestBackend : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly Func<TestBackend, Socket, CancellationToken, Task> _handler;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<Socket, byte> _open = new();
    private readonly ConcurrentDictionary<Task, byte> _handlers = new();
    private readonly Task _acceptLoop;
    private int _accepted;
    private long _bytesReceived;

    private TestBackend(Func<TestBackend, Socket, CancellationToken, Task> handler, int port = 0)
    {
        _handler = handler;
        _listener = new TcpListener(IPAddress.Loopback, port);
        _listener.Start(4096);
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _acceptLoop = AcceptLoopAsync();
    }

    /// <summary>The port the backend listens on.</summary>
    public int Port { get; }

    /// <summary>The backend as a routing-table endpoint.</summary>
    public BackendEndpoint Endpoint => new("127.0.0.1", Port);

    /// <summary>Connections accepted so far.</summary>
    public int Accepted => Volatile.Read(ref _accepted);

    /// <summary>Bytes the handlers reported receiving (see <see cref="CountReceived"/>).</summary>
    public long BytesReceived => Interlocked.Read(ref _bytesReceived);

    /// <summary>Connections whose handler has not returned yet.</summary>
    public int Open => _open.Count;

    /// <summary>Starts a backend running <paramref name="handler"/> for each connection.</summary>
    /// <param name="handler">What to do with a connection.</param>
    /// <returns>The backend.</returns>
    public static TestBackend Start(Func<TestBackend, Socket, CancellationToken, Task> handler) => new(handler);

    /// <summary>Starts a backend running <paramref name="handler"/> for each connection, on a given port.</summary>
    /// <param name="handler">What to do with a connection.</param>
    /// <param name="port">The port.</param>
    /// <returns>The backend.</returns>
    public static TestBackend Start(Func<TestBackend, Socket, CancellationToken, Task> handler, int port) => new(handler, port);

    /// <summary>
    /// Echoes every byte back as it arrives. Honours half-close: when the peer shuts down its send side, the backend
    /// finishes sending what it has, shuts down its own send side and closes.
    /// </summary>
    /// <returns>The backend.</returns>
    public static TestBackend Echo() => new(EchoAsync);

    /// <summary>An echo backend (see <see cref="Echo()"/>) on a given port: an endpoint that was refusing comes up.</summary>
    /// <param name="port">The port.</param>
    /// <returns>The backend.</returns>
    public static TestBackend Echo(int port) => new(EchoAsync, port);

    /// <summary>Replies with <paramref name="tag"/> and closes at once: which backend got a connection.</summary>
    /// <param name="tag">The reply.</param>
    /// <returns>The backend.</returns>
    public static TestBackend Tagging(string tag)
    {
        var reply = Encoding.ASCII.GetBytes(tag);
        return new(async (_, socket, cancellationToken) =>
        {
            await socket.SendAllAsync(reply, cancellationToken);
            socket.Shutdown(SocketShutdown.Send);
        });
    }

    /// <summary>Adds to <see cref="BytesReceived"/>.</summary>
    /// <param name="bytes">The count.</param>
    public void CountReceived(int bytes) => Interlocked.Add(ref _bytesReceived, bytes);

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _listener.Stop();
        foreach (var socket in _open.Keys)
        {
            socket.Dispose();
        }

        try
        {
            await Task.WhenAll([_acceptLoop, .. _handlers.Keys]).WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception e) when (e is not TimeoutException)
        {
            // Handlers fail when their socket is closed under them; that is how they are stopped.
        }

        _stopping.Dispose();
    }

    private static async Task EchoAsync(TestBackend backend, Socket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[16 * 1024];
        while (true)
        {
            var received = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
            if (received == 0)
            {
                break;
            }

            backend.CountReceived(received);
            await socket.SendAllAsync(buffer.AsMemory(0, received), cancellationToken);
        }

        socket.Shutdown(SocketShutdown.Send);
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stopping.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_stopping.IsCancellationRequested)
                {
                    return;
                }

                continue;
            }

            Interlocked.Increment(ref _accepted);
            socket.NoDelay = true;
            _open.TryAdd(socket, 0);
            var handler = RunAsync(socket);
            _handlers.TryAdd(handler, 0);
            _ = handler.ContinueWith(t => _handlers.TryRemove(t, out _), TaskScheduler.Default);
        }
    }

    private async Task RunAsync(Socket socket)
    {
        await Task.Yield();
        try
        {
            await _handler(this, socket, _stopping.Token);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException or IOException)
        {
            // The proxy or the test closed the connection; nothing to report.
        }
        finally
        {
            socket.Dispose();
            _open.TryRemove(socket, out _);
        }
    }
}
