using System.Collections.Immutable;
using System.Reactive.Subjects;
using FsmGateway.Host.ControlPlane;
using FsmGateway.Kubernetes;
using FsmGateway.Resources;
using FsmGateway.Routing;
using Microsoft.Extensions.Time.Testing;

namespace FsmGateway.Host.Tests.ControlPlane;

/// <summary>
/// A replica's view of what the data planes bound, with other replicas' shared reports (ADR 0010): a data plane counts
/// once whichever replica holds its report, a report outlives its stream by the linger, and this replica's reports are
/// shared in a form the others read back.
/// </summary>
public sealed class DataPlaneReportsTests
{
    private static readonly ResourceKey Gateway = new(ResourceKind.Gateway, "apps", "gw");
    private static readonly TimeSpan Linger = TimeSpan.FromSeconds(15);
    private readonly FakeTimeProvider _time = new();
    private readonly FakeExchange _exchange = new();

    [Fact]
    public void ReportHeldByAnotherReplica_CountsHere()
    {
        using var reports = new DataPlaneReports(provisions: true, _exchange, Linger, _time);
        Assert.Equal(BindState.Pending, Latest(reports).For(Gateway, 8000).State);

        _exchange.Others.OnNext(new Dictionary<string, string> { ["controller-b"] = Shared("dp-0", live: true, (8000, BindOutcome.Bound), (8001, BindOutcome.Failed("address in use"))) });

        Assert.Equal(BindState.Bound, Latest(reports).For(Gateway, 8000).State);
        Assert.Equal(BindOutcome.Failed("address in use"), Latest(reports).For(Gateway, 8001));
    }

    [Fact]
    public void StreamEnded_ReportCountsForTheLinger_ThenTheGatewayIsUnreported()
    {
        using var reports = new DataPlaneReports(provisions: true, _exchange, Linger, _time);
        var connection = reports.Connect(Gateway, "dp-0");
        reports.Report(connection, Ports((8000, BindOutcome.Bound)));
        reports.Disconnect(connection);

        _time.Advance(Linger - TimeSpan.FromSeconds(1));
        Assert.Equal(BindState.Bound, Latest(reports).For(Gateway, 8000).State);

        _time.Advance(TimeSpan.FromSeconds(1));
        var outcome = Latest(reports).For(Gateway, 8000);
        Assert.Equal(BindState.Pending, outcome.State);
        Assert.Contains("no data plane of this Gateway has connected", outcome.Message, StringComparison.Ordinal);
        Assert.Equal("[]", _exchange.Published.Last());
    }

    [Fact]
    public void DataPlaneReconnectingHere_TheOtherReplicasReportCountsUntilItReportsAgain_NoPendingInBetween()
    {
        using var reports = new DataPlaneReports(provisions: true, _exchange, Linger, _time);
        _exchange.Others.OnNext(new Dictionary<string, string> { ["controller-b"] = Shared("dp-0", live: true, (8000, BindOutcome.Bound)) });
        var seen = new List<BindState>();
        using var subscription = reports.Bindings.Subscribe(b => seen.Add(b.For(Gateway, 8000).State));

        var connection = reports.Connect(Gateway, "dp-0");
        reports.Report(connection, Ports((8000, BindOutcome.Failed("address in use"))));

        Assert.Equal([BindState.Bound, BindState.Failed], seen);
    }

    [Fact]
    public void OneDataPlaneOnTwoReplicas_CountsOnce_TheLiveStreamWins()
    {
        using var reports = new DataPlaneReports(provisions: true, _exchange, Linger, _time);
        var connection = reports.Connect(Gateway, "dp-0");
        reports.Report(connection, Ports((8000, BindOutcome.Bound)));

        _exchange.Others.OnNext(new Dictionary<string, string> { ["controller-b"] = Shared("dp-0", live: false, (8000, BindOutcome.Failed("gone"))) });

        Assert.Equal(BindState.Bound, Latest(reports).For(Gateway, 8000).State);
    }

    [Fact]
    public void SharedReports_ReadBackAsTheyWere()
    {
        using var reports = new DataPlaneReports(provisions: false, _exchange, Linger, _time);
        var connection = reports.Connect(Gateway, "dp-0");
        reports.Report(connection, Ports((8000, BindOutcome.Bound), (8001, BindOutcome.NotYetBound), (8002, BindOutcome.Failed("permission \"denied\""))));

        var decoded = Assert.Single(DataPlaneReports.Decode(_exchange.Published.Last()));

        Assert.Equal((Gateway, "dp-0", (DateTimeOffset?)null), (decoded.Gateway, decoded.DataPlane, decoded.EndedAt));
        Assert.Equal(Ports((8000, BindOutcome.Bound), (8001, BindOutcome.NotYetBound), (8002, BindOutcome.Failed("permission \"denied\""))), decoded.Reported);
    }

    [Fact]
    public void UnreadableReportsOfAnotherReplica_AreIgnored()
    {
        using var reports = new DataPlaneReports(provisions: true, _exchange, Linger, _time);
        _exchange.Others.OnNext(new Dictionary<string, string> { ["controller-b"] = "{not json", ["controller-c"] = Shared("dp-1", live: true, (8000, BindOutcome.Bound)) });

        Assert.Equal(BindState.Bound, Latest(reports).For(Gateway, 8000).State);
    }

    private static ListenerBindings Latest(DataPlaneReports reports)
    {
        ListenerBindings? latest = null;
        using (reports.Bindings.Subscribe(b => latest = b))
        {
        }

        return latest!;
    }

    private static ImmutableSortedDictionary<int, BindOutcome> Ports(params (int Port, BindOutcome Outcome)[] ports) =>
        ports.ToImmutableSortedDictionary(static p => p.Port, static p => p.Outcome);

    private static string Shared(string dataPlane, bool live, params (int Port, BindOutcome Outcome)[] ports) =>
        DataPlaneReports.Encode([new DataPlaneReports.Connection(Gateway, dataPlane, Ports(ports), live ? null : DateTimeOffset.UnixEpoch, Local: true, Order: 1)]);

    private sealed class FakeExchange : IReplicaReportExchange
    {
        public List<string> Published { get; } = [];

        public BehaviorSubject<IReadOnlyDictionary<string, string>> Others { get; } = new(new Dictionary<string, string>());

        IObservable<IReadOnlyDictionary<string, string>> IReplicaReportExchange.Others => Others;

        public void Publish(string reports) => Published.Add(reports);
    }
}
