using System.Net;
using System.Net.Sockets;
using System.Text;
using FsmGateway.Testing;

namespace FsmGateway.Host.Tests.Support;

internal static class Net
{
    /// <summary>A port free on 127.0.0.1 right now that nothing binding port 0 can take (see <see cref="TestPorts"/>).</summary>
    public static int FreePort() => TestPorts.Next();

    public static async Task<Socket> ConnectAsync(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), timeout.Token);
        return socket;
    }

    /// <summary>Sends <paramref name="text"/> and reads back exactly as many bytes.</summary>
    public static async Task<string> RoundTripAsync(Socket socket, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        await socket.SendAsync(bytes);
        var received = new byte[bytes.Length];
        var total = 0;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (total < received.Length)
        {
            var read = await socket.ReceiveAsync(received.AsMemory(total), timeout.Token);
            if (read == 0)
            {
                throw new IOException($"connection closed after {total} of {received.Length} bytes");
            }

            total += read;
        }

        return Encoding.UTF8.GetString(received);
    }

    public static async Task<string> EchoOnceAsync(int port, string text)
    {
        using var socket = await ConnectAsync(port);
        return await RoundTripAsync(socket, text);
    }

    /// <summary>
    /// Whether a new connection to <paramref name="port"/> is refused. A reset while connecting counts too: a SYN that
    /// races the listener's close is answered with RST rather than refused.
    /// </summary>
    public static async Task<bool> IsRefusedAsync(int port)
    {
        try
        {
            using var socket = await ConnectAsync(port);
            return false;
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused or SocketError.ConnectionReset)
        {
            return true;
        }
    }

    /// <summary>Sends the raw HTTP <paramref name="request"/> to 127.0.0.1 and reads the answer until the server closes the connection.</summary>
    public static async Task<string> HttpExchangeAsync(int port, string request)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(IPAddress.Loopback, port, timeout.Token);
        await client.SendAsync(Encoding.Latin1.GetBytes(request), SocketFlags.None, timeout.Token);
        var answer = new MemoryStream();
        var buffer = new byte[4096];
        int read;
        while ((read = await client.ReceiveAsync(buffer, SocketFlags.None, timeout.Token)) > 0)
        {
            answer.Write(buffer, 0, read);
        }

        return Encoding.Latin1.GetString(answer.ToArray());
    }

    public static async Task EventuallyAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"not true in time: {what}");
            }

            await Task.Delay(100);
        }
    }
}
