using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using FsmGateway.Configuration;
using FsmGateway.Transport;
using FsmGateway.Transport.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Benchmarks;

/// <summary>
/// How long an endpoint change takes to reach new connections (issue #6: ≤ 100 ms after the debounce), and whether a
/// connection opened before the changes survives them all. An embedded gateway with one listener whose Service's
/// endpoint is moved between two backends that answer with their names; after each move, new connections are opened
/// back to back until one reaches the new backend. Everything on 127.0.0.1, bounded, cleaned up.
/// </summary>
internal static class ConfigChangeProbe
{
    public static async Task<int> RunAsync(int changes)
    {
        using var a = new NamedBackend("a");
        using var b = new NamedBackend("b");
        using var echo = new EchoBackend();
        var (port, livePort) = (FreePort(), FreePort());
        var debounce = TimeSpan.FromMilliseconds(100);
        IEnumerable<Resources.Resource> Config(NamedBackend target) => new ResourceSetBuilder("bench")
            .Gateway("gw", g => g.Address("127.0.0.1").Listener("tcp", port).Listener("live", livePort))
            .TcpRoute("route", r => r.Parent("gw", sectionName: "tcp").Backend("svc", 80))
            .TcpRoute("live", r => r.Parent("gw", sectionName: "live").Backend("echo", 80))
            .Service("svc", 80, $"127.0.0.1:{target.Port}")
            .Service("echo", 80, $"127.0.0.1:{echo.Port}")
            .Build();

        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddFsmGateway(o => o.Debounce = debounce).LoadFromMemory(Config(a));
        using var host = builder.Build();
        await host.StartAsync();
        var state = host.Services.GetRequiredService<GatewayRuntimeState>();
        while (!state.IsReady)
        {
            await Task.Delay(10);
        }

        using var live = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await live.ConnectAsync(IPAddress.Loopback, livePort);
        var source = host.Services.GetRequiredService<InMemoryConfigSource>();
        var samples = new List<double>();
        var target = a;
        for (var i = 0; i < changes; i++)
        {
            target = target == a ? b : a;
            var watch = Stopwatch.StartNew();
            source.Update(Config(target));
            while (await AskAsync(port) != target.Name)
            {
                if (watch.Elapsed > TimeSpan.FromSeconds(10))
                {
                    Console.Error.WriteLine("a change did not arrive within 10 s");
                    return 1;
                }
            }

            samples.Add(watch.Elapsed.TotalMilliseconds);
            await live.SendAsync(Encoding.ASCII.GetBytes("x"));
            var one = new byte[1];
            if (await live.ReceiveAsync(one) != 1)
            {
                Console.Error.WriteLine("the live connection was dropped by a config change");
                return 1;
            }
        }

        await host.StopAsync();
        samples.Sort();
        double At(double q) => samples[(int)Math.Min(samples.Count - 1, Math.Round(q * (samples.Count - 1)))];
        Console.WriteLine($"config change to new connections, {changes} changes, debounce {debounce.TotalMilliseconds} ms: " +
            $"median {At(0.5):F1} ms, p95 {At(0.95):F1} ms, max {samples[^1]:F1} ms; after the debounce: median {At(0.5) - debounce.TotalMilliseconds:F1} ms, " +
            $"p95 {At(0.95) - debounce.TotalMilliseconds:F1} ms; the live connection survived every change");
        return 0;
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    private static async Task<string> AskAsync(int port)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port);
        using var reader = new StreamReader(client.GetStream());
        return await reader.ReadToEndAsync();
    }

    /// <summary>Answers every connection with its name, then closes.</summary>
    private sealed class NamedBackend : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);

        public NamedBackend(string name)
        {
            Name = name;
            _listener.Start();
            _ = ServeAsync(Encoding.ASCII.GetBytes(name));
        }

        public string Name { get; }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public void Dispose() => _listener.Stop();

        private async Task ServeAsync(byte[] reply)
        {
            try
            {
                while (true)
                {
                    using var client = await _listener.AcceptTcpClientAsync();
                    await client.GetStream().WriteAsync(reply);
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        }
    }

    /// <summary>Echoes every byte on every connection, for the live connection.</summary>
    private sealed class EchoBackend : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);

        public EchoBackend()
        {
            _listener.Start();
            _ = AcceptAsync();
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public void Dispose() => _listener.Stop();

        private async Task AcceptAsync()
        {
            try
            {
                while (true)
                {
                    var client = await _listener.AcceptTcpClientAsync();
                    _ = EchoAsync(client);
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        }

        private static async Task EchoAsync(TcpClient client)
        {
            using (client)
            {
                var stream = client.GetStream();
                var buffer = new byte[256];
                try
                {
                    int read;
                    while ((read = await stream.ReadAsync(buffer)) > 0)
                    {
                        await stream.WriteAsync(buffer.AsMemory(0, read));
                    }
                }
                catch (IOException)
                {
                }
            }
        }
    }
}
