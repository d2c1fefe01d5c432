using BenchmarkDotNet.Attributes;
using FsmGateway.Resources;
using FsmGateway.Routing;
using FsmGateway.Transport.LoadBalancing;

namespace FsmGateway.Benchmarks;

/// <summary>
/// One smooth weighted round-robin choice (the per-connection backend pick) over 2, 10 and 100 backends with unequal
/// weights. Expected: a few ns per backend and no allocation.
/// </summary>
[MemoryDiagnoser]
public class BackendPickerBenchmarks
{
    private WeightedBackendPicker _picker = null!;

    [Params(2, 10, 100)]
    public int Backends { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var endpoints = EquatableArray.Create<BackendEndpoint>([new BackendEndpoint("127.0.0.1", 9000)]);
        var backends = new RouteBackend[Backends];
        for (var i = 0; i < backends.Length; i++)
        {
            backends[i] = new RouteBackend("bench", $"backend-{i}", 9000, Weight: 1 + (i % 7), endpoints, Problem: null);
        }

        _picker = new WeightedBackendPicker(backends);
    }

    [Benchmark]
    public RouteBackend? Next() => _picker.Next();
}
