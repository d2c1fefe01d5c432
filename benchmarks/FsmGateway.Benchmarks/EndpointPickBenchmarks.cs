using BenchmarkDotNet.Attributes;
using FsmGateway.Resources;
using FsmGateway.Routing;
using FsmGateway.Transport.LoadBalancing;
using FsmGateway.Transport.Proxy;

namespace FsmGateway.Benchmarks;

/// <summary>
/// The per-connection endpoint choice inside a backend, as <c>GatewayProxy.ConnectAsync</c> makes it: read the cached
/// set of available endpoints (passive health), build the pick context, round-robin pick, and account the connection
/// on the endpoint's state (acquire, success, release). Over 2, 10 and 100 endpoints, all healthy or with a tenth
/// ejected. Expected: tens of ns, and one allocation (the public <see cref="EndpointPickContext"/>, as before).
/// </summary>
[MemoryDiagnoser]
public class EndpointPickBenchmarks
{
    private readonly RoundRobinPolicy _policy = new();
    private BackendRuntime _runtime = null!;

    [Params(2, 10, 100)]
    public int Endpoints { get; set; }

    [Params(false, true)]
    public bool SomeEjected { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var endpoints = new BackendEndpoint[Endpoints];
        for (var i = 0; i < endpoints.Length; i++)
        {
            endpoints[i] = new BackendEndpoint($"10.0.{i / 250}.{(i % 250) + 1}", 8080);
        }

        var backend = new RouteBackend("bench", "svc", 8080, 1, EquatableArray.Create<BackendEndpoint>(endpoints), Problem: null);
        var registry = new EndpointRegistry(TimeProvider.System);
        // An ejection long enough to outlast the run.
        var settings = new PassiveHealthSettings(1, TimeSpan.FromHours(1), TimeSpan.FromHours(1));
        _runtime = registry.Runtime(backend, new BackendTags(null, backend), settings);
        if (SomeEjected)
        {
            for (var i = 0; i < Math.Max(1, Endpoints / 10); i++)
            {
                _runtime.States[i].Failed(settings);
            }
        }
    }

    [Benchmark]
    public int Pick()
    {
        var available = _runtime.Available(out _);
        var context = new EndpointPickContext(null, _runtime.Backend, available.Endpoints, _runtime.Health.Counter);
        var index = _policy.Pick(context);
        var state = available.States[index];
        state.Acquire();
        state.Succeeded();
        state.Release();
        return index;
    }
}
