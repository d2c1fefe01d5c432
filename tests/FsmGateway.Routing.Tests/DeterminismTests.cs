using FsmGateway.Configuration;
using FsmGateway.Resources;

namespace FsmGateway.Routing.Tests;

/// <summary>The same objects, whatever order they arrive in and however they are split across sources, compile to byte-identical output.</summary>
public sealed class DeterminismTests
{
    public static TheoryData<string> Scenarios => [.. ScenarioCompiler.Names];

    [Theory]
    [MemberData(nameof(Scenarios))]
    public void Compile_ShuffledInput_GivesIdenticalBytes(string scenario)
    {
        var resources = ScenarioCompiler.Read(scenario).Resources;
        var expected = Compile(ConfigSnapshot.From(resources));

        for (var seed = 1; seed <= 8; seed++)
        {
            var random = new Random(seed);
            var shuffled = resources.OrderBy(_ => random.Next()).ToList();

            // Arrive one at a time, as upserts from a watch would.
            var snapshot = shuffled.Aggregate(ConfigSnapshot.Empty, (s, r) => s.Apply(new ConfigEvent.Upserted("watch", r)));

            Assert.Equal(expected, Compile(snapshot));
        }
    }

    [Fact]
    public void Compile_AllScenariosTogether_IsStableAcrossRuns()
    {
        // Scenario objects collide by name, so keep the last of each key: what matters is that the
        // big mixed snapshot compiles identically every time and in every order.
        var all = ScenarioCompiler.Names
            .SelectMany(n => ScenarioCompiler.Read(n).Resources)
            .GroupBy(r => r.Key)
            .Select(g => g.Last())
            .ToList();
        var first = Compile(ConfigSnapshot.From(all));
        var reversed = Compile(ConfigSnapshot.From(Enumerable.Reverse(all)));

        Assert.Equal(first, reversed);
        Assert.Equal(first, Compile(ConfigSnapshot.From(all)));
    }

    private static string Compile(ConfigSnapshot snapshot) =>
        CompilationResultJson.ToJson(RouteCompiler.Compile(snapshot, ScenarioCompiler.Options, ListenerBindings.AssumeAllBound));
}
