using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using FsmGateway.Resources;
using FsmGateway.Routing;
using FsmGateway.Transport.Proxy;
using FsmGateway.Transport.ProxyProtocol;

namespace FsmGateway.Benchmarks;

/// <summary>
/// New-connection rate through a real <see cref="GatewayProxy"/> on loopback with the PROXY protocol off, accepted
/// from clients (v1, v2), and accepted and sent onwards (v2 in, v2 out): each connection sends one byte (after its
/// header), half-closes, gets one byte back and ends. Client, gateway and backend share this process, so the figures
/// are for comparing the modes with each other, interleaved over rounds, not for comparing with other proxies.
/// </summary>
internal static class ProxyProtocolRateProbe
{
    private static readonly (string Name, ProxyProtocolVersion? In, ProxyProtocolVersion? Out, bool IpList)[] Modes =
    [
        ("off", null, null, false),
        ("in v1", ProxyProtocolVersion.V1, null, false),
        ("in v2", ProxyProtocolVersion.V2, null, false),
        ("in v2 + out v2", ProxyProtocolVersion.V2, ProxyProtocolVersion.V2, false),
        ("in v2 + IP list", ProxyProtocolVersion.V2, null, true),
    ];

    /// <summary>An FSM IPRestriction that admits the header's source (203.0.113.7) after checking every entry.</summary>
    private static readonly ConnectionFilter IpList = new(
        ConnectionFilterType.IPRestriction,
        new ResourceKey(ResourceKind.Gateway, "bench", "ip-list"),
        new ResourceKey(ResourceKind.Gateway, "bench", "ip-list"),
        new ResourceKey(ResourceKind.Gateway, "bench", "ip-list-config"),
        100)
    {
        Allowed = ["10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12", "2001:db8::/32", "203.0.113.0/24"],
        Forbidden = ["10.66.0.0/16", "203.0.113.128/25", "2001:db8:66::/48"],
    };

    public static async Task<int> RunAsync(int connections, int rounds, int concurrency)
    {
        using var backend = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        backend.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        backend.Listen(4096);
        var backendPort = ((IPEndPoint)backend.LocalEndPoint!).Port;
        _ = Task.Run(() => ServeAsync(backend));

        var gateway = new ResourceKey(ResourceKind.Gateway, "bench", "gw");
        var route = new ResourceKey(ResourceKind.TcpRoute, "bench", "route");
        var listeners = new List<(string Name, int Port, byte[] Header)>();
        var table = new List<ListenerRoute>();
        var port = 0;
        foreach (var (name, inbound, outbound, ipList) in Modes)
        {
            using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                port = ((IPEndPoint)probe.LocalEndPoint!).Port;
            }

            var backendRef = new RouteBackend("bench", "svc", 8080, 1, [new BackendEndpoint("127.0.0.1", backendPort)], null) with
            {
                Policy = new BackendPolicy { ProxyProtocol = outbound },
            };
            table.Add(new ListenerRoute(gateway, $"l{port}", ["127.0.0.1"], port, route, [backendRef]) with
            {
                Client = inbound is null ? ClientPolicy.Default : new ClientPolicy { ProxyProtocol = new ClientProxyProtocol(false), ListenerFilters = ipList ? [IpList] : [] },
            });
            var header = inbound is { } v ? ProxyProtocolWriter.ToArray(v, new IPEndPoint(IPAddress.Parse("203.0.113.7"), 40000), new IPEndPoint(IPAddress.Parse("10.0.0.1"), 443)) : [];
            listeners.Add((name, port, header));
        }

        await using var proxy = GatewayProxy.CreateDefault();
        await proxy.ApplyAsync(new RoutingTable([.. table.OrderBy(static l => l.Port)]), CancellationToken.None);

        foreach (var (_, p, header) in listeners)
        {
            await DriveAsync(p, header, 2_000, concurrency); // warm-up
        }

        var results = Modes.ToDictionary(static m => m.Name, static _ => new List<(double Rate, double CpuUs)>());
        for (var round = 0; round < rounds; round++)
        {
            foreach (var (name, p, header) in listeners)
            {
                var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                var watch = Stopwatch.StartNew();
                await DriveAsync(p, header, connections, concurrency);
                watch.Stop();
                var cpuUs = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMicroseconds / connections;
                results[name].Add((connections / watch.Elapsed.TotalSeconds, cpuUs));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"round {round + 1} {name,-15} {connections / watch.Elapsed.TotalSeconds,8:F0} conn/s  {cpuUs,6:F1} us CPU/conn (whole process)"));
            }
        }

        var baseline = Median(results["off"].Select(static r => r.Rate));
        var baselineCpu = Median(results["off"].Select(static r => r.CpuUs));
        Console.WriteLine($"\nmedians of {rounds} rounds, {connections} connections each, {concurrency} at once");
        Console.WriteLine("mode              conn/s   vs off   us CPU/conn   vs off");
        foreach (var (name, _, _, _) in Modes)
        {
            var rate = Median(results[name].Select(static r => r.Rate));
            var cpu = Median(results[name].Select(static r => r.CpuUs));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name,-15} {rate,8:F0}   {rate / baseline,6:F3}   {cpu,11:F1}   {cpu / baselineCpu,6:F3}"));
        }

        return 0;
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static async Task DriveAsync(int port, byte[] header, int connections, int concurrency)
    {
        var request = header.Append((byte)'x').ToArray();
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            var reply = new byte[16];
            while (Interlocked.Increment(ref next) < connections)
            {
                using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
                await client.SendAsync(request, SocketFlags.None);
                client.Shutdown(SocketShutdown.Send);
                var total = 0;
                while (await client.ReceiveAsync(reply, SocketFlags.None) is var n and > 0)
                {
                    total += n;
                }

                if (total != 1)
                {
                    throw new InvalidOperationException($"port {port}: {total} bytes back instead of 1");
                }
            }
        }));
    }

    private static async Task ServeAsync(Socket listener)
    {
        while (true)
        {
            var socket = await listener.AcceptAsync();
            _ = Task.Run(async () =>
            {
                using (socket)
                {
                    var buffer = new byte[256];
                    try
                    {
                        while (await socket.ReceiveAsync(buffer, SocketFlags.None) > 0)
                        {
                        }

                        await socket.SendAsync("y"u8.ToArray(), SocketFlags.None);
                        socket.Shutdown(SocketShutdown.Send);
                    }
                    catch (SocketException)
                    {
                    }
                }
            });
        }
    }
}
