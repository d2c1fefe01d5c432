extern alias host;

using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Diagnostics;
using System.Globalization;
using FsmGateway.Configuration;
using FsmGateway.Resources;
using FsmGateway.Routing;
using FsmGateway.Testing;
using FsmGateway.Transport.Hosting;
using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using ConfigStreamServerOptions = host::FsmGateway.Host.ControlPlane.ConfigStreamServerOptions;
using ConfigStreamService = host::FsmGateway.Host.ControlPlane.ConfigStreamService;
using ControllerMessage = host::FsmGateway.Transport.ControlPlane.Protocol.ControllerMessage;
using DataPlaneMessage = host::FsmGateway.Transport.ControlPlane.Protocol.DataPlaneMessage;
using DataPlaneReports = host::FsmGateway.Host.ControlPlane.DataPlaneReports;
using GatewayClosureFeed = host::FsmGateway.Host.ControlPlane.GatewayClosureFeed;
using Hello = host::FsmGateway.Transport.ControlPlane.Protocol.Hello;

namespace FsmGateway.Benchmarks;

/// <summary>
/// Issue 12's scale benchmark (benchmarks/README.md), in process: the generated cluster of <see cref="LargeSnapshot"/>
/// (1,000 Gateways × 10 listeners, 10,000 TCPRoutes, 10,000 Services with 10 endpoints each) is compiled as the
/// controller compiles it and streamed by the controller's real <see cref="ConfigStreamService"/> to one in-process
/// data-plane subscriber per Gateway (1,000). Then EndpointSlice changes, one at a time: each is applied to the
/// snapshot (the reducer), compiled, published as the applied snapshot (what the controller's pipeline does after its
/// debounce), and timed until the subscriber of the Gateway whose route reaches that Service holds the new revision.
/// Prints the full compile, the per-change costs (reducer, compile, push), their p50/p99/max, the bytes pushed to
/// affected and unaffected subscribers, and the controller's memory. The debounce is not included: it is a constant
/// (FsmGatewayOptions.Debounce, 100 ms by default) added in front of every change.
/// </summary>
internal static class ScaleBenchmark
{
    public static async Task<int> RunAsync(int subscribers, int changes, int policyPercent = 0)
    {
        Console.WriteLine(GcMode.Describe());
        var total = Stopwatch.StartNew();
        var snapshot = LargeSnapshot.Build(policyPercent: policyPercent);
        var policies = policyPercent > 0 ? $"; policies on {policyPercent}% of Services and Gateways: {LargeSnapshot.Policies(policyPercent).Count():N0}" : string.Empty;
        Console.WriteLine($"cluster: {snapshot.Resources.Count:N0} objects ({LargeSnapshot.Gateways:N0} Gateways × {LargeSnapshot.ListenersPerGateway} listeners, {LargeSnapshot.Routes:N0} TCPRoutes, Services and EndpointSlices of {LargeSnapshot.EndpointsPerService} endpoints{policies}), built in {total.Elapsed.TotalSeconds:F1} s");

        var compilerOptions = LargeSnapshot.ControllerOptions;
        var compiler = new Compiler(compilerOptions);

        // Full compiles (what the controller does at start and, today, after every change).
        var full = new List<double>();
        CompilationResult result = null!;
        for (var i = 0; i < 5; i++)
        {
            var watch = Stopwatch.StartNew();
            result = RouteCompiler.Compile(snapshot, compilerOptions, ListenerBindings.AssumeAllBound);
            full.Add(watch.Elapsed.TotalMilliseconds);
        }

        Console.WriteLine($"full compile: {string.Join(", ", full.Select(static t => t.ToString("F1", CultureInfo.InvariantCulture)))} ms ({result.Table.Listeners.Length:N0} listeners)");
        result = compiler.Compile(snapshot);

        // The controller's stream, fed with the applied snapshots, and one subscriber per Gateway.
        var state = new GatewayRuntimeState();
        var reports = new DataPlaneReports(provisions: true);
        using var lifetime = new StoppableLifetime();
        using var closures = new GatewayClosureFeed(state.AppliedSnapshots, Options.Create(new FsmGatewayOptions { Mode = GatewayMode.Controller }), Options.Create(new GatewayControllerOptions()), NullLogger<GatewayClosureFeed>.Instance);
        var service = new ConfigStreamService(
            closures,
            reports,
            new host::FsmGateway.Host.ControlPlane.AnyDataPlane(),
            Options.Create(new ConfigStreamServerOptions { Identity = "scale-benchmark" }),
            lifetime,
            TimeProvider.System,
            NullLogger<ConfigStreamService>.Instance);
        state.Applied(snapshot, result, ListenerBindings.AssumeAllBound, notServing: null);

        using var stop = new CancellationTokenSource();
        var planes = Enumerable.Range(0, subscribers).Select(i => new Subscriber($"team-{i % LargeSnapshot.Gateways % 50}", $"gw-{i % LargeSnapshot.Gateways}", i)).ToList();
        var syncing = Stopwatch.StartNew();
        var calls = planes.Select(p => Task.Run(() => service.Subscribe(p, p, new InProcessCallContext(stop.Token)))).ToList();
        var synced = Task.WhenAll(planes.Select(p => p.WaitForAsync(snapshot.Revision)));
        if (await Task.WhenAny(synced, Task.WhenAny(calls)).ConfigureAwait(false) != synced)
        {
            await Task.WhenAny(calls).Unwrap().ConfigureAwait(false);
            throw new InvalidOperationException("a subscription ended before it was synced");
        }

        Console.WriteLine($"{subscribers:N0} subscribers synced in {syncing.Elapsed.TotalSeconds:F1} s, {planes.Sum(static p => p.Bytes) / 1024.0 / 1024.0:F1} MiB pushed ({planes.Average(static p => p.Objects):F0} objects each)");

        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        var heap = GC.GetTotalMemory(forceFullCollection: true);
        using (var self = Process.GetCurrentProcess())
        {
            Console.WriteLine($"controller memory with {subscribers:N0} subscribers: managed heap {heap / 1024.0 / 1024.0:F0} MiB, RSS {self.WorkingSet64 / 1024.0 / 1024.0:F0} MiB, peak RSS {self.PeakWorkingSet64 / 1024.0 / 1024.0:F0} MiB");
        }

        // EndpointSlice changes, one at a time.
        var random = new Random(12);
        var reducer = new List<double>();
        var compile = new List<double>();
        var push = new List<double>();
        var endToEnd = new List<double>();
        var affectedBytes = new List<long>();
        foreach (var plane in planes)
        {
            plane.ResetCounters();
        }

        var affectedPlanes = new HashSet<Subscriber>();
        for (var c = 0; c < changes; c++)
        {
            // A route of a Gateway that has a subscriber (each Gateway has 10 routes, route % 1,000 = Gateway).
            var gateway = random.Next(Math.Min(subscribers, LargeSnapshot.Gateways));
            var route = gateway + (LargeSnapshot.Gateways * random.Next(LargeSnapshot.ListenersPerGateway));
            var affected = planes.Where(p => p.Gateway == gateway).ToList();
            affectedPlanes.UnionWith(affected);
            var before = affected.Sum(static p => p.Bytes);
            var change = new ConfigEvent.Upserted("default", Slice(route, c + 1));

            var start = Stopwatch.GetTimestamp();
            snapshot = snapshot.Apply(change);
            _ = snapshot.Resources;
            var reduced = Stopwatch.GetTimestamp();
            result = compiler.Compile(snapshot);
            var compiled = Stopwatch.GetTimestamp();
            state.Applied(snapshot, result, ListenerBindings.AssumeAllBound, notServing: null);
            await Task.WhenAll(affected.Select(p => p.WaitForAsync(snapshot.Revision))).ConfigureAwait(false);
            var held = affected.Max(p => p.ReceivedAt);

            reducer.Add(Stopwatch.GetElapsedTime(start, reduced).TotalMilliseconds);
            compile.Add(Stopwatch.GetElapsedTime(reduced, compiled).TotalMilliseconds);
            push.Add(Stopwatch.GetElapsedTime(compiled, held).TotalMilliseconds);
            endToEnd.Add(Stopwatch.GetElapsedTime(start, held).TotalMilliseconds);
            affectedBytes.Add(affected.Sum(static p => p.Bytes) - before);
        }

        // Let every subscriber loop finish with the last snapshot before counting what the unaffected ones received.
        await Task.Delay(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
        var unaffected = planes.Where(p => !affectedPlanes.Contains(p)).ToList();
        var endpointIncremental = compiler.Incremental;
        var unaffectedBytes = unaffected.Sum(static p => p.Bytes);
        var unaffectedBatches = unaffected.Sum(static p => p.Batches);

        // Route changes (one route's backend weight), through the same pipeline: compiled per Gateway, then streamed.
        var routeCompile = new List<double>();
        var routeEndToEnd = new List<double>();
        var routeGateways = new List<int>();
        compiler.ResetCounters();
        for (var c = 0; c < changes; c++)
        {
            var gateway = random.Next(Math.Min(subscribers, LargeSnapshot.Gateways));
            var route = gateway + (LargeSnapshot.Gateways * random.Next(LargeSnapshot.ListenersPerGateway));
            var affected = planes.Where(p => p.Gateway == gateway).ToList();
            var change = new ConfigEvent.Upserted("default", Route(route, weight: 2 + (c % 50)));

            var start = Stopwatch.GetTimestamp();
            snapshot = snapshot.Apply(change);
            _ = snapshot.Resources;
            var reduced = Stopwatch.GetTimestamp();
            result = compiler.Compile(snapshot);
            var compiled = Stopwatch.GetTimestamp();
            routeGateways.Add(compiler.LastRecompiledGateways);
            state.Applied(snapshot, result, ListenerBindings.AssumeAllBound, notServing: null);
            await Task.WhenAll(affected.Select(p => p.WaitForAsync(snapshot.Revision))).ConfigureAwait(false);
            var held = affected.Max(p => p.ReceivedAt);
            routeCompile.Add(Stopwatch.GetElapsedTime(reduced, compiled).TotalMilliseconds);
            routeEndToEnd.Add(Stopwatch.GetElapsedTime(start, held).TotalMilliseconds);
        }

        var routeIncremental = compiler.PerGateway;

        // Data-plane reports: the controller compiles with what data planes reported binding (ListenerBindings.Reported);
        // each report changes one Gateway's outcome for one port. The first compile with reports is a full one.
        var reportCompile = new List<double>();
        var outcomes = Enumerable.Range(0, LargeSnapshot.Gateways).ToImmutableSortedDictionary(
            static g => new ResourceKey(ResourceKind.Gateway, $"team-{g % 50}", $"gw-{g}"),
            static g => Enumerable.Range(0, LargeSnapshot.ListenersPerGateway).ToImmutableSortedDictionary(l => 10_000 + (g * LargeSnapshot.ListenersPerGateway) + l, _ => BindOutcome.Bound));
        compiler.Bindings = ListenerBindings.Reported(outcomes, BindOutcome.NotYetBound);
        compiler.Compile(snapshot);
        compiler.ResetCounters();
        for (var c = 0; c < changes; c++)
        {
            var gateway = random.Next(LargeSnapshot.Gateways);
            var key = new ResourceKey(ResourceKind.Gateway, $"team-{gateway % 50}", $"gw-{gateway}");
            var port = 10_000 + (gateway * LargeSnapshot.ListenersPerGateway) + random.Next(LargeSnapshot.ListenersPerGateway);
            var ports = outcomes[key];
            outcomes = outcomes.SetItem(key, ports.SetItem(port, ports[port].State == BindState.Bound ? BindOutcome.Failed("address already in use") : BindOutcome.Bound));
            compiler.Bindings = ListenerBindings.Reported(outcomes, BindOutcome.NotYetBound);
            var start = Stopwatch.GetTimestamp();
            compiler.Compile(snapshot);
            reportCompile.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }

        var reportIncremental = compiler.PerGateway;

        // Policy changes (a BackendLBPolicy's algorithm flipped), when the cluster has policies: per Gateway as well.
        var policyCompile = new List<double>();
        var policyGateways = new List<int>();
        compiler.ResetCounters();
        if (policyPercent > 0)
        {
            var every = Math.Max(2, 100 / policyPercent);
            for (var c = 0; c < changes; c++)
            {
                var route = random.Next(LargeSnapshot.Routes / every) * every;
                var current = (BackendLbPolicy)snapshot.Resources[LargeSnapshot.BalancerPolicy(route, "LeastLoad").Key];
                snapshot = snapshot.Apply(new ConfigEvent.Upserted("default", LargeSnapshot.BalancerPolicy(route, current.Algorithm == "LeastLoad" ? "RoundRobin" : "LeastLoad")));
                _ = snapshot.Resources;
                var start = Stopwatch.GetTimestamp();
                compiler.Compile(snapshot);
                policyCompile.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                policyGateways.Add(compiler.LastRecompiledGateways);
            }
        }

        var policyIncremental = compiler.PerGateway;
        Console.WriteLine($"{changes} EndpointSlice changes (one endpoint address each; debounce not included):");
        Console.WriteLine($"  reducer (apply + merged view): {Percentiles(reducer)}");
        Console.WriteLine($"  compile:                       {Percentiles(compile)} ({endpointIncremental} of {changes} incremental)");
        Console.WriteLine($"  applied -> subscriber holds:   {Percentiles(push)}");
        Console.WriteLine($"  event -> subscriber holds:     {Percentiles(endToEnd)}");
        Console.WriteLine($"  bytes pushed per change to its affected subscriber(s): {affectedBytes.Average():F0} B average, {affectedBytes.Max()} B max");
        Console.WriteLine($"  bytes pushed to the {unaffected.Count:N0} unaffected subscribers over all changes: {unaffectedBytes} B in {unaffectedBatches} batches");
        Console.WriteLine($"{changes} route changes (one TCPRoute's backend weight each; debounce not included):");
        Console.WriteLine($"  compile:                       {Percentiles(routeCompile)} ({routeIncremental} of {changes} per Gateway, {routeGateways.Average():F1} Gateways recompiled on average)");
        Console.WriteLine($"  event -> subscriber holds:     {Percentiles(routeEndToEnd)}");
        Console.WriteLine($"{changes} data-plane reports (one listener's bind outcome each):");
        Console.WriteLine($"  compile:                       {Percentiles(reportCompile)} ({reportIncremental} of {changes} per Gateway)");
        if (policyCompile.Count > 0)
        {
            Console.WriteLine($"{changes} policy changes (one BackendLBPolicy's algorithm each):");
            Console.WriteLine($"  compile:                       {Percentiles(policyCompile)} ({policyIncremental} of {changes} per Gateway, {policyGateways.Average():F1} Gateways recompiled on average)");
        }

        using (var self = Process.GetCurrentProcess())
        {
            Console.WriteLine($"controller memory after the changes: managed heap {GC.GetTotalMemory(forceFullCollection: true) / 1024.0 / 1024.0:F0} MiB, peak RSS {self.PeakWorkingSet64 / 1024.0 / 1024.0:F0} MiB");
        }

        await stop.CancelAsync().ConfigureAwait(false);
        lifetime.StopApplication();
        await Task.WhenAll(calls).ConfigureAwait(false);
        Console.WriteLine($"total {total.Elapsed.TotalSeconds:F1} s");
        return 0;
    }

    /// <summary>Service <paramref name="route"/>'s EndpointSlice with one endpoint address moved (version <paramref name="version"/>).</summary>
    private static EndpointSlice Slice(int route, int version)
    {
        var ns = $"team-{route % LargeSnapshot.Gateways % 50}";
        return new EndpointSlice(
            new ObjectMeta(ns, $"svc-{route}-abcde"),
            $"svc-{route}",
            "IPv4",
            [new EndpointPort("tcp", 8080, "TCP")],
            [
                .. Enumerable.Range(0, LargeSnapshot.EndpointsPerService - 1).Select(e => new Endpoint([$"10.{route / 256 % 256}.{route % 256}.{e + 1}"], true)),
                new Endpoint([$"10.{route / 256 % 256}.{route % 256}.{100 + (version % 100)}"], true),
            ]);
    }

    /// <summary>TCPRoute <paramref name="route"/> as <see cref="LargeSnapshot"/> builds it, with its backend's weight set to <paramref name="weight"/>.</summary>
    private static TcpRoute Route(int route, int weight)
    {
        var g = route % LargeSnapshot.Gateways;
        var ns = $"team-{g % 50}";
        return new TcpRoute(
            new ObjectMeta(ns, $"route-{route}") { CreationTimestamp = new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero).AddSeconds(route) },
            [new ParentReference(null, null, null, $"gw-{g}", $"l{route / LargeSnapshot.Gateways}", null)],
            [new TcpRouteRule([new BackendReference(null, null, ns, $"svc-{route}", 80, weight)])]);
    }

    private static string Percentiles(List<double> values)
    {
        var sorted = values.Order().ToList();
        double At(double q) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(q * sorted.Count) - 1)];
        return string.Create(CultureInfo.InvariantCulture, $"p50 {At(0.50):F3} ms, p99 {At(0.99):F3} ms, max {sorted[^1]:F3} ms");
    }

    /// <summary>What the controller's pipeline calls to compile each applied snapshot (GatewayHostedService).</summary>
    private sealed class Compiler(CompilerOptions options)
    {
        private readonly IncrementalRouteCompiler _compiler = new();

        public int Incremental { get; private set; }

        public int PerGateway { get; private set; }

        public int LastRecompiledGateways => _compiler.LastRecompiledGateways;

        /// <summary>What data planes reported binding; every port bound until a report says otherwise.</summary>
        public ListenerBindings Bindings { get; set; } = ListenerBindings.AssumeAllBound;

        public void ResetCounters() => (Incremental, PerGateway) = (0, 0);

        public CompilationResult Compile(ConfigSnapshot snapshot)
        {
            var result = _compiler.Compile(snapshot, options, Bindings);
            Incremental += _compiler.LastWasIncremental ? 1 : 0;
            PerGateway += _compiler.LastWasPerGateway ? 1 : 0;
            return result;
        }
    }

    /// <summary>An in-process data plane: says Hello for its Gateway, then only receives; counts what it is sent.</summary>
    private sealed class Subscriber(string ns, string name, int index) : IAsyncStreamReader<DataPlaneMessage>, IServerStreamWriter<ControllerMessage>
    {
        private readonly ConcurrentDictionary<long, TaskCompletionSource> _waiters = new();
        private bool _helloSent;
        private long _held = -1;

        public int Gateway { get; } = int.Parse(name.AsSpan(3), CultureInfo.InvariantCulture);

        public long Bytes { get; private set; }

        public long Batches { get; private set; }

        public long Objects { get; private set; }

        public long ReceivedAt { get; private set; }

        public DataPlaneMessage Current { get; private set; } = null!;

        public WriteOptions? WriteOptions { get; set; }

        public void ResetCounters() => (Bytes, Batches, Objects) = (0, 0, 0);

        public Task WaitForAsync(long revision)
        {
            var waiter = _waiters.GetOrAdd(revision, static _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            if (Volatile.Read(ref _held) >= revision)
            {
                waiter.TrySetResult();
            }

            return waiter.Task;
        }

        public async Task<bool> MoveNext(CancellationToken cancellationToken)
        {
            if (!_helloSent)
            {
                _helloSent = true;
                Current = new DataPlaneMessage { Hello = new Hello { ProtocolVersion = 1, GatewayNamespace = ns, GatewayName = name, DataPlaneId = $"plane-{index}" } };
                return true;
            }

            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
            return false;
        }

        public Task WriteAsync(ControllerMessage message, CancellationToken cancellationToken) => WriteAsync(message);

        public Task WriteAsync(ControllerMessage message)
        {
            if (message.Batch is { } batch)
            {
                Bytes += message.CalculateSize();
                Batches++;
                Objects += batch.Upserts.Count + batch.Deletes.Count;
                if (!batch.Reset || batch.Synced)
                {
                    ReceivedAt = Stopwatch.GetTimestamp();
                    Volatile.Write(ref _held, batch.Revision);
                    foreach (var (revision, waiter) in _waiters)
                    {
                        if (revision <= batch.Revision)
                        {
                            waiter.TrySetResult();
                        }
                    }
                }
            }

            return Task.CompletedTask;
        }
    }
}
