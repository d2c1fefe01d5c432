using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using FsmGateway.Resources;
using FsmGateway.Routing;
using FsmGateway.Transport.Proxy;

namespace FsmGateway.Benchmarks;

/// <summary>
/// What active health checking costs the gateway process: a proxy with one backend of N endpoints (127.0.x.y, one
/// port), each probed every second (TCP connect, or HTTP GET), against a server in a child process (so its accepts
/// and answers are not counted). Prints the proxy process's CPU time per wall second over the measured window,
/// next to the same process with the check removed (the idle baseline), and the probes done.
/// </summary>
internal static class HealthProbeCost
{
    public static async Task<int> RunAsync(string protocol, int endpoints, int seconds)
    {
        var http = protocol == "http";
        var port = FreePort();
        using var server = StartServer(port, http);
        await Task.Delay(1000);

        var check = new ActiveHealthCheck(http ? HealthProbeProtocol.Http : HealthProbeProtocol.Tcp, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), 3, 1) { HttpPath = http ? "/healthz" : null };
        var addresses = Enumerable.Range(0, endpoints).Select(i => new BackendEndpoint($"127.0.{(i / 250) + 1}.{(i % 250) + 1}", port)).Order().ToArray();
        var listenPort = FreePort();
        RoutingTable Table(ActiveHealthCheck? active) => new([
            new ListenerRoute(new ResourceKey(ResourceKind.Gateway, "bench", "gw"), "tcp", ["127.0.0.1"], listenPort, new ResourceKey(ResourceKind.TcpRoute, "bench", "r"), [
                new RouteBackend("bench", "svc", 80, 1, [.. addresses], null) { Policy = new BackendPolicy { ActiveHealthCheck = active } },
            ]),
        ]);

        await using var proxy = GatewayProxy.CreateDefault();
        await proxy.ApplyAsync(Table(null), CancellationToken.None);
        var idle = await MeasureAsync(seconds: Math.Min(10, seconds));
        Console.WriteLine($"idle (no checks): {idle.Cpu:P2} of one core");

        await proxy.ApplyAsync(Table(check), CancellationToken.None);
        await Task.Delay(TimeSpan.FromSeconds(5)); // every endpoint probed a few times: JIT, pools and connections warm
        var probesBefore = proxy.Prober.States.Sum(static s => (long)s.Probes);
        var gcBefore = GC.GetTotalAllocatedBytes();
        var probing = await MeasureAsync(seconds);
        var probes = proxy.Prober.States.Sum(static s => (long)s.Probes) - probesBefore;
        var allocated = GC.GetTotalAllocatedBytes() - gcBefore;
        var down = proxy.GetEndpointHealth().Count(static e => !e.Healthy);
        Console.WriteLine(
            $"{protocol}, {endpoints} endpoints every 1s: {probing.Cpu:P2} of one core ({(probing.Cpu - idle.Cpu):P2} above idle), " +
            $"{probes / probing.Wall.TotalSeconds:F0} probes/s, {probing.CpuTime.TotalMicroseconds / Math.Max(1, probes):F1} us CPU and {allocated / Math.Max(1, probes)} B allocated per probe, {down} endpoint(s) down");
        server.Kill();
        return 0;
    }

    /// <summary>The child process: accepts on every loopback address at <paramref name="port"/>; answers HTTP requests when <paramref name="http"/>.</summary>
    public static async Task<int> ServeAsync(int port, bool http)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Any, port));
        listener.Listen(4096);
        var answer = Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        while (true)
        {
            var socket = await listener.AcceptAsync();
            _ = Task.Run(async () =>
            {
                using (socket)
                {
                    var buffer = new byte[4096];
                    try
                    {
                        int read;
                        while ((read = await socket.ReceiveAsync(buffer, SocketFlags.None)) > 0)
                        {
                            // One request per read is enough for a probe's GET (no pipelining).
                            if (http && buffer.AsSpan(0, read).IndexOf("\r\n\r\n"u8) >= 0)
                            {
                                await socket.SendAsync(answer, SocketFlags.None);
                            }
                        }
                    }
                    catch (SocketException)
                    {
                    }
                }
            });
        }
    }

    private static Process StartServer(int port, bool http)
    {
        var self = typeof(HealthProbeCost).Assembly.Location;
        var info = new ProcessStartInfo(Environment.ProcessPath!, [self, "--health-probe-server", port.ToString(CultureInfo.InvariantCulture), http ? "http" : "tcp"]);
        return Process.Start(info)!;
    }

    private static async Task<(double Cpu, TimeSpan CpuTime, TimeSpan Wall)> MeasureAsync(int seconds)
    {
        using var self = Process.GetCurrentProcess();
        var (cpu, user) = (self.TotalProcessorTime, self.UserProcessorTime);
        var wall = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(seconds));
        self.Refresh();
        var used = self.TotalProcessorTime - cpu;
        var userUsed = self.UserProcessorTime - user;
        Console.WriteLine($"  user {userUsed / wall.Elapsed:P2}, kernel {(used - userUsed) / wall.Elapsed:P2} of one core");
        return (used / wall.Elapsed, used, wall.Elapsed);
    }

    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
