using System.Reactive.Concurrency;
using System.Reactive.Subjects;
using FsmGateway.Configuration;
using FsmGateway.Resources;

namespace FsmGateway.Abstractions.Tests;

public sealed class ConfigPipelineTests
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(100);

    private sealed class ManualSource(string name) : IConfigSource
    {
        public Subject<ConfigEvent> Subject { get; } = new();

        public string Name { get; } = name;

        public IObservable<ConfigEvent> Events => Subject;
    }

    private static Service Svc(string name) => new(new ObjectMeta("default", name), [new ServicePort(null, 80, "TCP")]);

    [Fact]
    public void Snapshots_WaitForEverySourceToSync_ThenEmitTheFirstAtOnce()
    {
        var scheduler = new HistoricalScheduler();
        var files = new ManualSource("files");
        var code = new ManualSource("code");
        var snapshots = new List<ConfigSnapshot>();
        using var _ = ConfigPipeline.Snapshots([files, code], Quiet, TimeSpan.FromSeconds(1), scheduler).Subscribe(snapshots.Add);

        files.Subject.OnNext(new ConfigEvent.Upserted("files", Svc("a")));
        files.Subject.OnNext(new ConfigEvent.SourceSynced("files"));
        Assert.Empty(snapshots);

        code.Subject.OnNext(new ConfigEvent.SourceReset("code", [Svc("b")]));

        var first = Assert.Single(snapshots);
        Assert.Equal(["a", "b"], first.Resources.Values.Select(r => r.Metadata.Name));
    }

    [Fact]
    public void Snapshots_AfterTheFirst_AreDebouncedAndOnlyTheLatestIsEmitted()
    {
        var scheduler = new HistoricalScheduler();
        var source = new ManualSource("files");
        var snapshots = new List<ConfigSnapshot>();
        using var _ = ConfigPipeline.Snapshots([source], Quiet, TimeSpan.FromSeconds(1), scheduler).Subscribe(snapshots.Add);
        source.Subject.OnNext(new ConfigEvent.SourceReset("files", []));

        source.Subject.OnNext(new ConfigEvent.Upserted("files", Svc("a")));
        source.Subject.OnNext(new ConfigEvent.Upserted("files", Svc("b")));
        source.Subject.OnNext(new ConfigEvent.Upserted("files", Svc("b"))); // unchanged: no new revision
        Assert.Single(snapshots);

        scheduler.AdvanceBy(Quiet);

        Assert.Equal(2, snapshots.Count);
        Assert.Equal(["a", "b"], snapshots[1].Resources.Values.Select(r => r.Metadata.Name));
    }

    [Fact]
    public void Snapshots_TwoSourcesWithOneName_AreRefused()
    {
        var error = Assert.Throws<ArgumentException>(() =>
            ConfigPipeline.Snapshots([new ManualSource("x"), new ManualSource("x")], Quiet, Quiet, new HistoricalScheduler()));

        Assert.Contains("'x'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Snapshots_InvalidConfigIsData_TheStreamNeverErrs()
    {
        var scheduler = new HistoricalScheduler();
        var source = new ManualSource("files");
        Exception? failure = null;
        var snapshots = new List<ConfigSnapshot>();
        using var _ = ConfigPipeline.Snapshots([source], Quiet, TimeSpan.FromSeconds(1), scheduler).Subscribe(snapshots.Add, e => failure = e);

        // A Gateway with nonsense in it is still just an object in the snapshot; judging it is the compiler's job.
        var broken = new Gateway(new ObjectMeta("default", "gw"), "no-such-class", [new Listener("x", 1, "QUIC")]);
        source.Subject.OnNext(new ConfigEvent.SourceReset("files", [broken]));

        Assert.Null(failure);
        Assert.Single(snapshots);
    }
}
