using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using FsmGateway.Host.Tests.Support;
using FsmGateway.Testing.Kubernetes;

namespace FsmGateway.Host.Tests;

/// <summary>
/// <c>deploy/grafana/fsm-gateway.json</c> is a dashboard that works: every query selects only metrics the gateway
/// really exports (collected from the real processes' <c>/metrics</c>: a <c>run</c> data plane after known traffic,
/// and a controller against the fake API server), and every query is PromQL Prometheus accepts.
/// </summary>
public sealed partial class GrafanaDashboardTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("fsm-grafana-");

    public void Dispose() => _dir.Delete(recursive: true);

    private static JsonObject Dashboard() => JsonNode.Parse(File.ReadAllText(RepoPaths.Of("deploy/grafana/fsm-gateway.json")))!.AsObject();

    /// <summary>Every PromQL expression in the dashboard: each panel target's, and each query variable's metric.</summary>
    private static List<(string Where, string Expression)> Queries(JsonObject dashboard)
    {
        var queries = new List<(string, string)>();
        foreach (var panel in dashboard["panels"]!.AsArray().Select(static p => p!).Where(static p => (string?)p["type"] != "row"))
        {
            var targets = panel["targets"]?.AsArray() ?? [];
            Assert.True(targets.Count > 0, $"panel '{panel["title"]}' has no query");
            queries.AddRange(targets.Select(t => ($"panel '{panel["title"]}'", (string)t!["expr"]!)));
        }

        foreach (var variable in dashboard["templating"]!["list"]!.AsArray().Where(static v => (string?)v!["type"] == "query"))
        {
            var query = (string)variable!["query"]!["query"]!;
            var match = LabelValues().Match(query);
            Assert.True(match.Success, $"variable '{variable["name"]}': {query} is not label_values(selector, label)");
            queries.Add(($"variable '{variable["name"]}'", match.Groups["selector"].Value));
        }

        return queries;
    }

    [Fact]
    public void MetricNames_ListsTheSelectedMetricsOnly()
    {
        Assert.Equal(
            ["a_bucket", "b_total", "c"],
            PromQl.MetricNames("""histogram_quantile(0.99, sum by (le, x) (rate(a_bucket{x=~"$ns", y="sum(b)"}[$__rate_interval]))) / on (x) group_left (y) sum without (z) (b_total offset 5m) * 1e3 + c > bool 0.5""").Order());
        Assert.Empty(PromQl.MetricNames("""vector(1) + time()"""));
    }

    [Fact]
    public async Task Dashboard_EveryQuery_SelectsOnlyMetricsTheGatewayExports_AndIsValidPromQl()
    {
        var dashboard = Dashboard();
        Assert.Equal("fsm-gateway", (string?)dashboard["uid"]);
        var queries = Queries(dashboard);
        var exported = new HashSet<string>(StringComparer.Ordinal);
        exported.UnionWith(await DataPlaneMetricsAsync());
        exported.UnionWith(await ControllerMetricsAsync());

        var missing = queries
            .SelectMany(static q => PromQl.MetricNames(q.Expression).Select(name => (q.Where, Name: name)))
            .Where(r => !exported.Contains(r.Name))
            .Select(static r => $"{r.Where}: {r.Name}")
            .Distinct()
            .ToList();
        Assert.True(missing.Count == 0, "the dashboard queries metrics the gateway does not export:\n" + string.Join('\n', missing));

        // It covers what an operator looks at first.
        var used = queries.SelectMany(static q => PromQl.MetricNames(q.Expression)).ToHashSet();
        foreach (var name in new[]
        {
            "fsmgateway_connections_accepted_total", "fsmgateway_connections_active", "fsmgateway_bytes_total", "fsmgateway_connections_closed_total",
            "fsmgateway_upstream_connect_duration_seconds_bucket", "fsmgateway_upstream_connect_failures_total", "fsmgateway_backend_ejections_total",
            "fsmgateway_config_revisions_applied_total", "fsmgateway_config_objects_invalid",
        })
        {
            Assert.Contains(name, used);
        }

        await PromtoolCheckAsync(queries);
    }

    /// <summary>
    /// The names a <c>run</c> data plane exports once connections were relayed, refused for each reason and closed, and
    /// a route was refused, and the dead backend's endpoint was ejected and then tried in panic mode (a series appears
    /// once it has a value; per-endpoint series need <c>--endpoint-metrics</c>).
    /// </summary>
    private async Task<IEnumerable<string>> DataPlaneMetricsAsync()
    {
        await using var traffic = new KnownTraffic();
        var config = _dir.CreateSubdirectory("run");
        File.WriteAllText(Path.Combine(config.FullName, "gateway.yaml"), traffic.Manifests);
        File.WriteAllText(Path.Combine(config.FullName, "invalid.yaml"), """
            apiVersion: gateway.networking.k8s.io/v1alpha2
            kind: TCPRoute
            metadata: { name: nowhere, namespace: apps }
            spec:
              parentRefs: [{ name: gw, sectionName: no-such-listener }]
              rules: [{ backendRefs: [{ name: echo, port: 9000 }] }]
            """);
        await using var gateway = GatewayProcess.Start("run", "--config", config.FullName, "--admin-port", "0", "--endpoint-metrics");
        await gateway.WaitUntilReadyAsync();
        await traffic.EchoAsync(connections: 2, bytes: 100);
        await KnownTraffic.RefusedAsync(traffic.DeadPort, 2);
        await KnownTraffic.RefusedAsync(traffic.EmptyPort, 1);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var exposition = await MetricsTests.WhenIdleAsync(http, new Uri(gateway.AdminUri!, "/metrics"));
        Assert.Equal(0, await gateway.TerminateAsync());
        return exposition.Names;
    }

    /// <summary>The names the controller exports while it leads, provisions and writes status, and after its watches were cut and then expired.</summary>
    private async Task<IEnumerable<string>> ControllerMetricsAsync()
    {
        await using var server = await FakeApiServer.StartAsync(new FakeApiServerOptions { Token = "grafana-token" });
        server.InstallGatewayApiCrds(tcpRouteVersion: "v1alpha2", referenceGrantVersion: "v1beta1");
        var kubeconfig = server.WriteKubeconfig(Path.Combine(_dir.FullName, "kubeconfig"));
        server.ApplyYaml(File.ReadAllText(RepoPaths.Of("deploy/30-gatewayclass.yaml")));
        server.ApplyYaml("apiVersion: v1\nkind: Namespace\nmetadata: { name: httpbin }\n");
        server.ApplyYaml(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "seed/tcp-routing.yaml")), "httpbin");
        await using var controller = GatewayProcess.Start(
            "controller", "--stream-port", "0", "--kubeconfig", kubeconfig, "--image", "example.com/fsm-gateway:test", "--admin-port", "0", "--leader-election-namespace", "fsm-system");
        await controller.WaitUntilReadyAsync();
        await controller.WaitForLineAsync("leads: it writes status");
        await Net.EventuallyAsync(
            () => Task.FromResult(server.Get("gateway.networking.k8s.io/v1", "Gateway", "httpbin", "simple-fsm-gateway")?["status"] is not null),
            "the controller writes the Gateway's status",
            TimeSpan.FromSeconds(30));
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var metrics = new Uri(controller.AdminUri!, "/metrics");
        server.DropWatches();
        await Net.EventuallyAsync(async () => (await Exposition.ScrapeAsync(http, metrics)).Sum("fsmgateway_kubernetes_watch_restarts_total") > 0, "a watch is reopened", TimeSpan.FromSeconds(30));
        server.Compact();
        Exposition? exposition = null;
        await Net.EventuallyAsync(async () => (exposition = await Exposition.ScrapeAsync(http, metrics)).Sum("fsmgateway_kubernetes_watch_relists_total") > 0, "a kind is listed again", TimeSpan.FromSeconds(30));
        Assert.Equal(0, await controller.TerminateAsync());
        return exposition!.Names;
    }

    /// <summary>
    /// Prometheus' own parser on every expression: each becomes a recording rule, and <c>promtool check rules</c> must
    /// accept the file. Skipped (the name check above still runs) where promtool is not installed.
    /// </summary>
    private async Task PromtoolCheckAsync(List<(string Where, string Expression)> queries)
    {
        if (ExternalTools.Find("promtool") is not { } promtool)
        {
            return;
        }

        var rules = new StringBuilder("groups:\n  - name: dashboard\n    rules:\n");
        for (var i = 0; i < queries.Count; i++)
        {
            var expression = PromQl.WithoutGrafanaVariables(queries[i].Expression);
            rules.Append("      - record: dashboard:query").Append(i).Append('\n')
                .Append("        expr: '").Append(expression.Replace("'", "''", StringComparison.Ordinal)).Append("'\n");
        }

        var file = Path.Combine(_dir.FullName, "dashboard-rules.yml");
        await File.WriteAllTextAsync(file, rules.ToString());
        var info = new ProcessStartInfo(promtool, ["check", "rules", file]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"promtool check rules rejects a dashboard query:\n{await stdout}\n{await stderr}\n{rules}");
    }

    [GeneratedRegex(@"^label_values\((?<selector>[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})?),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$")]
    private static partial Regex LabelValues();
}
