using FsmGateway.Configuration;
using FsmGateway.Kubernetes.Api;
using FsmGateway.Kubernetes.Controller;
using FsmGateway.Resources;
using FsmGateway.Kubernetes.Tests.Support;
using FsmGateway.Testing.Kubernetes;
using k8s;
using Microsoft.Extensions.Logging.Abstractions;

namespace FsmGateway.Kubernetes.Tests.Watch;

/// <summary>The watch source against the fake API server, through the real KubernetesClient.</summary>
public sealed class KubernetesWatchSourceTests() : FakeApiServerTest(new FakeApiServerOptions { BookmarkInterval = TimeSpan.FromMilliseconds(200) })
{
    private const string Routes = """
        apiVersion: gateway.networking.k8s.io/v1
        kind: TCPRoute
        metadata: { name: a, namespace: apps }
        spec:
          parentRefs: [{ name: gw }]
          rules: [{ backendRefs: [{ name: svc, port: 80 }] }]
        ---
        apiVersion: gateway.networking.k8s.io/v1
        kind: TCPRoute
        metadata: { name: b, namespace: apps }
        spec:
          parentRefs: [{ name: gw }]
          rules: [{ backendRefs: [{ name: svc, port: 80 }] }]
        """;

    protected override IKubernetes CreateClient(FakeApiServer server) => new k8s.Kubernetes(server.ClientConfiguration(), new CoreGroupPathHandler());

    private KubernetesWatchSource Source(ApiKind kind, Action<KubernetesOptions>? configure = null)
    {
        var options = new KubernetesOptions { MinRetryDelay = TimeSpan.FromMilliseconds(200), MaxRetryDelay = TimeSpan.FromSeconds(1), MissingKindRetryInterval = TimeSpan.FromMilliseconds(300), PageSize = 1 };
        configure?.Invoke(options);
        return new KubernetesWatchSource(Client, kind, options, TimeProvider.System, NullLogger.Instance);
    }

    private static Func<ConfigEvent, bool> Upserted(string name, Func<Resource, bool>? also = null) =>
        e => e is ConfigEvent.Upserted u && u.Resource.Metadata.Name == name && (also?.Invoke(u.Resource) ?? true);

    private static Func<ConfigEvent, bool> Deleted(string name) => e => e is ConfigEvent.Deleted d && d.Key.Name == name;

    private static bool Synced(ConfigEvent e) => e is ConfigEvent.SourceSynced;

    [Fact]
    public async Task Lists_every_page_then_reports_synced_once()
    {
        Server.InstallGatewayApiCrds();
        Server.ApplyYaml(Routes);
        using var recorder = new EventRecorder(Source(ApiKind.TcpRoute));

        var synced = await recorder.WaitForAsync(Synced, what: "synced");

        var before = recorder.Events.Take(synced).OfType<ConfigEvent.Upserted>().Select(u => u.Resource.Key).ToList();
        Assert.Equal([new ResourceKey(ResourceKind.TcpRoute, "apps", "a"), new ResourceKey(ResourceKind.TcpRoute, "apps", "b")], before.Order());
        Assert.All(recorder.Events, e => Assert.Equal("kubernetes/tcproutes", e.Source));
        Assert.Contains(Server.Requests, r => r.Verb == "list" && r.Resource == "tcproutes");
        // Synced follows the list; the watch that continues from it may start a moment later.
        await Server.WaitForRequestAsync(r => r.Verb == "watch" && r.Resource == "tcproutes");
    }

    [Fact]
    public async Task Reports_adds_updates_and_deletes_as_they_happen()
    {
        Server.InstallGatewayApiCrds();
        using var recorder = new EventRecorder(Source(ApiKind.TcpRoute));
        var at = await recorder.WaitForAsync(Synced, what: "synced");

        Server.ApplyYaml(Routes.Split("---")[0]);
        at = await recorder.WaitForAsync(Upserted("a"), at, "a added");

        var changed = Routes.Split("---")[0].Replace("port: 80", "port: 81", StringComparison.Ordinal);
        Server.ApplyYaml(changed);
        at = await recorder.WaitForAsync(Upserted("a", r => ((TcpRoute)r).Rules[0].BackendRefs[0].Port == 81 && r.Metadata.Generation == 2), at, "a updated to port 81, generation 2");

        Server.Delete("gateway.networking.k8s.io/v1", "TCPRoute", "apps", "a");
        await recorder.WaitForAsync(Deleted("a"), at, "a deleted");
    }

    [Fact]
    public async Task Tells_the_status_writer_each_objects_uid_before_the_event_so_a_route_created_again_is_a_new_object()
    {
        Server.InstallGatewayApiCrds();
        var uids = new ObservedUids();
        var key = new ResourceKey(ResourceKind.TcpRoute, "apps", "a");
        string? seenAtEvent = null;
        var source = new KubernetesWatchSource(Client, ApiKind.TcpRoute, new KubernetesOptions(), TimeProvider.System, NullLogger.Instance, uids: uids);
        using var recorder = new EventRecorder(new ObservingSource(source, e =>
        {
            if (e is ConfigEvent.Upserted { Resource.Key: var upserted } && upserted == key)
            {
                seenAtEvent = uids.UidOf(key);
            }
        }));
        var at = await recorder.WaitForAsync(Synced, what: "synced");

        Server.ApplyYaml(Routes.Split("---")[0]);
        at = await recorder.WaitForAsync(Upserted("a"), at, "a added");
        var first = Server.Get("gateway.networking.k8s.io/v1", "TCPRoute", "apps", "a")!["metadata"]!["uid"]!.GetValue<string>();
        Assert.Equal(first, seenAtEvent);

        Server.Delete("gateway.networking.k8s.io/v1", "TCPRoute", "apps", "a");
        at = await recorder.WaitForAsync(Deleted("a"), at, "a deleted");
        Assert.Null(uids.UidOf(key));

        Server.ApplyYaml(Routes.Split("---")[0]);
        await recorder.WaitForAsync(Upserted("a"), at, "a created again");
        var second = Server.Get("gateway.networking.k8s.io/v1", "TCPRoute", "apps", "a")!["metadata"]!["uid"]!.GetValue<string>();
        Assert.NotEqual(first, second);
        Assert.Equal(second, seenAtEvent);

        // Kinds whose status is not written (Services, EndpointSlices: most objects) are not kept.
        Assert.False(ObservedUids.Tracks(ResourceKind.Service));
        Assert.False(ObservedUids.Tracks(ResourceKind.EndpointSlice));
    }

    /// <summary>A source whose events are seen by <paramref name="seen"/> as they are delivered.</summary>
    private sealed class ObservingSource(IConfigSource inner, Action<ConfigEvent> seen) : IConfigSource
    {
        public string Name => inner.Name;

        public IObservable<ConfigEvent> Events => System.Reactive.Linq.Observable.Do(inner.Events, seen);
    }

    [Fact]
    public async Task Reads_core_and_discovery_kinds_and_fills_in_what_built_in_lists_omit()
    {
        Server.ApplyYaml("""
            apiVersion: v1
            kind: Service
            metadata: { name: svc, namespace: apps }
            spec: { ports: [{ port: 80, protocol: TCP }] }
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: { name: svc-1, namespace: apps, labels: { kubernetes.io/service-name: svc } }
            addressType: IPv4
            ports: [{ port: 8080, protocol: TCP }]
            endpoints: [{ addresses: [127.0.0.1], conditions: { ready: true } }]
            ---
            apiVersion: v1
            kind: Namespace
            metadata: { name: apps, labels: { team: a } }
            """);
        using var services = new EventRecorder(Source(ApiKind.Service));
        using var slices = new EventRecorder(Source(ApiKind.EndpointSlice));
        using var namespaces = new EventRecorder(Source(ApiKind.Namespace));

        await services.WaitForAsync(Upserted("svc", r => r is Service { Ports.Length: 1 }), what: "service");
        await slices.WaitForAsync(Upserted("svc-1", r => r is EndpointSlice { ServiceName: "svc", Endpoints.Length: 1 }), what: "slice");
        await namespaces.WaitForAsync(Upserted("apps", r => r.Metadata.Labels["team"] == "a"), what: "namespace");
    }

    [Fact]
    public async Task A_dropped_watch_is_reopened_from_the_last_resource_version_without_a_relist()
    {
        Server.InstallGatewayApiCrds();
        using var recorder = new EventRecorder(Source(ApiKind.TcpRoute));
        var at = await recorder.WaitForAsync(Synced, what: "synced");
        var lists = Server.Requests.Count(r => r.Verb == "list" && r.Resource == "tcproutes");

        Server.DropWatches();
        Server.ApplyYaml(Routes);

        at = await recorder.WaitForAsync(Upserted("a"), at, "a after the drop");
        await recorder.WaitForAsync(Upserted("b"), what: "b after the drop");
        Assert.Equal(lists, Server.Requests.Count(r => r.Verb == "list" && r.Resource == "tcproutes"));
    }

    [Fact]
    public async Task A_410_relists_and_reports_objects_that_vanished_meanwhile_as_deleted()
    {
        Server.InstallGatewayApiCrds();
        Server.ApplyYaml(Routes);
        using var recorder = new EventRecorder(Source(ApiKind.TcpRoute));
        var at = await recorder.WaitForAsync(Synced, what: "synced");

        // The watch misses the delete (stalled, then cut), and its resourceVersion expires meanwhile.
        Server.StallWatches(true);
        Server.Delete("gateway.networking.k8s.io/v1", "TCPRoute", "apps", "b");
        Server.Compact();
        Server.DropWatches();
        Server.StallWatches(false);

        at = await recorder.WaitForAsync(Deleted("b"), at, "b deleted by the re-list");
        Assert.True(Server.Requests.Count(r => r.Verb == "list" && r.Resource == "tcproutes") >= 2);
        Assert.DoesNotContain(recorder.Events.Skip(at), e => e is ConfigEvent.Deleted { Key.Name: "a" });
    }

    [Fact]
    public async Task A_410_mid_stream_relists_and_keeps_watching()
    {
        Server.InstallGatewayApiCrds();
        using var recorder = new EventRecorder(Source(ApiKind.TcpRoute));
        var at = await recorder.WaitForAsync(Synced, what: "synced");

        // An event through the watch shows it is open before the server expires it.
        var parts = Routes.Split("---");
        Server.ApplyYaml(parts[0]);
        at = await recorder.WaitForAsync(Upserted("a"), at, "a through the watch");
        var lists = Server.Requests.Count(r => r.Verb == "list" && r.Resource == "tcproutes");

        Server.Compact();
        await WaitUntilAsync(() => Server.Requests.Count(r => r.Verb == "list" && r.Resource == "tcproutes") > lists, "a re-list after the 410");
        Server.ApplyYaml(parts[1]);

        await recorder.WaitForAsync(Upserted("b"), at, "b after the 410");
        Assert.Single(recorder.Events, Synced);
    }

    [Fact]
    public async Task Error_events_other_than_410_relist_with_back_off_not_in_a_tight_loop()
    {
        Server.InstallGatewayApiCrds();
        Server.ApplyYaml(Routes);
        Server.FailWatch = r => r.Resource == "tcproutes" ? new FakeApiException(500, "InternalError", "etcd is unhappy") : null;
        using var recorder = new EventRecorder(Source(ApiKind.TcpRoute, o => { o.MinRetryDelay = TimeSpan.FromMilliseconds(100); o.MaxRetryDelay = TimeSpan.FromSeconds(1); }));
        await recorder.WaitForAsync(Synced, what: "synced");
        await WaitUntilAsync(() => Server.Requests.Count(r => r.Verb == "watch" && r.Resource == "tcproutes") >= 2, "a second watch after the first error event");

        // Back-off 100, 200, 400, 800, 1000 ms (±20 %): at most about 6 re-lists in 3 s; a tight loop makes hundreds.
        // (A slow machine only makes fewer.)
        var before = Server.Requests.Count(r => r.Verb == "list" && r.Resource == "tcproutes");
        await Task.Delay(TimeSpan.FromSeconds(3));
        var relists = Server.Requests.Count(r => r.Verb == "list" && r.Resource == "tcproutes") - before;
        Assert.True(relists <= 10, $"{relists} re-lists in 3 s");

        // The error events stop: the watch stays open and events flow again.
        Server.FailWatch = null;
        var at = recorder.Events.Count;
        Server.Delete("gateway.networking.k8s.io/v1", "TCPRoute", "apps", "a");
        await recorder.WaitForAsync(Deleted("a"), at, "a deleted");
    }

    [Fact]
    public async Task An_object_the_mapper_throws_on_is_skipped_and_the_rest_of_its_kind_still_applies()
    {
        Server.InstallGatewayApiCrds();
        Server.ApplyYaml(Routes);
        var options = new KubernetesOptions { MinRetryDelay = TimeSpan.FromMilliseconds(200), MaxRetryDelay = TimeSpan.FromSeconds(1), PageSize = 1 };
        var source = new KubernetesWatchSource(Client, ApiKind.TcpRoute, options, TimeProvider.System, NullLogger.Instance, map: json =>
            json["metadata"]?["name"]?.GetValue<string>() == "a"
                ? throw new InvalidOperationException("a fault of the mapper")
                : Mapping.ResourceMapper.Map(json, defaultNamespace: string.Empty).Resource);
        using var recorder = new EventRecorder(source);

        var at = await recorder.WaitForAsync(Synced, what: "synced");
        Assert.Contains(recorder.Events.Take(at), e => Upserted("b")(e));
        Assert.DoesNotContain(recorder.Events, e => Upserted("a")(e));
        Assert.True(source.Unreadable >= 1);

        // The kind is not frozen: later changes still arrive.
        Server.Delete("gateway.networking.k8s.io/v1", "TCPRoute", "apps", "b");
        await recorder.WaitForAsync(Deleted("b"), at, "b deleted");
    }

    [Fact]
    public async Task A_silent_watch_is_taken_for_dead_and_reopened()
    {
        Server.InstallGatewayApiCrds();
        using var recorder = new EventRecorder(Source(ApiKind.TcpRoute, o => o.WatchInactivityTimeout = TimeSpan.FromSeconds(1)));
        var at = await recorder.WaitForAsync(Synced, what: "synced");
        var watches = Server.Requests.Count(r => r.Verb == "watch" && r.Resource == "tcproutes");

        Server.StallWatches(true);
        await WaitUntilAsync(() => Server.Requests.Count(r => r.Verb == "watch" && r.Resource == "tcproutes") > watches, "a new watch after 1 s of silence");
        Server.StallWatches(false);
        Server.ApplyYaml(Routes);

        await recorder.WaitForAsync(Upserted("a"), at, "a on the new watch");
    }

    [Fact]
    public async Task A_missing_CRD_counts_as_synced_and_is_picked_up_when_it_appears()
    {
        using var recorder = new EventRecorder(Source(ApiKind.TcpRoute));
        var at = await recorder.WaitForAsync(Synced, what: "synced with no CRD");
        Assert.Empty(recorder.Events.OfType<ConfigEvent.Upserted>());

        Server.InstallGatewayApiCrds();
        Server.ApplyYaml(Routes);

        await recorder.WaitForAsync(Upserted("a"), at, "a once the CRD exists");
    }

    [Theory]
    [InlineData("HealthCheckPolicy")]
    [InlineData("BackendLBPolicy")]
    [InlineData("BackendTrafficPolicy")]
    public async Task A_policy_kind_without_its_CRD_counts_as_synced_and_is_picked_up_when_the_CRD_appears(string kind)
    {
        var apiKind = ApiKind.Watched.Single(k => k.ApiKindName == kind);
        using var recorder = new EventRecorder(Source(apiKind));
        var at = await recorder.WaitForAsync(Synced, what: $"{kind} synced with no CRD");
        Assert.Empty(recorder.Events.OfType<ConfigEvent.Upserted>());

        Server.InstallPolicyCrds();
        var target = kind == "BackendTrafficPolicy" ? "{ group: gateway.networking.k8s.io, kind: Gateway, name: x }" : "{ group: '', kind: Service, name: x }";
        var check = kind == "HealthCheckPolicy" ? "\n  healthCheck: { interval: 1s, maxFails: 3 }" : string.Empty;
        Server.ApplyYaml($"apiVersion: {apiKind.ApiVersion(apiKind.Versions[0])}\nkind: {kind}\nmetadata: {{ name: p, namespace: apps }}\nspec:\n  targetRefs: [{target}]{check}\n");

        await recorder.WaitForAsync(Upserted("p", r => r.Kind.ToString() == apiKind.Kind.ToString()), at, $"{kind} p once the CRD exists");
    }

    [Theory]
    [InlineData("ClientTrafficPolicy", "spec:\n  targetRefs: [{ group: gateway.networking.k8s.io, kind: Gateway, name: x }]\n  timeout: { tcp: { idleTimeout: 1m } }")]
    [InlineData("RouteRuleFilterPolicy", "spec:\n  targetRefs: [{ group: gateway.networking.k8s.io, kind: TCPRoute, name: r, rule: main }]\n  filterRefs: [{ group: extension.gateway.flomesh.io, kind: Filter, name: f }]")]
    [InlineData("RateLimitPolicy", "spec:\n  targetRef: { group: gateway.networking.k8s.io, kind: Gateway, name: x }\n  bps: 10\n  ports: [{ port: 80 }]")]
    [InlineData("ListenerFilter", "spec:\n  type: ConcurrencyLimit\n  targetRefs: [{ group: gateway.networking.k8s.io, kind: Gateway, name: x, port: 80 }]")]
    [InlineData("Filter", "spec:\n  type: IPRestriction")]
    [InlineData("ConcurrencyLimit", "spec:\n  maxConnections: 3")]
    [InlineData("IPRestriction", "spec:\n  allowed: [10.0.0.0/8]")]
    public async Task A_client_policy_kind_without_its_CRD_counts_as_synced_and_is_picked_up_when_the_CRD_appears(string kind, string spec)
    {
        var apiKind = ApiKind.Watched.Single(k => k.ApiKindName == kind);
        using var recorder = new EventRecorder(Source(apiKind));
        var at = await recorder.WaitForAsync(Synced, what: $"{kind} synced with no CRD");
        Assert.Empty(recorder.Events.OfType<ConfigEvent.Upserted>());

        Server.InstallClientPolicyCrds();
        Server.ApplyYaml($"apiVersion: {apiKind.ApiVersion(apiKind.Versions[0])}\nkind: {kind}\nmetadata: {{ name: p, namespace: apps }}\n{spec}\n");

        await recorder.WaitForAsync(Upserted("p", r => r.Kind.ToString() == apiKind.Kind.ToString()), at, $"{kind} p once the CRD exists");
    }

    [Fact]
    public async Task A_passing_discovery_failure_deletes_nothing()
    {
        Server.InstallGatewayApiCrds();
        Server.ApplyYaml(Routes);
        using var recorder = new EventRecorder(Source(ApiKind.TcpRoute));
        var at = await recorder.WaitForAsync(Synced, what: "synced");
        var lists = Server.Requests.Count(r => r.Verb == "list" && r.Resource == "tcproutes");

        // "synced" comes before the watch opens. A watch request that passed the server's FailRequest check before it is
        // set below but registers only after DropWatches would be neither failed nor dropped, and would stay open
        // (bookmarks keep it alive), so discovery would never be asked again. The server logs a watch once it is
        // registered, so wait for that before the failure and the drop.
        await WaitUntilAsync(() => Server.Requests.Any(r => r.Verb == "watch" && r.Resource == "tcproutes" && r.StatusCode == 200), "the watch is open");

        // For a while the API server says the group is not there (a restarting or failing-over API server).
        Server.FailRequest = r => r.Path.StartsWith("/apis/gateway.networking.k8s.io", StringComparison.Ordinal)
            ? new FakeApiException(404, "NotFound", "the server could not find the requested resource")
            : null;
        Server.DropWatches();
        await WaitUntilAsync(() => Server.Requests.Count(r => r.Path.StartsWith("/apis/gateway.networking.k8s.io/v1", StringComparison.Ordinal) && r.StatusCode == 404 && r.Resource.Length == 0) >= 2, "discovery failing twice");
        Server.FailRequest = null;

        await WaitUntilAsync(() => Server.Requests.Count(r => r.Verb == "list" && r.Resource == "tcproutes" && r.StatusCode == 200) > lists, "a re-list once discovery answers again");
        Assert.DoesNotContain(recorder.Events.Skip(at), e => e is ConfigEvent.Deleted);
    }

    [Fact]
    public async Task Uses_the_version_the_cluster_serves()
    {
        Server.InstallGatewayApiCrds(tcpRouteVersion: "v1alpha2");
        Server.ApplyYaml(Routes.Replace("gateway.networking.k8s.io/v1\n", "gateway.networking.k8s.io/v1alpha2\n", StringComparison.Ordinal));
        using var recorder = new EventRecorder(Source(ApiKind.TcpRoute));

        await recorder.WaitForAsync(Upserted("a"), what: "a at v1alpha2");
        Assert.Contains(Server.Requests, r => r.Verb == "list" && r.Resource == "tcproutes" && r.Version == "v1alpha2");
    }

    [Fact]
    public async Task A_deleted_CRD_deletes_its_objects()
    {
        Server.InstallGatewayApiCrds();
        Server.ApplyYaml(Routes);
        using var recorder = new EventRecorder(Source(ApiKind.TcpRoute));
        var at = await recorder.WaitForAsync(Synced, what: "synced");

        // The deletions reach the source through its watch, which opens only after the list that sent "synced". A
        // watch that asks after the CRD is gone gets 404, and a kind no longer served keeps its objects (by design: a
        // restarting API server's passing 404 must not delete everything), so the CRD goes only once the watch is open.
        // The server logs a watch once it is registered for events.
        await WaitUntilAsync(() => Server.Requests.Any(r => r.Verb == "watch" && r.Resource == "tcproutes" && r.StatusCode == 200), "the watch is open");
        Server.RemoveCrd("gateway.networking.k8s.io", "tcproutes");

        at = await recorder.WaitForAsync(Deleted("a"), at, "a deleted with its CRD");
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out waiting for {what}");
            }

            await Task.Delay(50);
        }
    }
}
