using BenchmarkDotNet.Attributes;
using FsmGateway.Configuration;
using FsmGateway.Routing;

namespace FsmGateway.Benchmarks;

/// <summary>A full compile of <see cref="LargeSnapshot"/>: goal under 50 ms, allocation proportional to the output.</summary>
[MemoryDiagnoser]
public class CompilerBenchmarks
{
    private ConfigSnapshot _valid = null!;
    private ConfigSnapshot _onePercentInvalid = null!;

    [GlobalSetup]
    public void Setup()
    {
        _valid = LargeSnapshot.Build();
        _onePercentInvalid = LargeSnapshot.Build(invalidEvery: 100);

        // Build the snapshot's merged view now, so the benchmark measures compiling, not the first merge.
        _ = _valid.Resources.Count + _onePercentInvalid.Resources.Count;
    }

    [Benchmark(Baseline = true)]
    public CompilationResult Compile_Large() => RouteCompiler.Compile(_valid);

    [Benchmark]
    public CompilationResult Compile_Large_OnePercentInvalid() => RouteCompiler.Compile(_onePercentInvalid);
}
