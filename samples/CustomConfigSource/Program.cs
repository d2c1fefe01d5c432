// A config source of your own: here an in-process service registry (what Consul, a database or a control plane of
// yours would be) feeds the gateway. The source turns each registry change into the objects the gateway reads and
// sends them as one SourceReset; the gateway applies the difference. Start a backend, route through the gateway,
// move the service to another backend at run time, and exit 0 when traffic followed.
using System.Collections.Immutable;
using System.Net;
using System.Net.Sockets;
using System.Reactive.Linq;
using System.Text;
using FsmGateway;
using FsmGateway.Configuration;
using FsmGateway.Resources;
using FsmGateway.Transport;
using FsmGateway.Transport.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

await using var v1 = Backend.Start("v1");
await using var v2 = Backend.Start("v2");
var port = Backend.FreePort();
var registry = new ServiceRegistry();
registry.Set("api", $"127.0.0.1:{v1.Port}");

var builder = Host.CreateApplicationBuilder(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.Services.AddSingleton(registry);
builder.Services.AddFsmGateway()
    .LoadFromMemory(new ResourceSetBuilder("demo")
        .Gateway("gw", g => g.Address("127.0.0.1").Listener("tcp", port))
        .TcpRoute("api", r => r.Parent("gw").Backend("api", 80))
        .Build())
    .AddConfigSource<RegistrySource>();
using var app = builder.Build();
await app.StartAsync();

var state = app.Services.GetRequiredService<GatewayRuntimeState>();
await Until(() => ValueTask.FromResult(state.IsReady), "the gateway serves");
var first = await Backend.AskAsync(port);
Console.WriteLine($"api answered by: {first}");

// The registry moves the service; the source reports it; new connections go to v2.
registry.Set("api", $"127.0.0.1:{v2.Port}");
await Until(async () => await Backend.AskAsync(port) == "v2", "traffic follows the registry to v2");
Console.WriteLine("after the registry change, api answered by: v2");

await app.StopAsync();
return first == "v1" ? 0 : 1;

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

/// <summary>Where services live, as some system of yours knows it: name → endpoints.</summary>
internal sealed class ServiceRegistry
{
    private ImmutableDictionary<string, string[]> _services = ImmutableDictionary<string, string[]>.Empty;

    public event Action? Changed;

    public ImmutableDictionary<string, string[]> Services => _services;

    public void Set(string service, params string[] endpoints)
    {
        ImmutableInterlocked.Update(ref _services, s => s.SetItem(service, endpoints));
        Changed?.Invoke();
    }
}

/// <summary>
/// The custom source: its current contents at subscription, then one <see cref="ConfigEvent.SourceReset"/> per
/// registry change (a reset also counts as synced). Each service becomes a Service plus its endpoints, in the
/// namespace the route uses.
/// </summary>
internal sealed class RegistrySource(ServiceRegistry registry) : IConfigSource
{
    public string Name => "registry";

    public IObservable<ConfigEvent> Events => Observable.Create<ConfigEvent>(observer =>
    {
        void Send()
        {
            var resources = new ResourceSetBuilder("demo");
            foreach (var (service, endpoints) in registry.Services)
            {
                resources.Service(service, 80, endpoints);
            }

            observer.OnNext(new ConfigEvent.SourceReset(Name, resources.Build()));
        }

        registry.Changed += Send;
        Send();
        return () => registry.Changed -= Send;
    });
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
