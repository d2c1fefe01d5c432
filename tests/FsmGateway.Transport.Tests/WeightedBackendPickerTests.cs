using FsmGateway.Routing;
using FsmGateway.Transport.LoadBalancing;
using FsmGateway.Transport.Tests.TestSupport;

namespace FsmGateway.Transport.Tests;

/// <summary>The per-connection backend choice: smooth weighted round robin, as nginx does it.</summary>
public sealed class WeightedBackendPickerTests
{
    [Fact]
    public void Next_Weights5And1And1_GivesNginxSmoothSequence()
    {
        var a = Routes.Backend("a", 5, new BackendEndpoint("10.0.0.1", 80));
        var b = Routes.Backend("b", 1, new BackendEndpoint("10.0.0.2", 80));
        var c = Routes.Backend("c", 1, new BackendEndpoint("10.0.0.3", 80));
        var picker = new WeightedBackendPicker([a, b, c]);

        var sequence = string.Concat(Enumerable.Range(0, 14).Select(_ => picker.Next()!.Name));

        // Two full cycles of the total weight (7): the same interleaved order each time, never a run of five a's.
        Assert.Equal("aabacaa" + "aabacaa", sequence);
    }

    [Fact]
    public void Next_Weights70And30And0_ExactSharesPerCycleAndNoneForWeightZero()
    {
        var a = Routes.Backend("a", 70, new BackendEndpoint("10.0.0.1", 80));
        var b = Routes.Backend("b", 30, new BackendEndpoint("10.0.0.2", 80));
        var zero = Routes.Backend("zero", 0, new BackendEndpoint("10.0.0.3", 80));
        var picker = new WeightedBackendPicker([a, zero, b]);

        for (var cycle = 0; cycle < 3; cycle++)
        {
            var counts = Enumerable.Range(0, 100).Select(_ => picker.Next()!.Name).CountBy(static n => n).ToDictionary();
            Assert.Equal(70, counts["a"]);
            Assert.Equal(30, counts["b"]);
            Assert.False(counts.ContainsKey("zero"));
        }
    }

    [Fact]
    public void Next_InvalidBackend_KeepsItsShare()
    {
        var good = Routes.Backend("good", 3, new BackendEndpoint("10.0.0.1", 80));
        var invalid = Routes.Invalid("missing", 1);
        var picker = new WeightedBackendPicker([good, invalid]);

        var picks = Enumerable.Range(0, 400).Select(_ => picker.Next()!).ToList();

        Assert.Equal(100, picks.Count(static p => p.Name == "missing"));
        Assert.All(picks.Where(static p => p.Name == "missing"), static p => Assert.False(p.CanServe));
    }

    [Fact]
    public void Next_AllWeightsZero_ReturnsNull()
    {
        var picker = new WeightedBackendPicker(
        [
            Routes.Backend("a", 0, new BackendEndpoint("10.0.0.1", 80)),
            Routes.Backend("b", 0, new BackendEndpoint("10.0.0.2", 80)),
        ]);

        Assert.Null(picker.Next());
        Assert.Null(picker.Next());
    }

    [Fact]
    public void Next_NoBackends_ReturnsNull()
    {
        Assert.Null(new WeightedBackendPicker([]).Next());
    }

    [Fact]
    public void Next_SingleBackend_AlwaysReturnsIt()
    {
        var only = Routes.Backend("only", 7, new BackendEndpoint("10.0.0.1", 80));
        var picker = new WeightedBackendPicker([Routes.Backend("zero", 0, new BackendEndpoint("10.0.0.2", 80)), only]);

        Assert.All(Enumerable.Range(0, 10), _ => Assert.Same(only, picker.Next()));
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Next_ManyThreadsAtOnce_SharesStayExact()
    {
        var a = Routes.Backend("a", 2, new BackendEndpoint("10.0.0.1", 80));
        var b = Routes.Backend("b", 1, new BackendEndpoint("10.0.0.2", 80));
        var picker = new WeightedBackendPicker([a, b]);
        var counts = new int[2];

        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            for (var i = 0; i < 30_000; i++)
            {
                Interlocked.Increment(ref counts[picker.Next()!.Name == "a" ? 0 : 1]);
            }
        })));

        // 120,000 picks are 40,000 whole cycles of weight 3.
        Assert.Equal(80_000, counts[0]);
        Assert.Equal(40_000, counts[1]);
    }

    [Fact]
    public void Next_CycleLongerThanTheTable_StillExactSharesPerCycle()
    {
        // 4,999 + 5,002 = 10,001 picks a cycle (coprime weights): walked with the running state, not a table.
        var a = Routes.Backend("a", 4_999, new BackendEndpoint("10.0.0.1", 80));
        var b = Routes.Backend("b", 5_002, new BackendEndpoint("10.0.0.2", 80));
        var picker = new WeightedBackendPicker([a, b]);

        for (var cycle = 0; cycle < 2; cycle++)
        {
            var counts = Enumerable.Range(0, 10_001).Select(_ => picker.Next()!.Name).CountBy(static n => n).ToDictionary();
            Assert.Equal(4_999, counts["a"]);
            Assert.Equal(5_002, counts["b"]);
        }
    }

    [Fact]
    public void Next_WeightsWithACommonDivisor_SameSequenceAsTheReducedWeights()
    {
        var reduced = new WeightedBackendPicker([Routes.Backend("a", 5, new BackendEndpoint("10.0.0.1", 80)), Routes.Backend("b", 2, new BackendEndpoint("10.0.0.2", 80))]);
        var scaled = new WeightedBackendPicker([Routes.Backend("a", 5_000, new BackendEndpoint("10.0.0.1", 80)), Routes.Backend("b", 2_000, new BackendEndpoint("10.0.0.2", 80))]);

        Assert.Equal(
            string.Concat(Enumerable.Range(0, 21).Select(_ => reduced.Next()!.Name)),
            string.Concat(Enumerable.Range(0, 21).Select(_ => scaled.Next()!.Name)));
    }
}
