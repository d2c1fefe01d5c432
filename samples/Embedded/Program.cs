// Embeds FsmGateway in an ordinary .NET app with config from code: two backends behind one TCP listener,
// a request through the gateway, then a weight change at run time that moves traffic to the other backend.
// It also plugs in three extension points of its own: a status sink that prints what the gateway reports, an
// upstream connector that counts the connections it opens, and a listener factory that admits loopback clients only
// (both over plain sockets).
// Exits 0 when everything behaved as described, 1 otherwise.
using System.Net;
using System.Net.Sockets;
using System.Text;
using FsmGateway;
using FsmGateway.Configuration;
using FsmGateway.Transport;
using FsmGateway.Status;
using FsmGateway.Transport.Connections;
using FsmGateway.Transport.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

await using var blue = Backend.Start("blue");
await using var green = Backend.Start("green");
var port = Backend.FreePort();

// Config from code: the same objects a YAML manifest would hold.
ResourceSetBuilder Config(int blueWeight, int greenWeight) => new ResourceSetBuilder("demo")
    .Gateway("gw", g => g.Address("127.0.0.1").Listener("tcp", port))
    .TcpRoute("route", r => r.Parent("gw").Backend("blue", 80, blueWeight).Backend("green", 80, greenWeight))
    .Service("blue", 80, $"127.0.0.1:{blue.Port}")
    .Service("green", 80, $"127.0.0.1:{green.Port}");

var builder = Host.CreateApplicationBuilder(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.Services.AddFsmGateway()
    .LoadFromMemory(Config(blueWeight: 1, greenWeight: 0).Build())
    .AddStatusSink<PrintingStatusSink>()
    .UseUpstreamConnector<CountingConnector>()
    .UseListenerFactory<LoopbackOnlyListenerFactory>();
using var app = builder.Build();
await app.StartAsync();

var state = app.Services.GetRequiredService<GatewayRuntimeState>();
await Until(() => ValueTask.FromResult(state.IsReady), "the gateway serves");
var first = await Backend.AskAsync(port);
Console.WriteLine($"request through the gateway answered by: {first}");

// Change the weights at run time: every new connection now goes to green.
app.Services.GetRequiredService<InMemoryConfigSource>().Update(Config(blueWeight: 0, greenWeight: 1).Build());
await Until(async () => await Backend.AskAsync(port) == "green", "traffic moves to green");
Console.WriteLine("after the weight change, answered by: green");

await app.StopAsync();
var connects = ((CountingConnector)app.Services.GetRequiredService<IUpstreamConnector>()).Count;
var accepted = ((LoopbackOnlyListenerFactory)app.Services.GetRequiredService<IListenerFactory>()).Accepted;
Console.WriteLine($"upstream connections opened through the custom connector: {connects}");
Console.WriteLine($"client connections admitted by the custom listener factory: {accepted}");
return first == "blue" && connects >= 2 && accepted >= 2 ? 0 : 1;

static async Task Until(Func<ValueTask<bool>> condition, string what)
{
    var deadline = DateTime.UtcNow.AddSeconds(20);
    while (!await condition())
    {
        if (DateTime.UtcNow > deadline)
        {
            throw new TimeoutException($"timed out waiting until {what}");
        }

        await Task.Delay(50);
    }
}


/// <summary>A backend that answers every connection with its name, then closes.</summary>
internal sealed class Backend : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly Task _loop;

    private Backend(string name)
    {
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _loop = ServeAsync(Encoding.UTF8.GetBytes(name));
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public static Backend Start(string name) => new(name);

    public static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    public static async ValueTask<string> AskAsync(int port)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port);
        using var reader = new StreamReader(client.GetStream());
        return await reader.ReadToEndAsync();
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        try
        {
            await _loop;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }
    }

    private async Task ServeAsync(byte[] reply)
    {
        while (true)
        {
            using var client = await _listener.AcceptTcpClientAsync();
            await client.GetStream().WriteAsync(reply);
        }
    }
}

/// <summary>A status sink of our own: prints each Gateway's conditions whenever the gateway publishes.</summary>
internal sealed class PrintingStatusSink : IStatusSink
{
    public ValueTask PublishAsync(StatusSet statuses, CancellationToken cancellationToken)
    {
        foreach (var (key, status) in statuses.Gateways)
        {
            Console.WriteLine($"status of {key}: {string.Join(", ", status.Conditions.Select(c => $"{c.Type}={c.Status}"))}");
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>An upstream connector of our own: plain TCP sockets, counted.</summary>
internal sealed class CountingConnector : IUpstreamConnector
{
    private int _count;

    public int Count => Volatile.Read(ref _count);

    public async ValueTask<IDuplexConnection> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _count);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endPoint, cancellationToken);
            return new SocketDuplexConnection(socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

}

/// <summary>A listener factory of our own: plain listening sockets that admit loopback clients only.</summary>
internal sealed class LoopbackOnlyListenerFactory : IListenerFactory
{
    private int _accepted;

    public int Accepted => Volatile.Read(ref _accepted);

    public ValueTask<IConnectionListener> BindAsync(EndPoint endPoint, CancellationToken cancellationToken)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(endPoint);
            socket.Listen(512);
            return ValueTask.FromResult<IConnectionListener>(new Listener(socket, this));
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private sealed class Listener(Socket socket, LoopbackOnlyListenerFactory factory) : IConnectionListener
    {
        public EndPoint EndPoint => socket.LocalEndPoint!;

        public async ValueTask<IDuplexConnection?> AcceptAsync(CancellationToken cancellationToken)
        {
            while (true)
            {
                Socket client;
                try
                {
                    client = await socket.AcceptAsync(cancellationToken);
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    return null; // unbound
                }

                if (client.RemoteEndPoint is IPEndPoint remote && IPAddress.IsLoopback(remote.Address))
                {
                    Interlocked.Increment(ref factory._accepted);
                    client.NoDelay = true;
                    return new SocketDuplexConnection(client);
                }

                client.Dispose();
            }
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken)
        {
            socket.Dispose();
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            socket.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>A connected socket as the gateway's duplex connection: used by both the connector and the listener factory.</summary>
internal sealed class SocketDuplexConnection(Socket socket) : IDuplexConnection
{
    public EndPoint? LocalEndPoint => socket.LocalEndPoint;

    public EndPoint? RemoteEndPoint => socket.RemoteEndPoint;

    public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
        socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);

    public async ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            data = data[await socket.SendAsync(data, SocketFlags.None, cancellationToken)..];
        }
    }

    public void CompleteSend() => socket.Shutdown(SocketShutdown.Send);

    public void Abort()
    {
        socket.LingerState = new LingerOption(true, 0);
        socket.Dispose();
    }

    public ValueTask DisposeAsync()
    {
        socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
