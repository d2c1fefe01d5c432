using BenchmarkDotNet.Attributes;
using FsmGateway.Resources;
using FsmGateway.Routing;
using FsmGateway.Transport.LoadBalancing;
using FsmGateway.Transport.Proxy;

namespace FsmGateway.Benchmarks;

/// <summary>
/// The per-connection endpoint choice inside a backend, as the connection handler makes it: read the backend's cached
/// set of available endpoints (health), start the connection's <see cref="EndpointSelection"/>, pick with the
/// backend's policy (resolved at apply time, as the proxy resolves it) and count the connection on the endpoint's
/// state (acquire, success, release). Over 2, 10 and 100 endpoints, all healthy or with a tenth ejected, for each
/// built-in policy; the Maglev table is built once in the setup (as once per change of the available set), the
/// client addresses vary per call. Expected: allocation-free, well under 100 ns.
/// </summary>
[MemoryDiagnoser]
public class EndpointPickBenchmarks
{
    private readonly System.Net.IPEndPoint[] _clients = [.. Enumerable.Range(0, 256).Select(static i => new System.Net.IPEndPoint(System.Net.IPAddress.Parse($"10.9.{i}.{(i * 7) % 250 + 1}"), 40000 + i))];
    private BackendRuntime _runtime = null!;
    private int _client;

    [Params(2, 10, 100)]
    public int Endpoints { get; set; }

    [Params(false, true)]
    public bool SomeEjected { get; set; }

    [Params(LoadBalancerAlgorithm.RoundRobin, LoadBalancerAlgorithm.LeastRequest, LoadBalancerAlgorithm.Random, LoadBalancerAlgorithm.ConsistentHashSourceIP)]
    public LoadBalancerAlgorithm Policy { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var endpoints = new BackendEndpoint[Endpoints];
        for (var i = 0; i < endpoints.Length; i++)
        {
            endpoints[i] = new BackendEndpoint($"10.0.{i / 250}.{(i % 250) + 1}", 8080);
        }

        var backend = new RouteBackend("bench", "svc", 8080, 1, EquatableArray.Create<BackendEndpoint>(endpoints), Problem: null)
        {
            Policy = new BackendPolicy { LoadBalancer = Policy },
        };
        var registry = new EndpointRegistry(TimeProvider.System);
        var policies = new LoadBalancingPolicyRegistry([], LoadBalancingPolicies.RoundRobin);
        // An ejection long enough to outlast the run.
        var settings = new PassiveHealthSettings(1, TimeSpan.FromHours(1), TimeSpan.FromHours(1));
        _runtime = registry.Runtime(backend, new BackendTags(null, backend), settings, BackendConnectSettings.Resolve(backend.Policy, policies, new ProxyOptions()));
        if (SomeEjected)
        {
            for (var i = 0; i < Math.Max(1, Endpoints / 10); i++)
            {
                _runtime.States[i].Failed(settings, "benchmark", _runtime);
            }
        }

        // Some connections open already, unevenly, so that LeastRequest compares real counts.
        for (var i = 0; i < _runtime.States.Length; i++)
        {
            for (var n = 0; n < i % 5; n++)
            {
                _runtime.States[i].Acquire();
            }
        }

        Pick(); // builds the Maglev table for the available set, as the first connection after a change does
    }

    [Benchmark]
    public int Pick()
    {
        var available = _runtime.Available(out _);
        var selection = new EndpointSelection(_runtime, available, _clients[_client++ & 255]);
        var index = selection.Pick(out _, out var state);
        state.Succeeded();
        state.Release();
        return index;
    }
}

/// <summary>
/// Building a Maglev table (once per change of a ConsistentHash backend's available set, never per connection):
/// 65537 slots over 3, 100 and 1,000 endpoints.
/// </summary>
[MemoryDiagnoser]
public class MaglevBuildBenchmarks
{
    private BackendEndpoint[] _endpoints = [];

    [Params(3, 100, 1000)]
    public int Endpoints { get; set; }

    [GlobalSetup]
    public void Setup() =>
        _endpoints = [.. Enumerable.Range(0, Endpoints).Select(static i => new BackendEndpoint($"10.0.{i / 250}.{(i % 250) + 1}", 8080))];

    [Benchmark]
    public int Build() => MaglevTable.Build(_endpoints, BackendPolicy.DefaultTableSize).Size;
}
