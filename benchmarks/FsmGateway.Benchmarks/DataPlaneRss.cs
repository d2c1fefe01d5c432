extern alias host;

using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using FsmGateway.Configuration;
using FsmGateway.Resources;
using FsmGateway.Routing;
using FsmGateway.Transport.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ConfigStreamHosting = host::FsmGateway.Host.ControlPlane.ConfigStreamHosting;

namespace FsmGateway.Benchmarks;

/// <summary>
/// Issue 12's data-plane memory claim (benchmarks/README.md): a real data-plane process (<c>fsm-gateway gateway
/// --controller-address</c>) subscribed to a controller's config stream, once with a 10-object cluster and once with a
/// 100,000-object one (other Gateways, routes, Services, EndpointSlices and policies, some in the data plane's own
/// namespace), holding the same Gateway (one listener, one route, one Service of 10 endpoints). The
/// controller's stream runs in this process (the host's own ConfigStreamHosting on Kestrel, HTTP/2 on 127.0.0.1). The
/// data plane's RSS is read from /proc once it is ready and has settled.
/// </summary>
internal static class DataPlaneRss
{
    public static async Task<int> RunAsync(string executable, int runs)
    {
        var small = new List<long>();
        var large = new List<long>();
        for (var run = 0; run < runs; run++)
        {
            small.Add(await MeasureAsync(executable, 10).ConfigureAwait(false));
            large.Add(await MeasureAsync(executable, 100_000).ConfigureAwait(false));
        }

        var smallMedian = small.Order().ElementAt(small.Count / 2);
        var largeMedian = large.Order().ElementAt(large.Count / 2);
        var change = (largeMedian - smallMedian) * 100.0 / smallMedian;
        var met = Math.Abs(change) <= 10;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"data-plane RSS, median of {runs}: 10-object cluster {smallMedian / 1024.0:F1} MiB, 100,000-object cluster {largeMedian / 1024.0:F1} MiB ({change:+0.0;-0.0;0.0} %): {(met ? "within" : "NOT within")} 10 %"));

        // The exit code is the claim's verdict, so eng/test.sh can check it.
        return met ? 0 : 1;
    }

    private static async Task<long> MeasureAsync(string executable, int objects)
    {
        var listenerPort = FreePort();
        var adminPort = FreePort();
        var snapshot = ConfigSnapshot.From(Cluster(objects, listenerPort));

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        var state = new GatewayRuntimeState();
        builder.Services.AddSingleton(state);
        builder.Services.AddOptions<FsmGatewayOptions>().Configure(static o => o.Mode = GatewayMode.Controller);
        builder.Services.AddOptions<GatewayControllerOptions>();
        var streamPort = FreePort();
        // Plain HTTP/2 (--stream-insecure): TLS and token review need an API server, and cost the controller, not the data plane.
        var hosting = new ConfigStreamHosting(o => (o.Address, o.Port, o.Identity, o.Insecure) = ("127.0.0.1", streamPort, "rss-benchmark", true));
        hosting.ConfigureServices(builder);
        var app = builder.Build();
        hosting.Map(app);
        await app.StartAsync().ConfigureAwait(false);
        var address = $"http://127.0.0.1:{streamPort}";
        state.Applied(snapshot, RouteCompiler.Compile(snapshot, null, ListenerBindings.AssumeAllBound), ListenerBindings.AssumeAllBound, notServing: null);

        var start = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in (string[])["gateway", "--gateway", "team-0/gw-0", "--controller-address", address, "--admin-port", adminPort.ToString(CultureInfo.InvariantCulture)])
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        process.OutputDataReceived += static (_, _) => { };
        process.ErrorDataReceived += static (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            using var http = new HttpClient();
            var ready = Stopwatch.StartNew();
            TimeSpan readyAfter;
            while (true)
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"the data plane exited with {process.ExitCode}");
                }

                try
                {
                    using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{adminPort}/readyz")).ConfigureAwait(false);
                    if (response.IsSuccessStatusCode)
                    {
                        readyAfter = ready.Elapsed;
                        break;
                    }
                }
                catch (HttpRequestException)
                {
                }

                if (ready.Elapsed > TimeSpan.FromSeconds(30))
                {
                    throw new TimeoutException("the data plane was not ready within 30 s");
                }

                await Task.Delay(100).ConfigureAwait(false);
            }

            // It serves: the same Gateway whatever the cluster's size.
            using (var client = new TcpClient())
            {
                await client.ConnectAsync(IPAddress.Loopback, listenerPort).ConfigureAwait(false);
            }

            await Task.Delay(TimeSpan.FromSeconds(3)).ConfigureAwait(false);
            var rss = ReadRssKiB(process.Id);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"cluster of {snapshot.Resources.Count:N0} objects: data plane ready in {readyAfter.TotalMilliseconds:F0} ms (/readyz polled every 100 ms), RSS {rss / 1024.0:F1} MiB"));
            return rss;
        }
        finally
        {
            process.Kill();
            await process.WaitForExitAsync().ConfigureAwait(false);
            await app.StopAsync().ConfigureAwait(false);
            await app.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Gateway team-0/gw-0 (one listener, one route, one Service with an EndpointSlice of 10 endpoints), its class and
    /// namespace, then unrelated objects up to <paramref name="objects"/>, as a cluster has them: other Gateways, each
    /// with a route, its Service and EndpointSlice, and on every tenth Service a BackendLBPolicy; one in fifty of them
    /// in team-0 itself (objects the data plane's namespace holds but its Gateway does not use).
    /// </summary>
    private static IEnumerable<Resource> Cluster(int objects, int port)
    {
        IEnumerable<Resource> Ours()
        {
            yield return new GatewayClass(new ObjectMeta(string.Empty, "fsm"), GatewayApi.DefaultControllerName);
            yield return new KubernetesNamespace(new ObjectMeta(string.Empty, "team-0"));
            yield return new Gateway(new ObjectMeta("team-0", "gw-0"), "fsm", [new Listener("l0", port, "TCP")]);
            yield return new TcpRoute(new ObjectMeta("team-0", "route-0"), [new ParentReference(null, null, null, "gw-0", "l0", null)], [new TcpRouteRule([new BackendReference(null, null, null, "svc-0", 80, 1)])]);
            yield return new Service(new ObjectMeta("team-0", "svc-0"), [new ServicePort("tcp", 80, "TCP")]);
            yield return Slice("team-0", 0);
        }

        IEnumerable<Resource> Unrelated(int i)
        {
            var ns = i % 50 == 0 ? "team-0" : $"other-{i % 50}";
            yield return new Gateway(new ObjectMeta(ns, $"gw-{i}"), "fsm", [new Listener("l0", 20_000 + (i % 40_000), "TCP")]);
            yield return new TcpRoute(new ObjectMeta(ns, $"route-{i}"), [new ParentReference(null, null, null, $"gw-{i}", "l0", null)], [new TcpRouteRule([new BackendReference(null, null, null, $"svc-{i}", 80, 1)])]);
            yield return new Service(new ObjectMeta(ns, $"svc-{i}"), [new ServicePort("tcp", 80, "TCP")]);
            yield return Slice(ns, i);
            if (i % 10 == 0)
            {
                yield return new BackendLbPolicy(new ObjectMeta(ns, $"lb-{i}"), [new PolicyTargetReference(GatewayApi.CoreGroup, "Service", $"svc-{i}")], "LeastLoad");
            }
        }

        return Ours().Concat(Enumerable.Range(1, objects).SelectMany(Unrelated)).Take(Math.Max(objects, Ours().Count()));
    }

    private static EndpointSlice Slice(string ns, int service) =>
        new(
            new ObjectMeta(ns, $"svc-{service}-abcde"),
            $"svc-{service}",
            "IPv4",
            [new EndpointPort("tcp", 8080, "TCP")],
            [.. Enumerable.Range(0, 10).Select(e => new Endpoint([$"10.{service / 256 % 256}.{service % 256}.{e + 1}"], true))]);

    private static long ReadRssKiB(int pid)
    {
        var line = File.ReadLines($"/proc/{pid}/status").First(static l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
