using System.Collections.Immutable;
using FsmGateway.Configuration;
using FsmGateway.Resources;

namespace FsmGateway.Abstractions.Tests;

public sealed class ConfigSnapshotTests
{
    private static Service Svc(string name, int port = 80, string ns = "default") =>
        new(new ObjectMeta(ns, name), [new ServicePort(null, port, "TCP")]);

    [Fact]
    public void Apply_Upsert_AddsObjectAndBumpsRevision()
    {
        var snapshot = ConfigSnapshot.Empty.Apply(new ConfigEvent.Upserted("a", Svc("web")));

        Assert.Equal(1, snapshot.Revision);
        Assert.Equal(Svc("web"), Assert.Single(snapshot.OfType<Service>()));
    }

    [Fact]
    public void Apply_UpsertOfEqualObject_ReturnsSameSnapshot()
    {
        var once = ConfigSnapshot.Empty.Apply(new ConfigEvent.Upserted("a", Svc("web")));

        var twice = once.Apply(new ConfigEvent.Upserted("a", Svc("web")));

        Assert.Same(once, twice);
    }

    [Fact]
    public void Apply_UpsertChanged_ReplacesObject()
    {
        var snapshot = ConfigSnapshot.Empty
            .Apply(new ConfigEvent.Upserted("a", Svc("web", 80)))
            .Apply(new ConfigEvent.Upserted("a", Svc("web", 81)));

        Assert.Equal(81, Assert.Single(snapshot.OfType<Service>()).Ports[0].Port);
        Assert.Equal(2, snapshot.Revision);
    }

    [Fact]
    public void Apply_Delete_RemovesObject_AndDeletingUnknownIsNoOp()
    {
        var snapshot = ConfigSnapshot.Empty.Apply(new ConfigEvent.Upserted("a", Svc("web")));

        var deleted = snapshot.Apply(new ConfigEvent.Deleted("a", Svc("web").Key));
        var again = deleted.Apply(new ConfigEvent.Deleted("a", Svc("web").Key));

        Assert.Empty(deleted.Resources);
        Assert.Same(deleted, again);
    }

    [Fact]
    public void Apply_DeleteFromOtherSource_LeavesObject()
    {
        var snapshot = ConfigSnapshot.Empty.Apply(new ConfigEvent.Upserted("a", Svc("web")));

        var after = snapshot.Apply(new ConfigEvent.Deleted("b", Svc("web").Key));

        Assert.Single(after.Resources);
    }

    [Fact]
    public void Apply_Reset_ReplacesOnlyThatSourcesObjects_AndMarksItSynced()
    {
        var snapshot = ConfigSnapshot.Empty
            .Apply(new ConfigEvent.Upserted("files", Svc("old")))
            .Apply(new ConfigEvent.Upserted("code", Svc("kept")));

        var reset = snapshot.Apply(new ConfigEvent.SourceReset("files", [Svc("new")]));

        Assert.Equal(["kept", "new"], reset.Resources.Values.Select(r => r.Metadata.Name));
        Assert.Contains("files", reset.SyncedSources);
        Assert.DoesNotContain("code", reset.SyncedSources);
    }

    [Fact]
    public void Apply_ResetWithTheSameContents_ReturnsSameSnapshot()
    {
        var snapshot = ConfigSnapshot.Empty.Apply(new ConfigEvent.SourceReset("files", [Svc("a"), Svc("b")]));

        var again = snapshot.Apply(new ConfigEvent.SourceReset("files", [Svc("b"), Svc("a")]));

        Assert.Same(snapshot, again);
    }

    [Fact]
    public void Apply_ResetListingAKeyTwice_KeepsTheFirstDefinition_AndLaterResetsStillApply()
    {
        var snapshot = ConfigSnapshot.Empty.Apply(new ConfigEvent.SourceReset("files", [Svc("web", 80), Svc("web", 81)]));

        Assert.Equal(80, Assert.Single(snapshot.OfType<Service>()).Ports[0].Port);

        var edited = snapshot.Apply(new ConfigEvent.SourceReset("files", [Svc("web", 80), Svc("web", 81), Svc("new")]));

        Assert.Equal(["new", "web"], edited.Resources.Values.Select(r => r.Metadata.Name));
    }

    [Fact]
    public void HasSynced_WaitsForEverySource()
    {
        var snapshot = ConfigSnapshot.Empty.Apply(new ConfigEvent.SourceSynced("a"));

        Assert.False(snapshot.HasSynced(["a", "b"]));
        Assert.True(snapshot.Apply(new ConfigEvent.SourceSynced("b")).HasSynced(["a", "b"]));
    }

    [Fact]
    public void Resources_SameKeyInTwoSources_FirstSourceByNameWinsWhateverTheOrder()
    {
        var fromA = Svc("web", 1);
        var fromB = Svc("web", 2);

        var ab = ConfigSnapshot.Empty.Apply(new ConfigEvent.Upserted("a", fromA)).Apply(new ConfigEvent.Upserted("b", fromB));
        var ba = ConfigSnapshot.Empty.Apply(new ConfigEvent.Upserted("b", fromB)).Apply(new ConfigEvent.Upserted("a", fromA));

        Assert.Same(fromA, Assert.Single(ab.Resources.Values));
        Assert.Same(fromA, Assert.Single(ba.Resources.Values));
    }

    [Fact]
    public void Resources_AreSortedByKindNamespaceName()
    {
        var snapshot = ConfigSnapshot.From([Svc("b", ns: "z"), Svc("a", ns: "z"), Svc("c", ns: "a"), new KubernetesNamespace(new ObjectMeta("", "z"))]);

        Assert.Equal(["c", "a", "b", "z"], snapshot.Resources.Values.Select(r => r.Metadata.Name));
    }

    [Fact]
    public void InMemorySource_SendsCurrentContentsThenEachUpdate()
    {
        using var source = new InMemoryConfigSource("code", [Svc("one")]);
        var seen = new List<ConfigEvent>();
        using var subscription = source.Events.Subscribe(seen.Add);

        source.Update([Svc("one"), Svc("two")]);

        Assert.Collection(
            seen,
            e => Assert.Single(Assert.IsType<ConfigEvent.SourceReset>(e).Resources),
            e => Assert.Equal(2, Assert.IsType<ConfigEvent.SourceReset>(e).Resources.Length));
        var snapshot = seen.Aggregate(ConfigSnapshot.Empty, (s, e) => s.Apply(e));
        Assert.Equal(2, snapshot.Resources.Count);
        Assert.True(snapshot.HasSynced(["code"]));
    }
}

public sealed class LabelSelectorTests
{
    private static readonly ImmutableSortedDictionary<string, string> Labels =
        ImmutableSortedDictionary<string, string>.Empty.Add("team", "a").Add("env", "prod");

    [Theory]
    [InlineData(LabelSelectorOperator.In, new[] { "a", "b" }, true)]
    [InlineData(LabelSelectorOperator.In, new[] { "c" }, false)]
    [InlineData(LabelSelectorOperator.NotIn, new[] { "c" }, true)]
    [InlineData(LabelSelectorOperator.NotIn, new[] { "a" }, false)]
    [InlineData(LabelSelectorOperator.Exists, new string[0], true)]
    [InlineData(LabelSelectorOperator.DoesNotExist, new string[0], false)]
    public void Matches_Expression(LabelSelectorOperator op, string[] values, bool expected)
    {
        var selector = new LabelSelector(ImmutableSortedDictionary<string, string>.Empty, [new LabelSelectorRequirement("team", op, [.. values])]);

        Assert.Equal(expected, selector.Matches(Labels));
    }

    [Fact]
    public void Matches_MatchLabelsAllMustHold_AndEmptySelectorMatchesAll()
    {
        var empty = new LabelSelector(ImmutableSortedDictionary<string, string>.Empty, []);
        var both = new LabelSelector(Labels, []);
        var wrong = new LabelSelector(Labels.SetItem("env", "dev"), []);

        Assert.True(empty.Matches(ImmutableDictionary<string, string>.Empty));
        Assert.True(both.Matches(Labels));
        Assert.False(wrong.Matches(Labels));
    }
}
