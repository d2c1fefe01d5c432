using System.Globalization;
using FsmGateway.Host.Tests.Support;

namespace FsmGateway.Host.Tests;

/// <summary>
/// A real Prometheus scrapes the real gateway's metrics port every second while known traffic runs; its HTTP API must
/// then answer exactly that traffic.
/// </summary>
public sealed class PrometheusScrapeTests : IDisposable
{
    private readonly DirectoryInfo _config = Directory.CreateTempSubdirectory("fsm-prom-");

    public void Dispose() => _config.Delete(recursive: true);

    [PrometheusFact]
    public async Task Prometheus_ScrapingEverySecond_FindsExactlyTheTrafficDriven()
    {
        const int Echoed = 7, Bytes = 1234, Dead = 4, Empty = 3, NoRoute = 2, Banner = 5, Idle = 2;
        await using var traffic = new KnownTraffic();
        File.WriteAllText(Path.Combine(_config.FullName, "gateway.yaml"), traffic.Manifests);
        await using var gateway = GatewayProcess.Start("run", "--config", _config.FullName, "--admin-port", "0", "--metrics-port", "0", "--idle-timeout", "3s");
        var metrics = await gateway.WaitForMetricsAsync();
        await gateway.WaitUntilReadyAsync();
        await using var prometheus = PrometheusServer.Start(ExternalTools.Find("prometheus")!, metrics);
        await prometheus.WaitUntilReadyAsync();
        await Net.EventuallyAsync(async () => await Try(() => prometheus.ValueAsync("up{job=\"fsm-gateway\"}")) == 1, "Prometheus scrapes the gateway", TimeSpan.FromSeconds(60));

        // The traffic runs while Prometheus scrapes.
        await traffic.EchoAsync(Echoed, Bytes);
        await KnownTraffic.RefusedAsync(traffic.DeadPort, Dead);
        await KnownTraffic.RefusedAsync(traffic.EmptyPort, Empty);
        await KnownTraffic.RefusedAsync(traffic.NoRoutePort, NoRoute);
        await traffic.BannerAsync(Banner);
        await traffic.IdleAsync(Idle);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var exposition = await MetricsTests.WhenIdleAsync(http, metrics);

        string Port(int port) => port.ToString(CultureInfo.InvariantCulture);
        var expected = new Dictionary<string, double>
        {
            [$"sum(fsmgateway_connections_accepted_total{{port=\"{Port(traffic.EchoPort)}\"}})"] = Echoed + Idle,
            [$"sum(fsmgateway_connections_accepted_total{{port=\"{Port(traffic.DeadPort)}\"}})"] = Dead,
            [$"sum(fsmgateway_connections_accepted_total{{port=\"{Port(traffic.EmptyPort)}\"}})"] = Empty,
            [$"sum(fsmgateway_connections_accepted_total{{port=\"{Port(traffic.NoRoutePort)}\"}})"] = NoRoute,
            [$"sum(fsmgateway_connections_accepted_total{{port=\"{Port(traffic.BannerPort)}\"}})"] = Banner,
            ["sum(fsmgateway_connections_closed_total{reason=\"client_closed\"})"] = Echoed,
            ["sum(fsmgateway_connections_closed_total{reason=\"idle_timeout\"})"] = Idle,
            ["sum(fsmgateway_connections_closed_total{reason=\"backend_closed\"})"] = Banner,
            ["sum(fsmgateway_connections_closed_total{reason=\"refused_upstream_connect_failed\"})"] = Dead,
            ["sum(fsmgateway_connections_closed_total{reason=\"refused_no_healthy_endpoint\"})"] = Empty,
            ["sum(fsmgateway_connections_closed_total{reason=\"refused_no_route\"})"] = NoRoute,
            ["sum(fsmgateway_connections_closed_total)"] = Echoed + Idle + Dead + Empty + NoRoute + Banner,
            ["sum(fsmgateway_connections_closed_total{listener=\"empty\",reason=\"refused_no_healthy_endpoint\"})"] = Empty,
            ["sum(fsmgateway_upstream_connect_failures_total)"] = Dead,
            [$"sum(fsmgateway_bytes_total{{port=\"{Port(traffic.EchoPort)}\",direction=\"upstream\"}})"] = Echoed * Bytes,
            [$"sum(fsmgateway_bytes_total{{port=\"{Port(traffic.EchoPort)}\",direction=\"downstream\"}})"] = Echoed * Bytes,
            [$"sum(fsmgateway_bytes_total{{port=\"{Port(traffic.BannerPort)}\",direction=\"downstream\"}})"] = Banner * "banner".Length,
            ["sum(fsmgateway_connections_active)"] = 0,
            ["sum(fsmgateway_connections_accepted_total{gateway_namespace=\"apps\",gateway_name=\"gw\",listener=\"echo\"})"] = Echoed + Idle,
            ["sum(fsmgateway_upstream_connect_failures_total{route_name=\"dead\",backend_name=\"dead\",reason=\"refused\"})"] = Dead,
            ["sum(fsmgateway_backend_connections_total{route_name=\"echo\",backend_name=\"echo\"})"] = Echoed + Idle,
            ["sum(fsmgateway_backend_bytes_total{backend_name=\"echo\",direction=\"downstream\"})"] = Echoed * Bytes,
            ["sum(fsmgateway_upstream_connect_duration_seconds_count{backend_name=\"echo\"})"] = Echoed + Idle,
            ["sum(fsmgateway_upstream_connect_duration_seconds_bucket{backend_name=\"echo\",le=\"+Inf\"})"] = Echoed + Idle,
            ["sum(fsmgateway_connection_duration_seconds_count{backend_name=\"echo\"})"] = Echoed + Idle,
            ["sum(fsmgateway_connection_duration_seconds_bucket{backend_name=\"echo\",le=\"+Inf\"})"] = Echoed + Idle,
        };

        // Once a scrape after the traffic has landed, every series holds exactly the traffic.
        await Net.EventuallyAsync(
            async () => await Try(() => prometheus.ValueAsync("sum(fsmgateway_connections_closed_total)")) == Echoed + Idle + Dead + Empty + NoRoute + Banner
                && await Try(() => prometheus.ValueAsync("sum(fsmgateway_connections_active)")) == 0,
            "Prometheus has scraped the traffic",
            TimeSpan.FromSeconds(60));
        foreach (var (query, value) in expected)
        {
            Assert.True(await prometheus.ValueAsync(query) == value, $"{query}: Prometheus has {await prometheus.ValueAsync(query)}, the traffic was {value}");
        }

        // The buckets Prometheus holds add up: cumulative, ending at the count.
        var buckets = (await prometheus.QueryAsync("sum by (le) (fsmgateway_upstream_connect_duration_seconds_bucket{backend_name=\"echo\"})"))
            .Select(static b => (Le: b.Labels["le"] == "+Inf" ? double.PositiveInfinity : double.Parse(b.Labels["le"], CultureInfo.InvariantCulture), b.Value))
            .OrderBy(static b => b.Le)
            .ToList();
        Assert.True(buckets.Count > 2, "no connect-duration buckets in Prometheus");
        Assert.True(buckets.Select(static b => b.Value).SequenceEqual(buckets.Select(static b => b.Value).Order()), "buckets not cumulative");
        Assert.Equal(Echoed + Idle, buckets[^1].Value);

        Assert.NotNull(await prometheus.ValueAsync("process_start_time_seconds{job=\"fsm-gateway\"}"));
        Assert.NotEmpty(await prometheus.QueryAsync("dotnet_gc_collections_total"));
        await MetricsTests.PromtoolAsync(exposition.Text);
    }

    private static async Task<double?> Try(Func<Task<double?>> query)
    {
        try
        {
            return await query();
        }
        catch (HttpRequestException)
        {
            return null; // Prometheus is not listening yet.
        }
    }
}
