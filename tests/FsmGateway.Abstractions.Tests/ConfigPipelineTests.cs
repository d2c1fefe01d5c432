using System.Reactive.Concurrency;
using System.Reactive.Linq;
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

    /// <summary>A source whose every subscription gets a subject of its own, as a source that reconnects does.</summary>
    private sealed class ReconnectingSource(string name) : IConfigSource
    {
        public List<Subject<ConfigEvent>> Subscriptions { get; } = [];

        public Subject<ConfigEvent> Current => Subscriptions[^1];

        public string Name { get; } = name;

        public IObservable<ConfigEvent> Events => Observable.Defer(() =>
        {
            var subject = new Subject<ConfigEvent>();
            Subscriptions.Add(subject);
            return subject;
        });
    }

    private sealed record UnknownEvent(string Source) : ConfigEvent(Source);

    [Fact]
    public void Snapshots_SourceThatFaults_IsReportedAndResubscribed_KeepingItsContentsUntilItSyncsAgain()
    {
        var scheduler = new HistoricalScheduler();
        var flaky = new ReconnectingSource("api");
        var files = new ManualSource("files");
        var faults = new List<ConfigSourceFault>();
        Exception? failure = null;
        var completed = false;
        var snapshots = new List<ConfigSnapshot>();
        using var _ = ConfigPipeline.Snapshots([flaky, files], Quiet, TimeSpan.FromSeconds(1), scheduler, faults.Add)
            .Subscribe(snapshots.Add, e => failure = e, () => completed = true);
        flaky.Current.OnNext(new ConfigEvent.Upserted("api", Svc("a")));
        flaky.Current.OnNext(new ConfigEvent.SourceSynced("api"));
        files.Subject.OnNext(new ConfigEvent.SourceReset("files", []));

        flaky.Current.OnError(new HttpRequestException("connection refused"));

        var fault = Assert.Single(faults);
        Assert.Equal("api", fault.Source);
        Assert.IsType<HttpRequestException>(fault.Exception);
        Assert.NotNull(fault.RetryAfter);

        // Meanwhile the other source still counts, and the faulted one's objects are kept.
        files.Subject.OnNext(new ConfigEvent.Upserted("files", Svc("f")));
        scheduler.AdvanceBy(Quiet);
        Assert.Equal(["a", "f"], snapshots[^1].Resources.Values.Select(r => r.Metadata.Name));

        scheduler.AdvanceBy(fault.RetryAfter!.Value);
        Assert.Equal(2, flaky.Subscriptions.Count);

        // What it sends again until it syncs replaces what it held: "a" went while it was away.
        flaky.Current.OnNext(new ConfigEvent.Upserted("api", Svc("b")));
        flaky.Current.OnNext(new ConfigEvent.SourceSynced("api"));
        scheduler.AdvanceBy(Quiet);

        Assert.Equal(["b", "f"], snapshots[^1].Resources.Values.Select(r => r.Metadata.Name));
        Assert.Null(failure);
        Assert.False(completed);
    }

    [Fact]
    public void Snapshots_SourceThatKeepsFaulting_IsRetriedWithGrowingBackOff()
    {
        var scheduler = new HistoricalScheduler();
        var flaky = new ReconnectingSource("api");
        var faults = new List<ConfigSourceFault>();
        using var _ = ConfigPipeline.Snapshots([flaky], Quiet, TimeSpan.FromSeconds(1), scheduler, faults.Add).Subscribe(_ => { });

        for (var i = 0; i < 8; i++)
        {
            flaky.Current.OnError(new IOException("down"));
            scheduler.AdvanceBy(faults[^1].RetryAfter!.Value);
        }

        Assert.Equal(9, flaky.Subscriptions.Count);
        var delays = faults.Select(f => f.RetryAfter!.Value).ToList();
        Assert.Equal(delays.Order(), delays);
        Assert.True(delays[^1] > delays[0]);
        Assert.True(delays[^1] <= TimeSpan.FromSeconds(30));
    }

    [Fact]
    public void Snapshots_SourceWhoseSubscriptionThrows_IsReportedAndTriedAgain()
    {
        var scheduler = new HistoricalScheduler();
        var attempts = 0;
        var subject = new Subject<ConfigEvent>();
        var source = new DelegateSource("api", () => ++attempts == 1 ? throw new InvalidOperationException("not yet") : subject);
        var faults = new List<ConfigSourceFault>();
        var snapshots = new List<ConfigSnapshot>();
        using var _ = ConfigPipeline.Snapshots([source], Quiet, TimeSpan.FromSeconds(1), scheduler, faults.Add).Subscribe(snapshots.Add);

        Assert.IsType<InvalidOperationException>(Assert.Single(faults).Exception);
        scheduler.AdvanceBy(faults[0].RetryAfter!.Value);
        subject.OnNext(new ConfigEvent.SourceReset("api", [Svc("a")]));

        Assert.Equal(["a"], Assert.Single(snapshots).Resources.Values.Select(r => r.Metadata.Name));
    }

    [Fact]
    public void Snapshots_EventThatCannotBeApplied_IsReportedAndSkipped_TheStreamGoesOn()
    {
        var scheduler = new HistoricalScheduler();
        var source = new ManualSource("files");
        var faults = new List<ConfigSourceFault>();
        Exception? failure = null;
        var snapshots = new List<ConfigSnapshot>();
        using var _ = ConfigPipeline.Snapshots([source], Quiet, TimeSpan.FromSeconds(1), scheduler, faults.Add).Subscribe(snapshots.Add, e => failure = e);
        source.Subject.OnNext(new ConfigEvent.SourceReset("files", [Svc("a")]));

        source.Subject.OnNext(new UnknownEvent("files"));
        source.Subject.OnNext(new ConfigEvent.Upserted("files", Svc("b")));
        scheduler.AdvanceBy(Quiet);

        var fault = Assert.Single(faults);
        Assert.Null(fault.RetryAfter);
        Assert.Null(failure);
        Assert.Equal(["a", "b"], snapshots[^1].Resources.Values.Select(r => r.Metadata.Name));
    }

    [Fact]
    public void Snapshots_SourceThatCompletes_KeepsItsContents_AndTheStreamNeverCompletes()
    {
        var scheduler = new HistoricalScheduler();
        var once = new ManualSource("once");
        var files = new ManualSource("files");
        var completed = false;
        var snapshots = new List<ConfigSnapshot>();
        using var _ = ConfigPipeline.Snapshots([once, files], Quiet, TimeSpan.FromSeconds(1), scheduler).Subscribe(snapshots.Add, () => completed = true);
        once.Subject.OnNext(new ConfigEvent.SourceReset("once", [Svc("a")]));
        files.Subject.OnNext(new ConfigEvent.SourceReset("files", []));

        once.Subject.OnCompleted();
        files.Subject.OnCompleted();
        scheduler.AdvanceBy(TimeSpan.FromMinutes(1));

        Assert.False(completed);
        Assert.Equal(["a"], snapshots[^1].Resources.Values.Select(r => r.Metadata.Name));
    }

    private sealed class DelegateSource(string name, Func<IObservable<ConfigEvent>> events) : IConfigSource
    {
        public string Name { get; } = name;

        public IObservable<ConfigEvent> Events => events();
    }
}
