using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Reactive.Disposables;
using System.Reactive.Linq;
using FsmGateway.Configuration;
using Google.Protobuf;
using FsmGateway.Resources;
using FsmGateway.Routing;
using FsmGateway.Transport.ControlPlane;
using FsmGateway.Transport.Hosting;
using FsmGateway.Transport.Tests.TestSupport;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using P = FsmGateway.Transport.ControlPlane.Protocol;

namespace FsmGateway.Transport.Tests.ControlPlane;

/// <summary>
/// The data plane's config source on the controller stream, against a fake controller on a real HTTP/2 socket: the
/// full set arrives as one reset, changes as upserts and deletes; a dropped stream says nothing to the pipeline (the
/// last config keeps serving) and is connected again after a jittered back-off on the injected clock, to the next
/// address; bind outcomes are reported on the stream, at once on every new connection.
/// </summary>
public sealed class ControllerStreamSourceTests
{
    private static readonly ResourceKey GatewayKey = new(ResourceKind.Gateway, "apps", "gw");

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Events_FullSetThenChanges_OneResetThenUpsertsAndDeletes()
    {
        await using var controller = await FakeController.StartAsync();
        controller.FullSet.Add(Batch(1, reset: true, synced: false, Gateway(8000)));
        controller.FullSet.Add(Batch(1, reset: true, synced: true, Service("a"), Service("b")));
        var (source, _, _) = Source([controller.Address]);
        var events = new ConcurrentQueue<ConfigEvent>();
        using var subscription = source.Events.Subscribe(events.Enqueue);

        Assert.True(await Guard.Eventually(() => !events.IsEmpty), "the full set arrives");
        var reset = Assert.IsType<ConfigEvent.SourceReset>(Assert.Single(events));
        Assert.Equal(["Gateway apps/gw", "Service apps/a", "Service apps/b"], reset.Resources.Select(r => r.Key.ToString()).Order(StringComparer.Ordinal));
        var hello = Assert.Single(controller.Hellos);
        Assert.Equal(("apps", "gw", "test-pod", 1u), (hello.GatewayNamespace, hello.GatewayName, hello.DataPlaneId, hello.ProtocolVersion));

        var changed = Batch(2, reset: false, synced: false, Service("a", port: 81));
        changed.Deletes.Add(ModelCodec.Encode(new ResourceKey(ResourceKind.Service, "apps", "b")));
        controller.Push(changed);

        Assert.True(await Guard.Eventually(() => events.Count == 3), "the change arrives as an upsert and a delete");
        var upserted = Assert.IsType<ConfigEvent.Upserted>(events.ElementAt(1));
        Assert.Equal(81, ((Service)upserted.Resource).Ports[0].Port);
        Assert.Equal(new ResourceKey(ResourceKind.Service, "apps", "b"), Assert.IsType<ConfigEvent.Deleted>(events.ElementAt(2)).Key);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Events_StreamDropped_KeepsQuietUntilTheBackoffThenReconnectsAndResyncsAsAnEqualReset()
    {
        await using var controller = await FakeController.StartAsync();
        controller.FullSet.Add(Batch(1, reset: true, synced: true, Gateway(8000)));
        var (source, time, _) = Source([controller.Address]);
        var events = new ConcurrentQueue<ConfigEvent>();
        var ended = false;
        using var subscription = source.Events.Subscribe(events.Enqueue, _ => ended = true, () => ended = true);
        Assert.True(await Guard.Eventually(() => events.Count == 1), "the first full set arrives");

        await controller.DropAsync();
        Assert.True(await Guard.Eventually(() => source.Disconnects == 1), "the source sees the stream end");

        // No time passes on the injected clock: no new attempt, and nothing reaches the pipeline (no error, no reset).
        await Task.Delay(500);
        Assert.Single(controller.Hellos);
        Assert.Single(events);
        Assert.False(ended);

        // The first wait is at most the minimum delay (250 ms).
        time.Advance(TimeSpan.FromMilliseconds(250));
        Assert.True(await Guard.Eventually(() => controller.Hellos.Count == 2), "the source connects again once the back-off has passed");
        Assert.True(await Guard.Eventually(() => events.Count == 2), "the new stream's full set arrives");
        var again = Assert.IsType<ConfigEvent.SourceReset>(events.ElementAt(1));
        Assert.Equal(((ConfigEvent.SourceReset)events.First()).Resources.ToList(), again.Resources.ToList());
        Assert.False(ended);

        // Resynced with the same contents, the snapshot does not change: nothing is applied again.
        var snapshot = ConfigSnapshot.Empty.Apply(events.First());
        Assert.Same(snapshot, snapshot.Apply(again));
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Events_FirstAddressRefuses_TheNextAddressIsTriedAfterTheBackoff()
    {
        await using var controller = await FakeController.StartAsync();
        controller.FullSet.Add(Batch(1, reset: true, synced: true, Gateway(8000)));
        var nobody = new Uri($"http://127.0.0.1:{FreePort.Get()}");
        var (source, time, _) = Source([nobody, controller.Address]);
        var events = new ConcurrentQueue<ConfigEvent>();
        using var subscription = source.Events.Subscribe(events.Enqueue);

        Assert.True(await Guard.Eventually(() => source.Disconnects == 1), "the first address refuses");
        Assert.Empty(controller.Hellos);
        Assert.True(
            await Guard.Eventually(() =>
            {
                time.Advance(TimeSpan.FromMilliseconds(50));
                return controller.Hellos.Count == 1;
            }),
            "the second address is tried");
        Assert.True(await Guard.Eventually(() => events.Count == 1), "its full set arrives");
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Reports_BindOutcomesGoToTheController_AtOnceOnEveryNewStreamAndAfterEachApply()
    {
        await using var controller = await FakeController.StartAsync();
        controller.FullSet.Add(Batch(7, reset: true, synced: true, Gateway(8000)));
        var (source, time, state) = Source([controller.Address]);
        using var subscription = source.Events.Subscribe(_ => { });
        Assert.True(await Guard.Eventually(() => controller.Hellos.Count == 1), "connected");

        state.Applied(
            ConfigSnapshot.Empty,
            RouteCompiler.Compile(ConfigSnapshot.Empty),
            new ListenerBindings(ImmutableSortedDictionary<int, BindOutcome>.Empty.Add(8000, BindOutcome.Bound).Add(8001, BindOutcome.Failed("Address already in use")), AssumeBound: false),
            notServing: null);

        Assert.True(await Guard.Eventually(() => !controller.Reports.IsEmpty), "a report follows the apply");
        var report = controller.Reports.Last();
        Assert.Equal(7, report.AppliedRevision);
        Assert.Equal(
            [(8000, P.BindState.Bound, string.Empty), (8001, P.BindState.Failed, "Address already in use")],
            report.Listeners.Select(l => (l.Port, l.State, l.Message)));

        // A controller that restarted knows nothing: the new stream gets the outcomes at once, with no new apply.
        await controller.DropAsync();
        var before = controller.Reports.Count;
        Assert.True(
            await Guard.Eventually(() =>
            {
                time.Advance(TimeSpan.FromMilliseconds(100));
                return controller.Hellos.Count == 2 && controller.Reports.Count > before;
            }),
            "the new stream reports at once");
        Assert.Equal(2, controller.Reports.Last().Listeners.Count);
    }

    /// <summary>
    /// The kubelet renews the projected token file before the token expires: the data plane opens a stream with the new
    /// token, which takes over once synced, and closes the old one cleanly, so no stream ends by its token's expiry and
    /// the pipeline never sees a gap (before, the data plane kept the old stream until the controller ended it).
    /// </summary>
    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Events_TokenFileRenewed_ANewStreamOnTheNewTokenTakesOverAndTheOldOneIsClosed()
    {
        await using var controller = await FakeController.StartAsync();
        controller.FullSet.Add(Batch(1, reset: true, synced: true, Gateway(8000)));
        using var token = await TokenFile.CreateAsync("first\n");
        var (source, time, _) = Source([controller.Address], token.Path);
        var events = new ConcurrentQueue<ConfigEvent>();
        var ended = false;
        using var subscription = source.Events.Subscribe(events.Enqueue, _ => ended = true, () => ended = true);
        Assert.True(await Guard.Eventually(() => events.Count == 1), "the first full set arrives");

        // Unchanged: each check reads the file and opens nothing.
        time.Advance(TimeSpan.FromSeconds(10));
        await Task.Delay(300);
        Assert.Equal(["Bearer first"], controller.Tokens);

        await token.WriteAsync("second\n");
        Assert.True(await Guard.Eventually(() => AdvanceThen(time, () => controller.Tokens.Count == 2)), "a stream is opened with the renewed token");
        Assert.Equal(["Bearer first", "Bearer second"], controller.Tokens);
        Assert.True(await Guard.Eventually(() => controller.ClosedByDataPlane == 1), "the old stream is closed once the new one synced");
        Assert.True(await Guard.Eventually(() => events.Count == 2), "the new stream's full set arrives");
        Assert.Equal(((ConfigEvent.SourceReset)events.First()).Resources.ToList(), Assert.IsType<ConfigEvent.SourceReset>(events.ElementAt(1)).Resources.ToList());
        Assert.Equal(0, source.Disconnects);
        Assert.False(ended);

        // Changes come on the new stream, once each.
        controller.Push(Batch(2, reset: false, synced: false, Service("a")));
        Assert.True(await Guard.Eventually(() => events.Count == 3), "a change arrives on the new stream");
        await Task.Delay(300);
        Assert.Equal(3, events.Count);
        Assert.Equal(2, controller.Hellos.Count);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Events_RenewedTokenRefused_TheOldStreamKeepsDeliveringAndTheTokenIsNotTriedAgain()
    {
        await using var controller = await FakeController.StartAsync();
        controller.FullSet.Add(Batch(1, reset: true, synced: true, Gateway(8000)));
        controller.RefusedTokens["bad"] = true;
        using var token = await TokenFile.CreateAsync("good");
        var (source, time, _) = Source([controller.Address], token.Path);
        var events = new ConcurrentQueue<ConfigEvent>();
        using var subscription = source.Events.Subscribe(events.Enqueue);
        Assert.True(await Guard.Eventually(() => events.Count == 1), "the first full set arrives");

        await token.WriteAsync("bad");
        Assert.True(await Guard.Eventually(() => AdvanceThen(time, () => controller.Tokens.Count == 2)), "the renewed token is tried");
        controller.Push(Batch(2, reset: false, synced: false, Service("a")));
        Assert.True(await Guard.Eventually(() => events.Count == 2), "the old stream still delivers");
        Assert.IsType<ConfigEvent.Upserted>(events.ElementAt(1));
        Assert.Equal(0, source.Disconnects);
        Assert.Equal(0, controller.ClosedByDataPlane);

        for (var i = 0; i < 3; i++)
        {
            time.Advance(TimeSpan.FromSeconds(10));
            await Task.Delay(200);
        }

        Assert.Equal(2, controller.Tokens.Count);
    }

    /// <summary>
    /// A stream on a renewed token that the controller accepts but never syncs is given up after
    /// SyncTimeout with a Warning: the old stream keeps delivering, and the renewed token is tried again
    /// at the next check, which takes over once the controller syncs it (before, the data plane waited on it for as
    /// long as the old stream lived, never trying again).
    /// </summary>
    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Events_RenewedStreamNeverSyncs_GivenUpAfterTheTimeoutWithAWarningTheOldStreamKeepsDeliveringAndTheTokenIsTriedAgain()
    {
        await using var controller = await FakeController.StartAsync();
        controller.FullSet.Add(Batch(1, reset: true, synced: true, Gateway(8000)));
        controller.StalledTokens["slow"] = true;
        using var token = await TokenFile.CreateAsync("good");
        var logger = new RecordingLogger();
        var (source, time, _) = Source([controller.Address], token.Path, logger);
        var events = new ConcurrentQueue<ConfigEvent>();
        using var subscription = source.Events.Subscribe(events.Enqueue);
        Assert.True(await Guard.Eventually(() => events.Count == 1), "the first full set arrives");

        await token.WriteAsync("slow");
        Assert.True(await Guard.Eventually(() => AdvanceThen(time, () => controller.Tokens.Count == 2)), "the renewed token is tried");
        Assert.Equal(0, controller.StalledEnded);

        // The timeout (30 s) passes on the injected clock: the stalled stream is given up, with a Warning.
        Assert.True(await Guard.Eventually(() => AdvanceThen(time, () => controller.StalledEnded == 1)), "the stream that never synced is given up");
        Assert.True(await Guard.Eventually(() => logger.Entries.Any(e => e.Level == Microsoft.Extensions.Logging.LogLevel.Warning)), "a warning is logged");
        var warning = Assert.Single(logger.Entries, e => e.Level == Microsoft.Extensions.Logging.LogLevel.Warning);
        Assert.Contains("did not sync within 30 s (TimeoutException", warning.Message, StringComparison.Ordinal);
        Assert.Contains("keeping the current stream", warning.Message, StringComparison.Ordinal);
        controller.Push(Batch(2, reset: false, synced: false, Service("a")));
        Assert.True(await Guard.Eventually(() => events.Count == 2), "the old stream still delivers");
        Assert.Equal(0, source.Disconnects);
        Assert.Equal(0, controller.ClosedByDataPlane);

        // Tried again at a later check; once the controller syncs it, it takes over and the old stream is closed.
        controller.StalledTokens.Clear();
        Assert.True(await Guard.Eventually(() => AdvanceThen(time, () => controller.Tokens.Count >= 3 && controller.ClosedByDataPlane == 1)), "the renewed token is tried again and takes over");
        Assert.Equal("Bearer slow", controller.Tokens.Last());
        Assert.Equal(0, source.Disconnects);
    }

    /// <summary>
    /// The stream a data plane runs on is given up too when it does not sync within SyncTimeout (a controller that
    /// accepts it and then sends nothing, which pings do not catch): the data plane connects again, to the next
    /// address, and is served there. Before, only a stream on a renewed token had that timeout, and this one waited for
    /// ever.
    /// </summary>
    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Events_StreamNeverSyncs_GivenUpAfterTheTimeoutAndTheNextControllerServes()
    {
        await using var stalled = await FakeController.StartAsync();
        await using var healthy = await FakeController.StartAsync();
        stalled.StalledTokens["t"] = true;
        healthy.FullSet.Add(Batch(1, reset: true, synced: true, Gateway(8000)));
        using var token = await TokenFile.CreateAsync("t");
        var logger = new RecordingLogger();
        var (source, time, _) = Source([stalled.Address, healthy.Address], token.Path, logger);
        var events = new ConcurrentQueue<ConfigEvent>();
        using var subscription = source.Events.Subscribe(events.Enqueue);
        Assert.True(await Guard.Eventually(() => stalled.Hellos.Count == 1), "the first controller is asked");
        await Task.Delay(300);
        Assert.Empty(events);

        Assert.True(await Guard.Eventually(() => AdvanceThen(time, () => events.Count == 1)), "given up on the stalled controller, served by the next");
        Assert.Equal(1, stalled.StalledEnded);
        Assert.Equal(1, source.Disconnects);
        Assert.Contains(logger.Entries, e => e.Message.Contains("no synced full set from the controller within 30 s", StringComparison.Ordinal));
    }

    /// <summary>Moves the clock a second (the token file check's timer may be re-armed a moment after it fired), then checks.</summary>
    private static bool AdvanceThen(FakeTimeProvider time, Func<bool> condition)
    {
        time.Advance(TimeSpan.FromSeconds(1));
        return condition();
    }

    [Fact]
    public void ReconnectBackoff_DoublesFromTheMinimumToTheMaximum_EachWaitInTheUpperHalf()
    {
        var min = TimeSpan.FromMilliseconds(250);
        var max = TimeSpan.FromSeconds(10);
        var low = new ReconnectBackoff(min, max, () => 0);
        var high = new ReconnectBackoff(min, max, () => 1);

        var lows = Enumerable.Range(0, 8).Select(_ => low.Next().TotalMilliseconds).ToList();
        var highs = Enumerable.Range(0, 8).Select(_ => high.Next().TotalMilliseconds).ToList();

        Assert.Equal([250, 500, 1000, 2000, 4000, 8000, 10000, 10000], highs);
        Assert.Equal([125, 250, 500, 1000, 2000, 4000, 5000, 5000], lows);
        high.Reset();
        Assert.Equal(250, high.Next().TotalMilliseconds);
    }

    [Fact]
    public void ModelCodec_EveryKind_RoundTripsToAnEqualObject()
    {
        var meta = new ObjectMeta("apps", "x")
        {
            Generation = 3,
            CreationTimestamp = new DateTimeOffset(2026, 11, 30, 1, 2, 3, TimeSpan.Zero),
            Labels = ImmutableSortedDictionary.CreateRange(StringComparer.Ordinal, [KeyValuePair.Create("b", "2"), KeyValuePair.Create("a", "1")]),
            Uid = "uid",
            ResourceVersion = "42",
        };
        var target = new PolicyTargetReference("", "Service", "svc") { Namespace = "other", SectionName = "s" };
        Resource[] all =
        [
            new GatewayClass(meta with { Namespace = string.Empty }, "ctl") { ParametersRef = "p" },
            new Gateway(meta, "fsm", [new Listener("l", 80, "TCP") { Hostname = "h", HasTls = true, AllowedRoutes = new AllowedRoutes(FromNamespaces.Selector, new LabelSelector(ImmutableSortedDictionary<string, string>.Empty.Add("k", "v"), [new LabelSelectorRequirement("e", LabelSelectorOperator.NotIn, ["x"])]), [new RouteGroupKind("g", "TCPRoute")]) }, new Listener("m", 81, "TCP")]) { Addresses = [new GatewayAddress("IPAddress", "10.0.0.1")] },
            new TcpRoute(meta, [new ParentReference(null, "Gateway", "ns", "gw", "l", 80), new ParentReference(null, null, null, "gw", null, null)], [new TcpRouteRule([new BackendReference("", "Service", "ns", "svc", 80, 3), new BackendReference(null, null, null, "b", null, null)]) { Name = "r" }]) { ApiVersion = "gateway.networking.k8s.io/v1alpha2" },
            new ReferenceGrant(meta, [new ReferenceGrantFrom("g", "TCPRoute", "ns")], [new ReferenceGrantTo("", "Service", "s"), new ReferenceGrantTo("", "Service", null)]),
            new Service(meta, [new ServicePort("p", 80, "TCP"), new ServicePort(null, 81, "UDP")]) { Type = "LoadBalancer" },
            new EndpointSlice(meta, "svc", "IPv4", [new EndpointPort(null, 80, "TCP"), new EndpointPort("n", null, "TCP")], [new Endpoint(["10.0.0.1"], true), new Endpoint(["10.0.0.2"], null)]),
            new EndpointSlice(meta, null, "IPv6", [], []),
            new KubernetesNamespace(meta with { Namespace = string.Empty }),
            new HealthCheckPolicy(meta, [target], [new PortHealthCheck(80, new FsmHealthCheck(TimeSpan.FromSeconds(3), 2, null, "/h", [new HealthCheckMatch([200, 204], "ok", [new HttpHeaderValue("a", "b")])])), new PortHealthCheck(81, null)], new FsmHealthCheck(TimeSpan.FromSeconds(1), 1, TimeSpan.FromSeconds(9), null, [])),
            new BackendLbPolicy(meta, [target], "RoundRobin") { HasSessionPersistence = true },
            new BackendLbPolicy(meta, [], null),
            new BackendTrafficPolicy(meta, [target])
            {
                LoadBalancer = new LoadBalancerSpec("ConsistentHash", "SourceIP", 65537) { HasSlowStart = true },
                ActiveHealthCheck = new ActiveHealthCheckSpec("TCP") { Timeout = TimeSpan.FromSeconds(1), Interval = TimeSpan.FromSeconds(2), UnhealthyThreshold = 3, HealthyThreshold = 1, HttpPath = "/p", ExpectedStatuses = [200], TcpSend = new HealthCheckPayload("Binary", null, new EquatableArray<byte>([1, 2, 0])), TcpReceive = new HealthCheckPayload("Text", "pong", null) },
                PassiveHealthCheck = new PassiveHealthCheckSpec(5, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(30), 50),
                PanicThreshold = 40,
                MaxConnections = 100,
                MaxConnectionsPerEndpoint = 10,
                ProxyProtocolVersion = "V2",
                TcpKeepalive = new TcpKeepaliveSpec(3, TimeSpan.FromMinutes(1), null),
                ConnectTimeout = TimeSpan.FromMilliseconds(1500),
            },
            new BackendTrafficPolicy(meta, []),
            new ListenerFilter(meta, "IPRestriction", 1, "Listener", [new PortTargetReference("g", "Gateway", "gw", 80)]) { DefinitionRef = new LocalObjectReference("g", "FilterDefinition", "d"), ConfigRef = new LocalObjectReference("g", "IPRestriction", "c") },
            new FsmFilter(meta, "ConcurrencyLimit") { ConfigRef = new LocalObjectReference("g", "ConcurrencyLimit", "c") },
            new ConcurrencyLimitConfig(meta, 5),
            new IPRestrictionConfig(meta, ["10.0.0.0/8"], ["10.1.0.0/16", "10.2.0.0/16"]),
            new RouteRuleFilterPolicy(meta, [target], [new FilterReference("g", "Filter", "f", 2)]),
            new RateLimitPolicy(meta, target, 1000, [new PortRateLimit(80, null), new PortRateLimit(81, 5)]) { HttpFields = ["h"] },
            new RateLimitPolicy(meta, target, null, []),
            new ClientTrafficPolicy(meta, [target])
            {
                ProxyProtocol = new ProxyProtocolSpec(true),
                TcpKeepalive = new TcpKeepaliveSpec(null, null, TimeSpan.FromSeconds(5)),
                IdleTimeout = TimeSpan.FromMinutes(1),
                ConnectionInspectionTimeout = TimeSpan.FromSeconds(2),
                HalfClosedTimeout = TimeSpan.FromSeconds(3),
                HasTlsHandshakeTimeout = true,
                ConnectionLimit = new ConnectionLimitSpec(10, TimeSpan.FromSeconds(1)),
                BufferLimit = 4096,
                MaxConnectionDuration = TimeSpan.FromHours(1),
                HasMaxAcceptPerSocketEvent = true,
                UploadBandwidth = new BandwidthLimitSpec(1000, 2000),
                DownloadBandwidth = new BandwidthLimitSpec(3000, null),
                UnsupportedFields = ["spec.x"],
            },
            new ClientTrafficPolicy(meta, []),
        ];

        Assert.Equal(Enum.GetValues<ResourceKind>().Order(), all.Select(r => r.Kind).Distinct().Order());
        foreach (var resource in all)
        {
            var wire = P.Resource.Parser.ParseFrom(ModelCodec.Encode(resource).ToByteArray());
            Assert.Equal(resource, ModelCodec.Decode(wire));
            Assert.Equal(resource.Key, ModelCodec.Decode(ModelCodec.Encode(resource.Key)));
        }
    }

    [Fact]
    public void ModelCodec_KindThisSideDoesNotKnow_DecodesToNullToBeSkipped()
    {
        var fromNewerController = new P.Resource { Metadata = new P.ObjectMeta { Namespace = "apps", Name = "x" } };

        Assert.Null(ModelCodec.Decode(fromNewerController));
        Assert.Null(ModelCodec.Decode(new P.ResourceKey { Kind = (P.ResourceKind)999, Namespace = "apps", Name = "x" }));
    }

    private static (ControllerStreamSource Source, FakeTimeProvider Time, GatewayRuntimeState State) Source(IReadOnlyList<Uri> addresses, string? tokenFile = null, Microsoft.Extensions.Logging.ILogger? logger = null)
    {
        var options = new ControllerStreamOptions { Gateway = GatewayKey, DataPlaneId = "test-pod", TokenFile = tokenFile };
        foreach (var address in addresses)
        {
            options.Addresses.Add(address);
        }

        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var state = new GatewayRuntimeState();

        // The largest jitter, so a wait is exactly the back-off's ceiling (250 ms first).
        return (new ControllerStreamSource(options, state, time, logger ?? NullLogger.Instance, () => 1, handler: null), time, state);
    }

    /// <summary>A projected token file in a directory of its own (the kubelet renews it in place), deleted with it.</summary>
    private sealed class TokenFile : IDisposable
    {
        private readonly DirectoryInfo _directory;

        private TokenFile(DirectoryInfo directory) => _directory = directory;

        public string Path => System.IO.Path.Combine(_directory.FullName, "token");

        public static async Task<TokenFile> CreateAsync(string token)
        {
            var file = new TokenFile(Directory.CreateTempSubdirectory("fsm-token-"));
            await file.WriteAsync(token);
            return file;
        }

        public Task WriteAsync(string token) => File.WriteAllTextAsync(Path, token);

        public void Dispose() => _directory.Delete(recursive: true);
    }

    private sealed class RecordingLogger : Microsoft.Extensions.Logging.ILogger
    {
        private readonly ConcurrentQueue<(Microsoft.Extensions.Logging.LogLevel Level, string Message)> _entries = new();

        public IReadOnlyList<(Microsoft.Extensions.Logging.LogLevel Level, string Message)> Entries => [.. _entries];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _entries.Enqueue((logLevel, formatter(state, exception)));
    }

    private static P.ConfigBatch Batch(long revision, bool reset, bool synced, params Resource[] upserts)
    {
        var batch = new P.ConfigBatch { Revision = revision, Reset = reset, Synced = synced };
        batch.Upserts.AddRange(upserts.Select(ModelCodec.Encode));
        return batch;
    }

    private static Gateway Gateway(int port) => new(new ObjectMeta("apps", "gw"), "fsm", [new Listener("l", port, "TCP")]);

    private static Service Service(string name, int port = 80) => new(new ObjectMeta("apps", name), [new ServicePort(null, port, "TCP")]);
}
