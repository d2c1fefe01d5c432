using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using FsmGateway.Configuration;
using FsmGateway.Kubernetes.Api;
using FsmGateway.Kubernetes.Tests.Support;
using FsmGateway.Testing.Kubernetes;
using k8s;
using Microsoft.Extensions.Logging.Abstractions;

namespace FsmGateway.Kubernetes.Tests.Watch;

/// <summary>
/// The reasons of <c>fsmgateway.kubernetes.watch.restarts</c> and <c>.relists</c> that the end-to-end tests do not
/// provoke: a watch the server ends at its timeout, one that falls silent, and a kind that appears after start.
/// </summary>
public sealed class ListWatchMetricsTests : IAsyncLifetime
{
    private readonly TestMeterFactory _meters = new();
    private readonly ConcurrentDictionary<(string Instrument, string Kind, string Reason), long> _counts = new();
    private readonly MeterListener _listener = new();
    private FakeApiServer _server = null!;
    private IKubernetes _client = null!;

    public async Task InitializeAsync()
    {
        _server = await FakeApiServer.StartAsync(new FakeApiServerOptions { BookmarkInterval = TimeSpan.FromMilliseconds(200) });
        _client = new k8s.Kubernetes(_server.ClientConfiguration(), new CoreGroupPathHandler());
        _listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Scope == _meters)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            string kind = string.Empty, reason = string.Empty;
            foreach (var tag in tags)
            {
                if (tag.Key == "kind")
                {
                    kind = tag.Value as string ?? string.Empty;
                }
                else if (tag.Key == "reason")
                {
                    reason = tag.Value as string ?? string.Empty;
                }
            }

            _counts.AddOrUpdate((instrument.Name, kind, reason), value, (_, v) => v + value);
        });
        _listener.Start();
    }

    public async Task DisposeAsync()
    {
        _listener.Dispose();
        _meters.Dispose();
        _client.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task A_watch_ended_by_its_timeout_is_counted_as_a_restart_ended_and_no_relist()
    {
        _server.InstallGatewayApiCrds();
        using var recorder = new EventRecorder(Source(o => o.WatchTimeout = TimeSpan.FromSeconds(1)));
        await recorder.WaitForAsync(static e => e is ConfigEvent.SourceSynced, what: "synced");

        await EventuallyAsync(() => Count("fsmgateway.kubernetes.watch.restarts", "ended") >= 2, "two watches ended by their timeout, reopened");
        Assert.Equal(0, Count("fsmgateway.kubernetes.watch.relists"));
        Assert.Equal(0, Count("fsmgateway.kubernetes.watch.restarts", "silent") + Count("fsmgateway.kubernetes.watch.restarts", "failed"));
    }

    [Fact]
    public async Task A_silent_watch_is_counted_as_a_restart_silent()
    {
        _server.InstallGatewayApiCrds();
        using var recorder = new EventRecorder(Source(o => o.WatchInactivityTimeout = TimeSpan.FromMilliseconds(600)));
        await recorder.WaitForAsync(static e => e is ConfigEvent.SourceSynced, what: "synced");

        _server.StallWatches(true);
        await EventuallyAsync(() => Count("fsmgateway.kubernetes.watch.restarts", "silent") >= 1, "the silent watch reopened");
        _server.StallWatches(false);
        Assert.Equal(0, Count("fsmgateway.kubernetes.watch.relists"));
    }

    [Fact]
    public async Task A_kind_served_after_start_is_counted_as_a_relist_appeared()
    {
        using var recorder = new EventRecorder(Source());
        await recorder.WaitForAsync(static e => e is ConfigEvent.SourceSynced, what: "synced, empty: the kind is not served");

        _server.InstallGatewayApiCrds();
        await EventuallyAsync(() => Count("fsmgateway.kubernetes.watch.relists", "appeared") == 1, "the kind listed once it is served");
        Assert.Equal(1, Count("fsmgateway.kubernetes.watch.relists"));
    }

    private KubernetesWatchSource Source(Action<KubernetesOptions>? configure = null)
    {
        var options = new KubernetesOptions { MinRetryDelay = TimeSpan.FromMilliseconds(200), MaxRetryDelay = TimeSpan.FromSeconds(1), MissingKindRetryInterval = TimeSpan.FromMilliseconds(300) };
        configure?.Invoke(options);
        return new KubernetesWatchSource(_client, ApiKind.TcpRoute, options, TimeProvider.System, NullLogger.Instance, metrics: new KubernetesMetrics(_meters));
    }

    /// <summary>The count of <paramref name="instrument"/> for TCPRoute, with <paramref name="reason"/> or any.</summary>
    private long Count(string instrument, string? reason = null) =>
        _counts.Where(c => c.Key.Instrument == instrument && c.Key.Kind == "TCPRoute" && (reason is null || c.Key.Reason == reason)).Sum(static c => c.Value);

    private static async Task EventuallyAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not within 30 s: {what}");
            await Task.Delay(50);
        }
    }
}
