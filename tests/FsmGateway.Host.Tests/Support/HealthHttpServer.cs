using System.Net;
using System.Net.Sockets;
using System.Text;

namespace FsmGateway.Host.Tests.Support;

/// <summary>
/// A minimal HTTP/1.1 server on a socket: reads a request's head and answers <see cref="Status"/> with its
/// <see cref="Name"/> as the body (<c>Connection: close</c>), whatever the path. Counts the requests per path.
/// </summary>
internal sealed class HealthHttpServer : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _paths = new();

    public HealthHttpServer(string name, IPAddress address, int port = 0)
    {
        Name = name;
        _listener = new TcpListener(address, port);
        _listener.Start();
        _loop = AcceptLoopAsync();
    }

    public string Name { get; }

    /// <summary>The status line's code and phrase, e.g. <c>200 OK</c>.</summary>
    public string Status { get; set; } = "200 OK";

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Requests seen for <paramref name="path"/>.</summary>
    public int Requests(string path) => _paths.GetValueOrDefault(path);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _loop;
        _stop.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = AnswerAsync(socket);
        }
    }

    private async Task AnswerAsync(Socket socket)
    {
        using (socket)
        {
            try
            {
                var head = new StringBuilder();
                var buffer = new byte[1];
                while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
                {
                    if (await socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token) == 0)
                    {
                        return;
                    }

                    head.Append((char)buffer[0]);
                }

                var path = head.ToString().Split(' ')[1];
                _paths.AddOrUpdate(path, 1, static (_, n) => n + 1);
                var body = Encoding.UTF8.GetBytes(Name);
                var answer = Encoding.ASCII.GetBytes($"HTTP/1.1 {Status}\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n").Concat(body).ToArray();
                await socket.SendAsync(answer, SocketFlags.None, _stop.Token);
                socket.Shutdown(SocketShutdown.Send);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }
    }
}
