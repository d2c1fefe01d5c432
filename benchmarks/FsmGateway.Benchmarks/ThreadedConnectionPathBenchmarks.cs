using System.Collections.Concurrent;
using System.Net;
using BenchmarkDotNet.Attributes;
using FsmGateway.Resources;
using FsmGateway.Routing;
using FsmGateway.Transport;
using FsmGateway.Transport.Connections;
using FsmGateway.Transport.LoadBalancing;
using FsmGateway.Transport.Proxy;
using Microsoft.Extensions.Logging.Abstractions;

namespace FsmGateway.Benchmarks;

/// <summary>
/// Whether the per-connection bookkeeping scales with cores (issue 13's multi-core target: 1 to 2 threads within 10 %
/// of linear). Each of <see cref="Threads"/> threads (started once, released together per invocation) does
/// <see cref="OperationsPerThread"/> operations on shared state, so the mean per operation stays the same from 1 to 2
/// threads exactly when throughput doubles: the 2-thread mean over the 1-thread mean is the scaling loss.
/// <list type="bullet">
/// <item><c>Pick</c>: the weighted backend choice over 3 backends of weights 5, 3 and 2 (<see cref="WeightedBackendPicker"/>).</item>
/// <item><c>Register</c>: what the connection handler counts between accept and release, without the sockets: the
/// registry add and remove (<see cref="ConnectionRegistry"/>), the listener's count, and the metrics totals of one
/// short connection (accepted, active, backend connected, closed, two transfers each way).</item>
/// <item><c>Ideal</c>: work that shares nothing, as the yardstick: on a shared VM a second thread may not get a
/// whole second core, and this says how much of one it got.</item>
/// </list>
/// <see cref="Shared"/> runs the same operations on the previous design (one lock around the picker, a
/// <c>ConcurrentDictionary</c> insert and Interlocked counters shared by all cores), copied here for comparison.
/// </summary>
public class ThreadedConnectionPathBenchmarks
{
    /// <summary>Operations per thread per invocation.</summary>
    public const int OperationsPerThread = 1_000_000;

    private readonly List<(Thread Thread, SemaphoreSlim Start)> _workers = [];
    private readonly ulong[] _sink = new ulong[64];
    private CountdownEvent _done = null!;
    private Action<int> _work = null!;
    private Action<int> _newConnection = null!;
    private volatile bool _stopping;
    private ConnectionRegistry? _registry;

    [Params(1, 2)]
    public int Threads { get; set; }

    [Params(false, true)]
    public bool Shared { get; set; }

    [Params("Ideal", "Pick", "Register", "RegistryOnly", "MetricsOnly")]
    public string Operation { get; set; } = "Pick";

    [GlobalSetup]
    public void Setup()
    {
        var backends = new[] { Backend("a", 5), Backend("b", 3), Backend("c", 2) };
        var listener = new ListenerRoute(new ResourceKey(ResourceKind.Gateway, "bench", "gw"), "tcp", EquatableArray.Create<string>([]), 8000, new ResourceKey(ResourceKind.TcpRoute, "bench", "r"), EquatableArray.Create(backends));
        var metrics = new ProxyMetrics(meterFactory: null);
        var model = new RouteModel(listener, new ConnectionLimits(null, null, null), admission: null, 16384, (backend, tags) => new EndpointRegistry(TimeProvider.System).Runtime(backend, tags, new PassiveHealthSettings(5, TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(5)), BackendConnectSettings.Resolve(backend.Policy, new LoadBalancingPolicyRegistry([], LoadBalancingPolicies.RoundRobin), new ProxyOptions())));
        var runtime = new ListenerRuntime(BindKey.Of(listener), [], model);
        var backendTags = model.Tags[backends[0]];
        var registry = _registry = new ConnectionRegistry(TimeProvider.System, NullLogger.Instance, TimeSpan.FromHours(1));
        // Each thread's connection is allocated by that thread, as the gateway's are (side by side in memory, two
        // threads' connections would share cache lines no gateway's connections share).
        var connections = new ProxiedConnection[Threads];
        _newConnection = thread => connections[thread] = new ProxiedConnection(new NoConnection(), runtime, model, TimeProvider.System, metrics);
        var sharedPicker = new LockedPicker(backends);
        var sharedRegistry = new SharedCounters();

        _done = new CountdownEvent(Threads);
        _work = (Operation, Shared) switch
        {
            ("Ideal", _) => thread =>
            {
                // Work that shares nothing (a private random sequence): what the machine gives a second thread.
                var x = (ulong)thread + 1;
                for (var i = 0; i < OperationsPerThread; i++)
                {
                    x = (x * 6364136223846793005UL) + 1442695040888963407UL;
                }

                _sink[thread * 16] = x;
            },
            ("Pick", false) => _ =>
            {
                for (var i = 0; i < OperationsPerThread; i++)
                {
                    model.Picker.Next();
                }
            },
            ("Pick", true) => _ =>
            {
                for (var i = 0; i < OperationsPerThread; i++)
                {
                    sharedPicker.Next();
                }
            },
            ("Register", false) => thread =>
            {
                var connection = connections[thread];
                for (var i = 0; i < OperationsPerThread; i++)
                {
                    runtime.Add();
                    registry.Add(connection);
                    metrics.Accepted(model.ListenerTags);
                    metrics.Connected(backendTags, TimeSpan.Zero);
                    metrics.Transferred(model.ListenerTags, backendTags, upload: true, 100);
                    metrics.Transferred(model.ListenerTags, backendTags, upload: false, 100);
                    metrics.Transferred(model.ListenerTags, backendTags, upload: true, 100);
                    metrics.Transferred(model.ListenerTags, backendTags, upload: false, 100);
                    metrics.Closed(model.ListenerTags, TerminationReason.ClientClosed);
                    registry.Remove(connection);
                    runtime.Remove();
                }
            },
            ("Register", true) => thread =>
            {
                var connection = connections[thread];
                for (var i = 0; i < OperationsPerThread; i++)
                {
                    sharedRegistry.Connection(connection);
                }
            },
            ("RegistryOnly", _) => thread =>
            {
                var connection = connections[thread];
                for (var i = 0; i < OperationsPerThread; i++)
                {
                    runtime.Add();
                    registry.Add(connection);
                    registry.Remove(connection);
                    runtime.Remove();
                }
            },
            _ => thread =>
            {
                for (var i = 0; i < OperationsPerThread; i++)
                {
                    metrics.Accepted(model.ListenerTags);
                    metrics.Connected(backendTags, TimeSpan.Zero);
                    metrics.Transferred(model.ListenerTags, backendTags, upload: true, 100);
                    metrics.Transferred(model.ListenerTags, backendTags, upload: false, 100);
                    metrics.Transferred(model.ListenerTags, backendTags, upload: true, 100);
                    metrics.Transferred(model.ListenerTags, backendTags, upload: false, 100);
                    metrics.Closed(model.ListenerTags, TerminationReason.ClientClosed);
                }
            },
        };

        // The threads are started one after another and each takes its stripe before the next starts, so the
        // benchmark's threads have different stripes (as threads on different cores mostly have in the gateway).
        for (var t = 0; t < Threads; t++)
        {
            var thread = t;
            var start = new SemaphoreSlim(0);
            using var ready = new ManualResetEventSlim();
            var worker = new Thread(() =>
            {
                _ = Transport.Concurrency.Stripes.Current;
                _newConnection(thread);
                ready.Set();
                while (true)
                {
                    start.Wait();
                    if (_stopping)
                    {
                        return;
                    }

                    _work(thread);
                    _done.Signal();
                }
            }) { IsBackground = true, Name = $"bench-{t}" };
            worker.Start();
            ready.Wait();
            _workers.Add((worker, start));
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _stopping = true;
        foreach (var (worker, start) in _workers)
        {
            start.Release();
            worker.Join();
            start.Dispose();
        }

        _done.Dispose();

        // The registry owns its heartbeat timer.
        _registry?.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    /// <summary>Every thread does <see cref="OperationsPerThread"/> operations at once; the mean is per operation of one thread.</summary>
    [Benchmark(OperationsPerInvoke = OperationsPerThread)]
    public void Run()
    {
        // The caller blocks rather than spins meanwhile: on two cores a spinning caller would take one from the threads.
        _done.Reset(Threads);
        foreach (var (_, start) in _workers)
        {
            start.Release();
        }

        _done.Wait();
    }

    private static RouteBackend Backend(string name, int weight) =>
        new("bench", name, 9000, weight, EquatableArray.Create<BackendEndpoint>([new BackendEndpoint("127.0.0.1", 9000)]), Problem: null);

    /// <summary>The picker as it was: nginx's running state under one lock.</summary>
    private sealed class LockedPicker(RouteBackend[] backends)
    {
        private readonly long[] _current = new long[backends.Length];
        private readonly long _total = backends.Sum(static b => (long)b.Weight);
        private readonly Lock _lock = new();

        public RouteBackend Next()
        {
            lock (_lock)
            {
                var best = 0;
                for (var i = 0; i < backends.Length; i++)
                {
                    _current[i] += backends[i].Weight;
                    if (_current[i] > _current[best])
                    {
                        best = i;
                    }
                }

                _current[best] -= _total;
                return backends[best];
            }
        }
    }

    /// <summary>The bookkeeping as it was: a dictionary entry per connection and counters every core shares.</summary>
    private sealed class SharedCounters
    {
        private readonly ConcurrentDictionary<long, ProxiedConnection> _connections = new();
        private readonly long[] _closed = new long[16];
        private long _nextId;
        private int _count;
        private int _active;
        private int _listener;
        private long _accepted;
        private long _open;
        private long _backend;
        private long _up;
        private long _down;

        public void Connection(ProxiedConnection connection)
        {
            Interlocked.Increment(ref _active);
            Interlocked.Increment(ref _listener);
            var id = Interlocked.Increment(ref _nextId);
            _connections[id] = connection;
            Interlocked.Increment(ref _count);
            Interlocked.Increment(ref _accepted);
            Interlocked.Increment(ref _open);
            Interlocked.Increment(ref _backend);
            for (var i = 0; i < 2; i++)
            {
                Interlocked.Add(ref _up, 100);
                Interlocked.Add(ref _up, 100); // the backend's total
                Interlocked.Add(ref _down, 100);
                Interlocked.Add(ref _down, 100);
            }

            Interlocked.Decrement(ref _open);
            Interlocked.Increment(ref _closed[1]);
            Interlocked.Decrement(ref _active);
            if (_connections.TryRemove(id, out _))
            {
                Interlocked.Decrement(ref _count);
            }

            Interlocked.Decrement(ref _listener);
        }
    }

    /// <summary>A connection that is never used: the registry only holds it.</summary>
    private sealed class NoConnection : IDuplexConnection
    {
        public EndPoint? LocalEndPoint => null;

        public EndPoint? RemoteEndPoint => null;

        public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken) => ValueTask.FromResult(0);

        public ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public void CompleteSend()
        {
        }

        public void Abort()
        {
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
