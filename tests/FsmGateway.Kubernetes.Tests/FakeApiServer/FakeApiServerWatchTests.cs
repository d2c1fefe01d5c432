using System.Text.Json;
using FsmGateway.Kubernetes.Tests.Support;
using FsmGateway.Testing.Kubernetes;
using k8s;
using k8s.Autorest;
using k8s.LeaderElection;
using k8s.LeaderElection.ResourceLock;
using k8s.Models;

namespace FsmGateway.Kubernetes.Tests.FakeApi;

/// <summary>Watches (order, bookmarks, 410, drops, stalls), and leader election, through the real KubernetesClient.</summary>
public sealed class FakeApiServerWatchTests() : FakeApiServerTest(new FakeApiServerOptions { BookmarkInterval = TimeSpan.FromMilliseconds(300), InstallGatewayApiCrds = true })
{
    private const string Gw = "gateway.networking.k8s.io";
    private static V1Service Service(string name, int port = 80) => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new V1ServiceSpec { Ports = [new V1ServicePort { Port = port }] },
    };

    private WatchProbe<V1Service> WatchServices(string? resourceVersion, bool bookmarks = false, string? labelSelector = null) =>
        new((onError, ct) => Client.CoreV1.WatchListNamespacedServiceAsync(
            "default", resourceVersion: resourceVersion, allowWatchBookmarks: bookmarks, labelSelector: labelSelector, onError: onError, cancellationToken: ct));

    [Fact]
    public async Task FakeApiServer_watch_from_a_list_resource_version_sees_add_update_delete_in_order()
    {
        await Client.CoreV1.CreateNamespacedServiceAsync(Service("before"), "default");
        var list = await Client.CoreV1.ListNamespacedServiceAsync("default");

        // changes made before the watch starts are replayed from the list's resourceVersion
        await Client.CoreV1.CreateNamespacedServiceAsync(Service("web"), "default");
        await using var watch = WatchServices(list.Metadata.ResourceVersion);
        var added = await watch.NextChangeAsync();
        Assert.Equal((WatchEventType.Added, "web"), (added.Type, added.Object.Metadata.Name));

        var current = await Client.CoreV1.ReadNamespacedServiceAsync("web", "default");
        current.Spec.Ports[0].Port = 81;
        var replaced = await Client.CoreV1.ReplaceNamespacedServiceAsync(current, "web", "default");
        await Client.CoreV1.DeleteNamespacedServiceAsync("web", "default");

        var modified = await watch.NextChangeAsync();
        Assert.Equal(WatchEventType.Modified, modified.Type);
        Assert.Equal(81, modified.Object.Spec.Ports[0].Port);
        Assert.Equal(replaced.Metadata.ResourceVersion, modified.Object.Metadata.ResourceVersion);
        var deleted = await watch.NextChangeAsync();
        Assert.Equal((WatchEventType.Deleted, "web"), (deleted.Type, deleted.Object.Metadata.Name));
        Assert.True(long.Parse(deleted.Object.Metadata.ResourceVersion, System.Globalization.CultureInfo.InvariantCulture) > long.Parse(replaced.Metadata.ResourceVersion, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains(Server.Requests, r => r.Verb == "watch" && r.Resource == "services" && r.Namespace == "default");
    }

    [Fact]
    public async Task FakeApiServer_watch_without_resource_version_starts_with_synthetic_adds()
    {
        Server.ApplyYaml("""
            apiVersion: v1
            kind: Service
            metadata: {name: one, labels: {app: x}}
            spec: {ports: [{port: 80}]}
            ---
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: two, labels: {app: y}}
            spec: {ports: [{port: 80}]}
            """, "default");
        await using var watch = WatchServices(null, labelSelector: "app=x");
        var first = await watch.NextChangeAsync();
        Assert.Equal((WatchEventType.Added, "one"), (first.Type, first.Object.Metadata.Name));

        // relabelled out of the selector: DELETED for this watch; back in: ADDED
        await Client.CoreV1.PatchNamespacedServiceAsync(new V1Patch("""{"metadata":{"labels":{"app":"z"}}}""", V1Patch.PatchType.MergePatch), "one", "default");
        Assert.Equal(WatchEventType.Deleted, (await watch.NextChangeAsync()).Type);
        await Client.CoreV1.PatchNamespacedServiceAsync(new V1Patch("""{"metadata":{"labels":{"app":"x"}}}""", V1Patch.PatchType.MergePatch), "two", "default");
        var two = await watch.NextChangeAsync();
        Assert.Equal((WatchEventType.Added, "two"), (two.Type, two.Object.Metadata.Name));
    }

    [Fact]
    public async Task FakeApiServer_watch_sends_bookmarks()
    {
        var list = await Client.CoreV1.ListNamespacedServiceAsync("default");
        await using var watch = WatchServices(list.Metadata.ResourceVersion, bookmarks: true);
        var bookmark = await watch.NextAsync();
        Assert.Equal(WatchEventType.Bookmark, bookmark.Type);
        Assert.Equal(list.Metadata.ResourceVersion, bookmark.Object.Metadata.ResourceVersion);

        await Client.CoreV1.CreateNamespacedServiceAsync(Service("web"), "default");
        var added = await watch.NextChangeAsync();
        var next = await watch.NextAsync();
        Assert.Equal(WatchEventType.Bookmark, next.Type);
        Assert.Equal(added.Object.Metadata.ResourceVersion, next.Object.Metadata.ResourceVersion);
    }

    [Fact]
    public async Task FakeApiServer_compact_sends_410_to_open_watches_and_to_watches_from_old_versions()
    {
        var list = await Client.CoreV1.ListNamespacedServiceAsync("default");
        await using var open = WatchServices(list.Metadata.ResourceVersion);
        await Client.CoreV1.CreateNamespacedServiceAsync(Service("web"), "default");
        Assert.Equal(WatchEventType.Added, (await open.NextChangeAsync()).Type);

        Server.Compact();
        var midStream = Assert.IsType<KubernetesException>(await open.ErrorAsync());
        Assert.Equal(410, midStream.Status.Code);
        Assert.Equal("Expired", midStream.Status.Reason);
        await open.EndedAsync();

        await using var stale = WatchServices(list.Metadata.ResourceVersion);
        var gone = Assert.IsType<KubernetesException>(await stale.ErrorAsync());
        Assert.Equal(410, gone.Status.Code);
        Assert.StartsWith("too old resource version", gone.Status.Message, StringComparison.Ordinal);
        await stale.EndedAsync();

        // from the current version, all is well again
        var fresh = await Client.CoreV1.ListNamespacedServiceAsync("default");
        await using var resumed = WatchServices(fresh.Metadata.ResourceVersion);
        await Client.CoreV1.CreateNamespacedServiceAsync(Service("web2"), "default");
        Assert.Equal("web2", (await resumed.NextChangeAsync()).Object.Metadata.Name);
    }

    [Fact]
    public async Task FakeApiServer_custom_object_watch_and_timeout_seconds()
    {
        var list = JsonSerializer.SerializeToNode(await Client.CustomObjects.ListNamespacedCustomObjectAsync(Gw, "v1", "apps", "tcproutes"))!;
        var rv = list["metadata"]!["resourceVersion"]!.ToString();
        await using var watch = new WatchProbe<object>((onError, ct) => Client.CustomObjects.WatchListNamespacedCustomObjectAsync(
            Gw, "v1", "apps", "tcproutes", resourceVersion: rv, timeoutSeconds: 2, onError: onError, cancellationToken: ct));
        Server.ApplyYaml("""
            apiVersion: gateway.networking.k8s.io/v1
            kind: TCPRoute
            metadata: {name: r1}
            spec: {rules: []}
            """, "apps");
        var added = await watch.NextChangeAsync();
        Assert.Equal(WatchEventType.Added, added.Type);
        Assert.Equal("r1", ((JsonElement)added.Object).GetProperty("metadata").GetProperty("name").GetString());
        await watch.EndedAsync(TimeSpan.FromSeconds(10)); // the server ends it after timeoutSeconds
    }

    [Fact]
    public async Task FakeApiServer_dropped_watches_end_and_stalled_watches_stay_silent()
    {
        var list = await Client.CoreV1.ListNamespacedServiceAsync("default");
        await using (var dropped = WatchServices(list.Metadata.ResourceVersion))
        {
            await WaitForWatchAsync(1);
            Server.DropWatches();
            await dropped.EndedAsync();
        }

        await using var stalled = WatchServices(list.Metadata.ResourceVersion, bookmarks: true);
        Assert.Equal(WatchEventType.Bookmark, (await stalled.NextAsync()).Type);
        Server.StallWatches(true);
        await Task.Delay(400); // bookmarks written before the stall, possibly still in flight
        stalled.Drain();
        await Client.CoreV1.CreateNamespacedServiceAsync(Service("web"), "default");

        // Over 1.5 s, five bookmarks (every 300 ms) and the change would come if the stall did nothing. A bookmark the
        // server wrote before the stall may still arrive late on a busy machine; nothing written after it may.
        await Task.Delay(1500);
        var whileStalled = stalled.Drain();
        Assert.DoesNotContain(whileStalled, static e => e.Type != WatchEventType.Bookmark);
        Assert.True(whileStalled.Count <= 1, $"{whileStalled.Count} bookmarks arrived while the watch was stalled");
        Assert.False(stalled.Ended.IsCompleted);
        Server.StallWatches(false);
        Assert.Equal("web", (await stalled.NextChangeAsync()).Object.Metadata.Name);
    }

    private async Task WaitForWatchAsync(int count)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (Server.Requests.Count(r => r.Verb == "watch") < count)
        {
            Assert.True(DateTime.UtcNow < until, "the watch did not start");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task FakeApiServer_leader_election_with_leases_fails_over()
    {
        using var clientA = Server.CreateClient();
        using var clientB = Server.CreateClient();
        LeaderElectionConfig Config(IKubernetes client, string id) => new(new LeaseLock(client, "default", "fsm-gateway", id))
        {
            LeaseDuration = TimeSpan.FromSeconds(2),
            RenewDeadline = TimeSpan.FromSeconds(1),
            RetryPeriod = TimeSpan.FromMilliseconds(200),
        };
        var leaders = System.Threading.Channels.Channel.CreateUnbounded<string>();
        using var a = new LeaderElector(Config(clientA, "a"));
        using var b = new LeaderElector(Config(clientB, "b"));
        a.OnStartedLeading += () => leaders.Writer.TryWrite("a");
        b.OnStartedLeading += () => leaders.Writer.TryWrite("b");
        using var stopA = new CancellationTokenSource();
        using var stopB = new CancellationTokenSource();
        var runA = Task.Run(() => a.RunUntilLeadershipLostAsync(stopA.Token));
        var runB = Task.Run(() => b.RunUntilLeadershipLostAsync(stopB.Token));

        using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var first = await leaders.Reader.ReadAsync(guard.Token);
        var lease = await Client.CoordinationV1.ReadNamespacedLeaseAsync("fsm-gateway", "default");
        Assert.Equal(first, lease.Spec.HolderIdentity);

        // only one leads while the leader renews
        using (var quiet = new CancellationTokenSource(TimeSpan.FromSeconds(1.5)))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await leaders.Reader.ReadAsync(quiet.Token));
        }

        // the leader stops: the other takes over once the lease expires
        await (first == "a" ? stopA : stopB).CancelAsync();
        var second = await leaders.Reader.ReadAsync(guard.Token);
        Assert.NotEqual(first, second);
        lease = await Client.CoordinationV1.ReadNamespacedLeaseAsync("fsm-gateway", "default");
        Assert.Equal(second, lease.Spec.HolderIdentity);

        await stopA.CancelAsync();
        await stopB.CancelAsync();
        foreach (var run in new[] { runA, runB })
        {
            try
            {
                await run.WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    [Fact]
    public async Task FakeApiServer_stopped_refuses_connections_and_restarted_serves_the_same_objects_on_the_same_port_with_410_for_old_versions()
    {
        await Client.CoreV1.CreateNamespacedServiceAsync(Service("kept"), "default");
        var list = await Client.CoreV1.ListNamespacedServiceAsync("default");
        await using var open = WatchServices(list.Metadata.ResourceVersion);
        await Client.CoreV1.CreateNamespacedServiceAsync(Service("web"), "default");
        Assert.Equal(WatchEventType.Added, (await open.NextChangeAsync()).Type);
        var url = Server.Url;

        await Server.StopAsync();
        Assert.False(Server.IsRunning);
        await open.EndedAsync();
        await Assert.ThrowsAsync<HttpRequestException>(() => Client.CoreV1.ListNamespacedServiceAsync("default"));

        // Changed while down (as by another API server replica); seen once it serves again.
        Server.ApplyYaml("apiVersion: v1\nkind: Service\nmetadata: {name: while-down, namespace: default}\nspec: {ports: [{port: 80}]}\n");
        await Server.RestartAsync();
        Assert.True(Server.IsRunning);
        Assert.Equal(url, Server.Url);
        var names = (await Client.CoreV1.ListNamespacedServiceAsync("default")).Items.Select(i => i.Metadata.Name).Order();
        Assert.Equal(["kept", "web", "while-down"], names);

        // The watch history did not survive the restart: resuming from before it is 410 Gone.
        await using var stale = WatchServices(list.Metadata.ResourceVersion);
        var gone = Assert.IsType<KubernetesException>(await stale.ErrorAsync());
        Assert.Equal(410, gone.Status.Code);
    }

    [Fact]
    public async Task FakeApiServer_dispose_ends_open_watches_quickly()
    {
        var server = await FakeApiServer.StartAsync();
        using var client = server.CreateClient();
        await using var watch = new WatchProbe<V1Service>((onError, ct) => client.CoreV1.WatchListNamespacedServiceAsync("default", onError: onError, cancellationToken: ct));
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!server.Requests.Any(r => r.Verb == "watch"))
        {
            Assert.True(DateTime.UtcNow < until);
            await Task.Delay(20);
        }
        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        await server.DisposeAsync();
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(4), $"dispose took {stopwatch.Elapsed}");
        await watch.EndedAsync();
    }

    [Fact]
    public async Task FakeApiServer_watch_list_ends_initial_events_with_an_annotated_bookmark()
    {
        await Client.CoreV1.CreateNamespacedServiceAsync(Service("one"), "default");
        await Client.CoreV1.CreateNamespacedServiceAsync(Service("two"), "default");
        using var http = new HttpClient { BaseAddress = Server.Url };
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var response = await http.GetAsync(
            new Uri("api/v1/namespaces/default/services?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&fieldSelector=metadata.name%3Dtwo", UriKind.Relative),
            HttpCompletionOption.ResponseHeadersRead, cts.Token);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));
        var first = System.Text.Json.Nodes.JsonNode.Parse((await reader.ReadLineAsync(cts.Token))!)!;
        Assert.Equal("ADDED", first["type"]!.ToString());
        Assert.Equal("two", first["object"]!["metadata"]!["name"]!.ToString());
        var end = System.Text.Json.Nodes.JsonNode.Parse((await reader.ReadLineAsync(cts.Token))!)!;
        Assert.Equal("BOOKMARK", end["type"]!.ToString());
        Assert.Equal("true", end["object"]!["metadata"]!["annotations"]!["k8s.io/initial-events-end"]!.ToString());
    }
}
