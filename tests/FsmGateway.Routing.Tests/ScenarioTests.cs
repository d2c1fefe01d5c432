using Newtonsoft.Json.Linq;
using Snapshooter;
using Snapshooter.Xunit;

namespace FsmGateway.Routing.Tests;

/// <summary>
/// One YAML fixture per scenario under <c>Scenarios/</c>; each compiles to the routing table and statuses stored in
/// <c>__snapshots__/</c>. Each fixture's header says what its snapshot must show. CI runs with
/// <c>SNAPSHOOTER_STRICT_MODE=true</c>, so a missing snapshot fails as a mismatch does.
/// </summary>
public sealed class ScenarioTests
{
    public static TheoryData<string> Scenarios => [.. ScenarioCompiler.Names];

    [Theory]
    [MemberData(nameof(Scenarios))]
    public void Compile_Scenario_MatchesSnapshot(string scenario)
    {
        var manifests = ScenarioCompiler.Read(scenario);

        var json = ScenarioCompiler.CompileToJson(manifests.Resources, manifests.Notes);

        Snapshot.Match(JToken.Parse(json.ToJsonString()), SnapshotNameExtension.Create(scenario));
    }

    [Fact]
    public void Scenarios_AreAtLeastForty()
    {
        Assert.True(ScenarioCompiler.Names.Count() >= 40, $"only {ScenarioCompiler.Names.Count()} scenarios");
    }
}
