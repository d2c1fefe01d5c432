using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using FsmGateway.Configuration;
using FsmGateway.Host.Tests.Support;
using FsmGateway.Transport;
using FsmGateway.Transport.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Host.Tests;

/// <summary>
/// The config pipeline's metrics (meter <c>FsmGateway.Config</c>) from the real <c>run</c> process on watched
/// manifests: revisions applied, compile time, last apply, objects by kind and invalid objects by kind and reason, read
/// back from <c>/metrics</c> exactly, before and after an edit of the manifests.
/// </summary>
public sealed class ConfigMetricsTests : IDisposable
{
    private readonly DirectoryInfo _config = Directory.CreateTempSubdirectory("fsm-config-metrics-");

    public void Dispose() => _config.Delete(recursive: true);

    [Fact]
    public async Task Run_counts_revisions_compiles_objects_by_kind_and_invalid_objects_by_reason_and_follows_an_edit()
    {
        await using var echo = new EchoServer();
        var port = Net.FreePort();

        // One route whose Service is missing (ResolvedRefs=False, BackendNotFound).
        Write(Manifests.Gateway(("tcp", port)) + "\n---\n" + Manifests.RouteAndBackend(echo.Port) + "\n---\n" + Route("orphan", "missing"));
        var started = DateTimeOffset.UtcNow;
        await using var gateway = GatewayProcess.Start("run", "--config", _config.FullName, "--admin-port", "0");
        await gateway.WaitUntilReadyAsync();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var metrics = new Uri(gateway.AdminUri!, "/metrics");

        var exposition = await Exposition.ScrapeAsync(http, metrics);
        Assert.Equal(1, exposition.Sum("fsmgateway_config_revisions_applied_total"));
        Assert.Equal(1, exposition.Sum("fsmgateway_config_compile_duration_seconds_count"));
        Assert.Equal(1, exposition.Sum("fsmgateway_config_compile_duration_seconds_bucket", ("le", "+Inf")));
        Assert.Equal(0, exposition.Sum("fsmgateway_config_apply_failures_total"));
        AssertObjects(exposition, gateways: 1, routes: 2, services: 1, slices: 1);
        Assert.Equal(1, exposition.Sum("fsmgateway_config_objects_invalid", ("kind", "TCPRoute"), ("reason", "BackendNotFound")));
        Assert.Equal(1, exposition.Sum("fsmgateway_config_objects_invalid"));
        var applied = exposition.Sum("fsmgateway_config_last_apply_time_seconds");
        Assert.InRange(applied, started.ToUnixTimeMilliseconds() / 1000.0 - 1, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0 + 1);

        // The edit: the missing Service appears (the route is valid again) and a UDP listener is added (not accepted).
        Write(Manifests.Gateway(("tcp", port)) + "\n    - name: udp\n      port: " + Net.FreePort().ToString(CultureInfo.InvariantCulture) + "\n      protocol: UDP\n---\n"
            + Manifests.RouteAndBackend(echo.Port) + "\n---\n" + Route("orphan", "missing") + "\n---\n" + Service("missing"));
        await Net.EventuallyAsync(
            async () => (exposition = await Exposition.ScrapeAsync(http, metrics)).Sum("fsmgateway_config_revisions_applied_total") >= 2,
            $"the edit applied, in /metrics; output:\n{gateway.Output}");

        Assert.Equal(2, exposition.Sum("fsmgateway_config_revisions_applied_total"));
        Assert.Equal(2, exposition.Sum("fsmgateway_config_compile_duration_seconds_count"));
        AssertObjects(exposition, gateways: 1, routes: 2, services: 2, slices: 1);
        Assert.Equal(0, exposition.Sum("fsmgateway_config_objects_invalid", ("kind", "TCPRoute")));
        Assert.True(exposition.LabelsOf("fsmgateway_config_objects_invalid").Any(l => l["reason"] == "BackendNotFound"), "a fixed reason stays, at 0");
        Assert.Equal(1, exposition.Sum("fsmgateway_config_objects_invalid", ("kind", "Listener"), ("reason", "UnsupportedProtocol")));
        Assert.Equal(1, exposition.Sum("fsmgateway_config_objects_invalid"));
        Assert.True(exposition.Sum("fsmgateway_config_last_apply_time_seconds") >= applied);

        await MetricsTests.PromtoolAsync(exposition.Text);
        Assert.Equal(0, await gateway.TerminateAsync());
    }

    /// <summary>
    /// An apply that fails with an error no one foresaw (here the listener factory throws what it never should) is
    /// counted as an apply failure, not as a revision applied; each new revision is tried afresh. In process: nothing
    /// outside can make the real process fail so.
    /// </summary>
    [Fact]
    public async Task An_apply_that_fails_counts_as_an_apply_failure_and_not_as_a_revision_applied()
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddFsmGateway()
            .UseListenerFactory<BrokenListenerFactory>()
            .LoadFromMemory(Config(Net.FreePort()));
        using var host = builder.Build();
        var factory = host.Services.GetRequiredService<IMeterFactory>();
        long failures = 0, applied = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Scope == factory && instrument.Name is "fsmgateway.config.apply.failures" or "fsmgateway.config.revisions.applied")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
            Interlocked.Add(ref instrument.Name == "fsmgateway.config.apply.failures" ? ref failures : ref applied, value));
        listener.Start();
        await host.StartAsync();

        await Net.EventuallyAsync(() => Task.FromResult(Interlocked.Read(ref failures) == 1), "the first revision's apply failed, counted");
        host.Services.GetRequiredService<InMemoryConfigSource>().Update(Config(Net.FreePort()));
        await Net.EventuallyAsync(() => Task.FromResult(Interlocked.Read(ref failures) == 2), "the next revision tried afresh, and counted");
        await host.StopAsync();
        Assert.Equal(2, Interlocked.Read(ref failures));
        Assert.Equal(0, Interlocked.Read(ref applied));

        static IReadOnlyList<Resources.Resource> Config(int port) => new ResourceSetBuilder("apps")
            .Gateway("gw", g => g.Address("127.0.0.1").Listener("tcp", port))
            .Build();
    }

    private sealed class BrokenListenerFactory : IListenerFactory
    {
        public ValueTask<IConnectionListener> BindAsync(EndPoint endPoint, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("a bug in the listener factory");
    }

    private static void AssertObjects(Exposition exposition, int gateways, int routes, int services, int slices)
    {
        Assert.Equal(gateways, exposition.Sum("fsmgateway_config_objects", ("kind", "Gateway")));
        Assert.Equal(routes, exposition.Sum("fsmgateway_config_objects", ("kind", "TCPRoute")));
        Assert.Equal(services, exposition.Sum("fsmgateway_config_objects", ("kind", "Service")));
        Assert.Equal(slices, exposition.Sum("fsmgateway_config_objects", ("kind", "EndpointSlice")));
        foreach (var none in new[] { "GatewayClass", "ReferenceGrant", "Namespace" })
        {
            Assert.Equal(0, exposition.Sum("fsmgateway_config_objects", ("kind", none)));
            Assert.True(exposition.LabelsOf("fsmgateway_config_objects").Any(l => l["kind"] == none), $"kind {none} is reported, at 0");
        }
    }

    /// <summary>Replaces the manifest atomically (a rename), so the watcher reads it once, whole.</summary>
    private void Write(string yaml)
    {
        var temporary = Path.Combine(_config.FullName, ".gateway.yaml.tmp");
        File.WriteAllText(temporary, yaml);
        File.Move(temporary, Path.Combine(_config.FullName, "gateway.yaml"), overwrite: true);
    }

    private static string Route(string name, string service) => $"""
        apiVersion: gateway.networking.k8s.io/v1alpha2
        kind: TCPRoute
        metadata:
          name: {name}
        spec:
          parentRefs:
            - name: gw
          rules:
            - backendRefs:
                - name: {service}
                  port: 9000
        """;

    private static string Service(string name) => $"""
        apiVersion: v1
        kind: Service
        metadata:
          name: {name}
        spec:
          ports:
            - port: 9000
        """;
}
