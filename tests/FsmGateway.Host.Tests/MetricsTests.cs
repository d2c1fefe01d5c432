using System.Diagnostics;
using System.Net;
using FsmGateway.Host.Tests.Support;

namespace FsmGateway.Host.Tests;

/// <summary>
/// <c>/metrics</c>: the real <c>fsm-gateway</c> process, real traffic through it, then a real HTTP GET of the
/// Prometheus exposition, whose counters must hold exactly that traffic.
/// </summary>
public sealed class MetricsTests : IDisposable
{
    private readonly DirectoryInfo _config = Directory.CreateTempSubdirectory("fsm-metrics-");

    public void Dispose() => _config.Delete(recursive: true);

    [Fact]
    public async Task Metrics_AfterKnownTraffic_CountsExactlyThatTraffic_InPrometheusFormat()
    {
        await using var traffic = new KnownTraffic();
        File.WriteAllText(Path.Combine(_config.FullName, "gateway.yaml"), traffic.Manifests);
        await using var gateway = GatewayProcess.Start("run", "--config", _config.FullName, "--admin-port", "0", "--idle-timeout", "3s");
        await gateway.WaitUntilReadyAsync();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var metrics = new Uri(gateway.AdminUri!, "/metrics");

        try
        {
            await traffic.EchoAsync(connections: 5, bytes: 1000);
            await KnownTraffic.RefusedAsync(traffic.DeadPort, 3);
            await KnownTraffic.RefusedAsync(traffic.EmptyPort, 2);
            await KnownTraffic.RefusedAsync(traffic.NoRoutePort, 4);
            await traffic.BannerAsync(6);
            await traffic.IdleAsync(2);
        }
        catch (Exception e)
        {
            throw new InvalidOperationException($"traffic failed: {e.Message}\n{gateway.Output}", e);
        }

        var exposition = await WhenIdleAsync(http, metrics);

        using (var response = await http.GetAsync(metrics))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.MediaType, StringComparison.Ordinal);
        }

        var echo = ("port", traffic.EchoPort.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var dead = ("port", traffic.DeadPort.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var empty = ("port", traffic.EmptyPort.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var noRoute = ("port", traffic.NoRoutePort.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var banner = ("port", traffic.BannerPort.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(5 + 2, exposition.Sum("fsmgateway_connections_accepted_total", echo));
        Assert.Equal(3, exposition.Sum("fsmgateway_connections_accepted_total", dead));
        Assert.Equal(2, exposition.Sum("fsmgateway_connections_accepted_total", empty));
        Assert.Equal(4, exposition.Sum("fsmgateway_connections_accepted_total", noRoute));
        Assert.Equal(6, exposition.Sum("fsmgateway_connections_accepted_total", banner));

        // Every accepted connection is closed once, by its reason.
        var closedSeries = string.Join('\n', exposition.Text.Split('\n').Where(static l => l.StartsWith("fsmgateway_connections_closed_total", StringComparison.Ordinal)));
        void Closed(int expected, (string, string) port, string reason) =>
            Assert.True(exposition.Sum("fsmgateway_connections_closed_total", port, ("reason", reason)) == expected, $"expected {expected} closed on {port.Item2} with {reason}:\n{closedSeries}");
        Closed(5, echo, "client_closed");
        Closed(2, echo, "idle_timeout");
        Closed(3, dead, "refused_upstream_connect_failed");
        Closed(2, empty, "refused_no_healthy_endpoint");
        Closed(4, noRoute, "refused_no_route");
        Closed(6, banner, "backend_closed");
        Assert.Equal(exposition.Sum("fsmgateway_connections_accepted_total"), exposition.Sum("fsmgateway_connections_closed_total"));
        Assert.False(exposition.Has("fsmgateway_connections_rejected_total"), "the rejected counter is replaced by the refused_* reasons of fsmgateway_connections_closed_total");
        Assert.Equal(5000, exposition.Sum("fsmgateway_bytes_total", echo, ("direction", "upstream")));
        Assert.Equal(5000, exposition.Sum("fsmgateway_bytes_total", echo, ("direction", "downstream")));

        // Per listener: the Gateway and the listener's name; per route and backend: connections, bytes, connect
        // failures by reason, and histograms whose buckets add up to their count.
        (string, string)[] echoListener = [("gateway_namespace", "apps"), ("gateway_name", "gw"), ("listener", "echo"), echo];
        Assert.Equal(7, exposition.Sum("fsmgateway_connections_accepted_total", echoListener));
        Assert.Equal(2, exposition.Sum("fsmgateway_connections_closed_total", ("gateway_namespace", "apps"), ("gateway_name", "gw"), ("listener", "empty"), ("reason", "refused_no_healthy_endpoint")));
        (string, string)[] echoBackend = [("route_namespace", "apps"), ("route_name", "echo"), ("backend_namespace", "apps"), ("backend_name", "echo"), ("backend_port", "9000")];
        Assert.Equal(5 + 2, exposition.Sum("fsmgateway_backend_connections_total", echoBackend));
        Assert.Equal(5000, exposition.Sum("fsmgateway_backend_bytes_total", [.. echoBackend, ("direction", "upstream")]));
        Assert.Equal(5000, exposition.Sum("fsmgateway_backend_bytes_total", [.. echoBackend, ("direction", "downstream")]));
        Assert.Equal(3, exposition.Sum("fsmgateway_upstream_connect_failures_total", ("route_name", "dead"), ("backend_name", "dead"), ("reason", "refused")));
        Assert.Equal(3, exposition.Sum("fsmgateway_upstream_connect_failures_total"));
        Assert.Equal(0, exposition.Sum("fsmgateway_backend_connections_total", ("backend_name", "dead")));
        foreach (var histogram in new[] { "fsmgateway_upstream_connect_duration_seconds", "fsmgateway_connection_duration_seconds" })
        {
            Assert.Equal(5 + 2, exposition.Sum(histogram + "_count", echoBackend));
            Assert.Equal(5 + 2, exposition.Sum(histogram + "_bucket", [.. echoBackend, ("le", "+Inf")]));
            var buckets = exposition.LabelsOf(histogram + "_bucket").Select(l => l["le"]).Distinct().ToList();
            var cumulative = buckets.Select(le => exposition.Sum(histogram + "_bucket", [.. echoBackend, ("le", le)])).ToList();
            Assert.True(cumulative.SequenceEqual(cumulative.Order()), $"{histogram}: buckets not cumulative: {string.Join(", ", cumulative)}");
            Assert.InRange(exposition.Sum(histogram + "_sum", echoBackend), 0, 60);
        }

        // The process: the runtime's instruments and the Prometheus convention's start time, which is this process's.
        Assert.True(exposition.Has("dotnet_gc_collections_total"), "no .NET runtime metrics");
        Assert.True(exposition.Has("process_cpu_time_seconds_total"), "no process metrics");
        using var process = Process.GetProcessById(gateway.Id);
        var started = new DateTimeOffset(process.StartTime.ToUniversalTime()).ToUnixTimeMilliseconds() / 1000.0;
        Assert.InRange(exposition.Sum("process_start_time_seconds"), started - 1, started + 1);

        // Bounded labels: no client address or port anywhere.
        foreach (var name in exposition.Names)
        {
            foreach (var labels in exposition.LabelsOf(name))
            {
                Assert.DoesNotContain(labels, l => l.Value.Contains("127.0.0.1", StringComparison.Ordinal));
            }
        }

        // Per-endpoint series are behind --endpoint-metrics; the per-backend ejection counter is always there.
        Assert.DoesNotContain(exposition.Names, static n => n.StartsWith("fsmgateway_endpoint_", StringComparison.Ordinal));
        Assert.InRange(exposition.Sum("fsmgateway_backend_ejections_total", ("backend_name", "dead")), 1, 3);

        await PromtoolAsync(exposition.Text);
    }

    [Fact]
    public async Task EndpointMetrics_WithTheFlag_EachEndpointsConnectionsHealthAndEjections()
    {
        await using var traffic = new KnownTraffic();
        File.WriteAllText(Path.Combine(_config.FullName, "gateway.yaml"), traffic.Manifests);
        await using var gateway = GatewayProcess.Start("run", "--config", _config.FullName, "--admin-port", "0", "--endpoint-metrics");
        await gateway.WaitUntilReadyAsync();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var metrics = new Uri(gateway.AdminUri!, "/metrics");

        // Two connections echoed and closed, one refused (the dead endpoint's connect fails once: one ejection), two held open.
        await traffic.EchoAsync(connections: 2, bytes: 10);
        await KnownTraffic.RefusedAsync(traffic.DeadPort, 1);
        using var first = await Net.ConnectAsync(traffic.EchoPort);
        Assert.Equal("one", await Net.RoundTripAsync(first, "one"));
        using var second = await Net.ConnectAsync(traffic.EchoPort);
        Assert.Equal("two", await Net.RoundTripAsync(second, "two"));

        Exposition? exposition = null;
        await Net.EventuallyAsync(
            async () =>
            {
                exposition = await Exposition.ScrapeAsync(http, metrics);
                return exposition.Sum("fsmgateway_connections_active") == 2;
            },
            "exactly the two held connections open, in /metrics");

        (string, string)[] echo = [("backend_namespace", "apps"), ("backend_name", "echo"), ("backend_port", "9000"), ("endpoint", $"127.0.0.1:{traffic.EchoBackendPort}")];
        (string, string)[] dead = [("backend_namespace", "apps"), ("backend_name", "dead"), ("backend_port", "9000"), ("endpoint", $"127.0.0.1:{traffic.ClosedPort}")];
        Assert.Equal(2, exposition!.Sum("fsmgateway_endpoint_connections_active", echo));
        Assert.Equal(0, exposition.Sum("fsmgateway_endpoint_connections_active", dead));
        Assert.Equal(1, exposition.Sum("fsmgateway_endpoint_healthy", echo));
        Assert.Equal(0, exposition.Sum("fsmgateway_endpoint_ejections_total", echo));
        Assert.Equal(1, exposition.Sum("fsmgateway_endpoint_ejections_total", dead));
        Assert.Equal(1, exposition.Sum("fsmgateway_backend_ejections_total", ("backend_name", "dead")));

        // One series per endpoint of each instrument, labelled by backend and endpoint only: bounded by the endpoint set.
        foreach (var name in new[] { "fsmgateway_endpoint_connections_active", "fsmgateway_endpoint_healthy", "fsmgateway_endpoint_ejections_total" })
        {
            var endpoints = exposition.LabelsOf(name).Where(static l => l["backend_name"] is "echo" or "dead").Select(static l => l["endpoint"]).Order(StringComparer.Ordinal).ToList();
            Assert.Equal(new[] { $"127.0.0.1:{traffic.ClosedPort}", $"127.0.0.1:{traffic.EchoBackendPort}" }.Order(StringComparer.Ordinal), endpoints);
            Assert.Equal(exposition.LabelsOf(name).Select(static l => l["backend_name"]).Distinct().Count(), exposition.LabelsOf(name).Count());
            Assert.All(exposition.LabelsOf(name), static l => Assert.Equal(["backend_name", "backend_namespace", "backend_port", "endpoint"], l.Keys.Where(static k => !k.StartsWith("otel_", StringComparison.Ordinal)).Order(StringComparer.Ordinal)));
        }

        await PromtoolAsync(exposition.Text);
    }

    [Fact]
    public async Task MetricsPort_ServesMetricsOnly_WhileTheAdminPortKeepsStatus()
    {
        await using var traffic = new KnownTraffic();
        File.WriteAllText(Path.Combine(_config.FullName, "gateway.yaml"), traffic.Manifests);
        await using var gateway = GatewayProcess.Start("run", "--config", _config.FullName, "--admin-port", "0", "--metrics-port", "0");
        var metrics = await gateway.WaitForMetricsAsync();
        await gateway.WaitUntilReadyAsync();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        await traffic.EchoAsync(connections: 1, bytes: 10);

        Assert.NotEqual(gateway.AdminUri!.Port, metrics.Port);
        var exposition = await WhenIdleAsync(http, metrics);
        Assert.Equal(1, exposition.Sum("fsmgateway_connections_accepted_total"));
        foreach (var path in new[] { "/status", "/readyz", "/healthz" })
        {
            using var elsewhere = await http.GetAsync(new Uri(metrics, path));
            Assert.Equal(HttpStatusCode.NotFound, elsewhere.StatusCode);
            using var admin = await http.GetAsync(new Uri(gateway.AdminUri, path));
            Assert.Equal(HttpStatusCode.OK, admin.StatusCode);
        }
    }

    [Theory]
    [InlineData("--metrics-port", "70000", "--metrics-port: '70000' is not a port")]
    [InlineData("--metrics-port", "-1", "--metrics-port: '-1' is not a port")]
    [InlineData("--metrics-address", "10.0.0.1", "--metrics-address: '10.0.0.1' needs --metrics-port too")]
    [InlineData("--no-metrics", "--metrics-port=0", "--no-metrics: cannot be combined with --metrics-port")]
    [InlineData("--no-metrics", "--endpoint-metrics", "--no-metrics: cannot be combined with --endpoint-metrics")]
    public async Task MetricsOptions_Invalid_ExitWithAnErrorNamingTheOption(string option, string value, string error)
    {
        await using var gateway = GatewayProcess.Start("run", "--admin-port", "0", option, value);
        Assert.Equal(1, await gateway.WaitForExitAsync());
        Assert.Contains(error, gateway.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoMetrics_ServesNoMetrics_AndStillRelays()
    {
        await using var traffic = new KnownTraffic();
        File.WriteAllText(Path.Combine(_config.FullName, "gateway.yaml"), traffic.Manifests);
        await using var gateway = GatewayProcess.Start("run", "--config", _config.FullName, "--admin-port", "0", "--no-metrics");
        await gateway.WaitUntilReadyAsync();
        await traffic.EchoAsync(connections: 2, bytes: 10);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using (var metrics = await http.GetAsync(new Uri(gateway.AdminUri!, "/metrics")))
        {
            Assert.Equal(HttpStatusCode.NotFound, metrics.StatusCode);
        }

        using (var ready = await http.GetAsync(new Uri(gateway.AdminUri!, "/readyz")))
        {
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        }

        Assert.Equal(0, await gateway.TerminateAsync());
    }

    [Fact]
    public async Task MetricsAddress_NotAnAddress_ExitsWithAnErrorNamingTheOption()
    {
        await using var gateway = GatewayProcess.Start("run", "--admin-port", "0", "--metrics-port", "0", "--metrics-address", "everywhere");
        Assert.Equal(1, await gateway.WaitForExitAsync());
        Assert.Contains("--metrics-address 'everywhere' is not an IP address", gateway.Output, StringComparison.Ordinal);
    }

    /// <summary>Scrapes until no connection is open any more (the gateway finishes closing after the client has seen the end).</summary>
    internal static async Task<Exposition> WhenIdleAsync(HttpClient http, Uri metrics)
    {
        Exposition? last = null;
        await Net.EventuallyAsync(
            async () =>
            {
                last = await Exposition.ScrapeAsync(http, metrics);
                return last.Has("fsmgateway_connections_active") && last.Sum("fsmgateway_connections_active") == 0;
            },
            "every connection closed, in /metrics");
        return last!;
    }

    /// <summary>Runs <c>promtool check metrics</c> on <paramref name="text"/> when promtool is installed (it comes with Prometheus).</summary>
    internal static async Task PromtoolAsync(string text)
    {
        if (ExternalTools.Find("promtool") is not { } promtool)
        {
            return;
        }

        var info = new ProcessStartInfo(promtool, ["check", "metrics"]) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(text);
        process.StandardInput.Close();
        await process.WaitForExitAsync();
        var report = (await stdout) + (await stderr);
        Assert.True(process.ExitCode == 0 && report.Trim().Length == 0, $"promtool check metrics: exit {process.ExitCode}\n{report}");
    }
}
