using System.Collections.Immutable;
using System.Reactive.Subjects;
using System.Threading.Channels;
using FsmGateway.Configuration;
using FsmGateway.Host.ControlPlane;
using FsmGateway.Kubernetes;
using FsmGateway.Resources;
using FsmGateway.Routing;
using FsmGateway.Testing;
using FsmGateway.Transport.ControlPlane.Protocol;
using FsmGateway.Transport.Hosting;
using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using BindState = FsmGateway.Transport.ControlPlane.Protocol.BindState;
using GatewayClass = FsmGateway.Resources.GatewayClass;
using Listener = FsmGateway.Resources.Listener;
using ObjectMeta = FsmGateway.Resources.ObjectMeta;
using Resource = FsmGateway.Resources.Resource;
using ResourceKey = FsmGateway.Resources.ResourceKey;
using ResourceKind = FsmGateway.Resources.ResourceKind;

namespace FsmGateway.Host.Tests.ControlPlane;

/// <summary>
/// The controller's end of the config stream (<see cref="ConfigStreamService"/>) against data planes that misbehave,
/// in process on an in-memory duplex with an injected clock: a stream must start with a Hello within the deadline, may
/// send only Reports after it, and what its reports can put into the shared reports (and so into other Gateways'
/// status) is bounded and rate-limited.
/// </summary>
public sealed class ConfigStreamServiceTests : IDisposable
{
    private static readonly ResourceKey Gateway = new(ResourceKind.Gateway, "apps", "gw");
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(10);

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 30, 22, 0, 0, TimeSpan.Zero));
    private readonly Subject<ConfigSnapshot> _applied = new();
    private readonly FakeExchange _exchange = new();
    private readonly DataPlaneReports _reports;
    private readonly GatewayClosureFeed _closures;
    private readonly StoppableLifetime _lifetime = new();
    private readonly ConfigStreamService _service;
    private readonly IDisposable _following;
    private volatile ListenerBindings? _latest;

    public ConfigStreamServiceTests()
    {
        _reports = new DataPlaneReports(provisions: true, _exchange, time: _time);
        _closures = new GatewayClosureFeed(_applied, Options.Create(new FsmGatewayOptions { Mode = GatewayMode.Controller }), Options.Create(new GatewayControllerOptions()), NullLogger<GatewayClosureFeed>.Instance);
        _service = new ConfigStreamService(_closures, _reports, new AnyDataPlane(), Options.Create(new ConfigStreamServerOptions { Identity = "test" }), _lifetime, _time, NullLogger<ConfigStreamService>.Instance);
        _following = _reports.Bindings.Subscribe(bindings => _latest = bindings);
        _applied.OnNext(ConfigSnapshot.From(Cluster()));
    }

    public void Dispose()
    {
        _following.Dispose();
        _closures.Dispose();
        _reports.Dispose();
        _lifetime.Dispose();
        _applied.Dispose();
    }

    [Fact]
    public async Task StreamClosedBeforeHello_IsInvalidArgument()
    {
        var plane = new Plane();
        plane.Complete();

        var error = await Assert.ThrowsAsync<RpcException>(() => Subscribe(plane));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Empty(plane.Received);
    }

    [Fact]
    public async Task FirstMessageNotAHello_IsInvalidArgument()
    {
        var plane = new Plane();
        plane.Send(new DataPlaneMessage { Report = new Report() });

        var error = await Assert.ThrowsAsync<RpcException>(() => Subscribe(plane));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Equal(0, _reports.Connected);
    }

    [Fact]
    public async Task NoHelloWithinTheDeadline_EndsTheStreamAsDeadlineExceeded()
    {
        var plane = new Plane();
        var call = Subscribe(plane);
        await Task.Delay(50);
        Assert.False(call.IsCompleted, "the stream waits for its Hello");

        // Before: the first read had no deadline, so a caller that said nothing held its stream for ever.
        _time.Advance(TimeSpan.FromSeconds(9));
        await Task.Delay(50);
        Assert.False(call.IsCompleted, "not before the deadline");
        _time.Advance(TimeSpan.FromSeconds(1));
        var error = await Assert.ThrowsAsync<RpcException>(() => call.WaitAsync(Within));

        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        Assert.Equal(0, _reports.Connected);
    }

    [Fact]
    public async Task SecondHello_EndsTheStreamAsInvalidArgument_AndItsDataPlaneIsDisconnected()
    {
        var (plane, call) = await ConnectAsync("dp-0");

        // Before: any message that was not a Report was skipped.
        plane.Send(Hello("dp-0"));
        var error = await Assert.ThrowsAsync<RpcException>(() => call.WaitAsync(Within));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Equal(0, _reports.Connected);
    }

    [Fact]
    public async Task MessageOfAnUnknownKind_IsIgnored_AsTheCompatibilityRulesSay()
    {
        var (plane, call) = await ConnectAsync("dp-0");

        plane.Send(new DataPlaneMessage());
        plane.Send(Report((9000, BindState.Bound, string.Empty)));
        await Eventually(() => Outcomes().GetValueOrDefault(9000)?.State == Routing.BindState.Bound);

        Assert.False(call.IsCompleted);
        plane.Complete();
        await call.WaitAsync(Within);
    }

    [Fact]
    public async Task Report_OnlyTheGatewaysListenerPortsCount_AndMessageAndIdAreBounded()
    {
        var longId = new string('p', 1000);
        var (plane, call) = await ConnectAsync(longId);

        // 9000 and 9001 are the Gateway's listeners; 9999, 0, -1 and 70000 are not (nor ports); the failure message is 1 MB.
        var huge = new string('x', 1_000_000);
        plane.Send(Report((9000, BindState.Bound, string.Empty), (9001, BindState.Failed, huge), (9999, BindState.Bound, string.Empty), (0, BindState.Bound, string.Empty), (-1, BindState.Failed, huge), (70000, BindState.Bound, string.Empty)));
        await Eventually(() => Outcomes().Count > 0);

        var outcomes = Outcomes();
        Assert.Equal(new[] { 9000, 9001 }, outcomes.Keys);
        Assert.Equal(Routing.BindState.Failed, outcomes[9001].State);
        Assert.Equal(StreamReportGate.MaxMessageLength, outcomes[9001].Message!.Length);
        Assert.EndsWith("…", outcomes[9001].Message, StringComparison.Ordinal);

        // What this replica shares (the Lease annotation) is as bounded: the id cut to a DNS name's length, no foreign port.
        var shared = Assert.Single(DataPlaneReports.Decode(_exchange.Published.Last()));
        Assert.Equal(ConfigStreamService.MaxDataPlaneIdLength, shared.DataPlane.Length);
        Assert.Equal(new[] { 9000, 9001 }, shared.Reported!.Keys);
        Assert.True(_exchange.Published.Last().Length < 2_000, $"the shared reports are {_exchange.Published.Last().Length} characters");

        plane.Complete();
        await call.WaitAsync(Within);
    }

    [Fact]
    public async Task ReportOfAPortTheControllerLearnsLater_CountsOnceTheGatewayHasTheListener()
    {
        var (plane, call) = await ConnectAsync("dp-0");

        // A data plane whose config came from a replica ahead of this one reports a listener this one does not know yet.
        plane.Send(Report((9000, BindState.Bound, string.Empty), (9002, BindState.Bound, string.Empty)));
        await Eventually(() => Outcomes().Count > 0);
        Assert.Equal(new[] { 9000 }, Outcomes().Keys);

        _applied.OnNext(ConfigSnapshot.From(Cluster(9000, 9001, 9002)));
        await Eventually(() =>
        {
            _time.Advance(TimeSpan.FromMilliseconds(100));
            return Outcomes().ContainsKey(9002);
        });

        plane.Complete();
        await call.WaitAsync(Within);
    }

    [Fact]
    public async Task ReportStorm_TakesEffectAtMostOncePerInterval_TheLatestWinning()
    {
        var (plane, call) = await ConnectAsync("dp-0");
        plane.Send(Report((9000, BindState.Bound, string.Empty)));
        await Eventually(() => Outcomes().Count == 1);
        var before = _exchange.Published.Count;

        // 1,000 alternating reports within one interval: before, each was a recompute and a share (a Lease write due).
        for (var i = 0; i < 1000; i++)
        {
            plane.Send(Report((9000, i % 2 == 1 ? BindState.Failed : BindState.Bound, $"storm {i}")));
        }

        await Eventually(() => plane.Pending == 0);
        await Task.Delay(100);
        Assert.Equal(before, _exchange.Published.Count);

        // The interval passes: the latest report (Failed, the 1,000th) takes effect, once.
        _time.Advance(TimeSpan.FromSeconds(1));
        await Eventually(() => _exchange.Published.Count > before);
        Assert.Equal(before + 1, _exchange.Published.Count);
        Assert.Equal(BindOutcome.Failed("storm 999"), Outcomes()[9000]);

        plane.Send(Report((9000, BindState.Bound, string.Empty)));
        await Eventually(() =>
        {
            _time.Advance(TimeSpan.FromMilliseconds(100));
            return Outcomes()[9000].State == Routing.BindState.Bound;
        });
        plane.Complete();
        await call.WaitAsync(Within);
    }

    /// <summary>A data plane that has said Hello as <paramref name="dataPlaneId"/> and been admitted: its stream and the service's call.</summary>
    private async Task<(Plane Plane, Task Call)> ConnectAsync(string dataPlaneId)
    {
        var plane = new Plane();
        plane.Send(Hello(dataPlaneId));
        var call = Subscribe(plane);
        await Eventually(() => _reports.Connected == 1, call);
        return (plane, call);
    }

    private Task Subscribe(Plane plane) => Task.Run(() => _service.Subscribe(plane, plane, new InProcessCallContext(CancellationToken.None, "ipv4:127.0.0.1:40000")));

    private ImmutableSortedDictionary<int, BindOutcome> Outcomes() =>
        _latest is { ByGateway: { } byGateway } && byGateway.TryGetValue(Gateway, out var ports) ? ports : ImmutableSortedDictionary<int, BindOutcome>.Empty;

    private static async Task Eventually(Func<bool> condition, Task? call = null)
    {
        var until = DateTime.UtcNow + Within;
        while (!condition())
        {
            if (call is { IsCompleted: true })
            {
                // Ended early: say why.
                await call;
                Assert.Fail("the stream ended");
            }

            Assert.True(DateTime.UtcNow < until, "the condition held within 10 s");
            await Task.Delay(10);
        }
    }

    private static DataPlaneMessage Hello(string id) => new()
    {
        Hello = new Transport.ControlPlane.Protocol.Hello { ProtocolVersion = 1, GatewayNamespace = Gateway.Namespace, GatewayName = Gateway.Name, DataPlaneId = id },
    };

    private static DataPlaneMessage Report(params (int Port, BindState State, string Message)[] listeners)
    {
        var report = new Report { AppliedRevision = 1 };
        report.Listeners.AddRange(listeners.Select(static l => new ListenerOutcome { Port = l.Port, State = l.State, Message = l.Message }));
        return new DataPlaneMessage { Report = report };
    }

    private static IEnumerable<Resource> Cluster(params int[] ports)
    {
        yield return new GatewayClass(new ObjectMeta(string.Empty, "fsm"), GatewayApi.DefaultControllerName);
        yield return new Resources.Gateway(new ObjectMeta(Gateway.Namespace, Gateway.Name), "fsm", [.. (ports.Length == 0 ? [9000, 9001] : ports).Select(static p => new Listener($"l{p}", p, "TCP"))]);
    }

    /// <summary>An in-memory data plane: what it sends is read by the service; what the service writes is kept.</summary>
    private sealed class Plane : IAsyncStreamReader<DataPlaneMessage>, IServerStreamWriter<ControllerMessage>
    {
        private readonly Channel<DataPlaneMessage> _sent = Channel.CreateUnbounded<DataPlaneMessage>();
        private int _pending;

        public List<ControllerMessage> Received { get; } = [];

        public int Pending => Volatile.Read(ref _pending);

        public DataPlaneMessage Current { get; private set; } = null!;

        public WriteOptions? WriteOptions { get; set; }

        public void Send(DataPlaneMessage message)
        {
            Interlocked.Increment(ref _pending);
            _sent.Writer.TryWrite(message);
        }

        public void Complete() => _sent.Writer.TryComplete();

        public async Task<bool> MoveNext(CancellationToken cancellationToken)
        {
            if (!await _sent.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false) || !_sent.Reader.TryRead(out var message))
            {
                return false;
            }

            Current = message;
            Interlocked.Decrement(ref _pending);
            return true;
        }

        public Task WriteAsync(ControllerMessage message, CancellationToken cancellationToken) => WriteAsync(message);

        public Task WriteAsync(ControllerMessage message)
        {
            lock (Received)
            {
                Received.Add(message);
            }

            return Task.CompletedTask;
        }
    }

    private sealed class FakeExchange : IReplicaReportExchange
    {
        private readonly List<string> _published = [];

        public List<string> Published
        {
            get
            {
                lock (_published)
                {
                    return [.. _published];
                }
            }
        }

        public IObservable<IReadOnlyDictionary<string, string>> Others { get; } = new Subject<IReadOnlyDictionary<string, string>>();

        public void Publish(string reports)
        {
            lock (_published)
            {
                _published.Add(reports);
            }
        }
    }
}
