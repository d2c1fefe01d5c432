using System.Net;
using System.Net.Sockets;
using System.Text;

namespace FsmGateway.Host.Tests.Support;

/// <summary>A backend that answers every connection with its name and closes: shows which backend a connection reached.</summary>
internal sealed class BannerServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    public BannerServer(string name)
    {
        Name = name;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public string Name { get; }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Connects to <paramref name="port"/> and reads until the server closes: a backend's name, or empty when the gateway closed the connection itself.</summary>
    public static async Task<string> ReadBannerAsync(int port)
    {
        var buffer = new byte[256];
        var total = 0;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            using var socket = await Net.ConnectAsync(port);
            int read;
            while ((read = await socket.ReceiveAsync(buffer.AsMemory(total), timeout.Token)) > 0)
            {
                total += read;
            }
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            // The gateway rejected the connection (no backend it may use), maybe before the handshake even completed
            // on the client's side: an empty banner.
        }

        return Encoding.UTF8.GetString(buffer, 0, total);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _accepting;
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        var banner = Encoding.UTF8.GetBytes(Name);
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            using (client)
            {
                try
                {
                    await client.SendAsync(banner);
                    client.Shutdown(SocketShutdown.Both);
                }
                catch (SocketException)
                {
                }
            }
        }
    }
}
