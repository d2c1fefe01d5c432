using System.Diagnostics;
using BenchmarkDotNet.Running;
using FsmGateway.Benchmarks;
using FsmGateway.Routing;

if (args is ["--smoke"])
{
    // A quick look without BenchmarkDotNet: build the large snapshot, compile it a few times, print timings.
    var snapshot = LargeSnapshot.Build(invalidEvery: 100);
    _ = snapshot.Resources.Count;
    for (var i = 0; i < 10; i++)
    {
        var pausedBefore = GC.GetTotalPauseDuration();
        var gcBefore = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2));
        var before = GC.GetAllocatedBytesForCurrentThread();
        var watch = Stopwatch.StartNew();
        var result = RouteCompiler.Compile(snapshot);
        watch.Stop();
        Console.WriteLine($"compile {i}: {watch.Elapsed.TotalMilliseconds:F1} ms, {(GC.GetAllocatedBytesForCurrentThread() - before) / 1024 / 1024} MiB allocated, {result.Table.Listeners.Length} listeners, {result.Diagnostics.Length} diagnostics; GC pauses {(GC.GetTotalPauseDuration() - pausedBefore).TotalMilliseconds:F1} ms, collections gen0/1/2 {GC.CollectionCount(0) - gcBefore.Item1}/{GC.CollectionCount(1) - gcBefore.Item2}/{GC.CollectionCount(2) - gcBefore.Item3}");
    }

    // How much of the allocation is output that stays alive.
    var baseline = GC.GetTotalMemory(forceFullCollection: true);
    var kept = RouteCompiler.Compile(snapshot);
    var retained = GC.GetTotalMemory(forceFullCollection: true) - baseline;
    Console.WriteLine($"retained by one result: {retained / 1024 / 1024} MiB ({kept.Table.Listeners.Length} listeners)");
    return 0;
}

if (args is ["--full-compile", ..])
{
    // Issue 12's full-compile target (benchmarks/README.md): the scale cluster compiled as the controller compiles it,
    // [runs] times after a warm-up of at least [warm-up] compiles that lasts until the JIT has settled.
    return FullCompileProbe.Run(
        args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 20,
        args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 3);
}

if (args is ["--config-change", ..])
{
    // Issue #6's config-change target: an endpoint change reaching new connections, and a live connection surviving.
    return await ConfigChangeProbe.RunAsync(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 50);
}

if (args is ["--proxy-protocol-rate", ..])
{
    // New-connection rate with the PROXY protocol off and on (benchmarks/README.md): [connections per round] [rounds] [concurrency].
    int Arg(int index, int fallback) => args.Length > index ? int.Parse(args[index], System.Globalization.CultureInfo.InvariantCulture) : fallback;
    return await ProxyProtocolRateProbe.RunAsync(Arg(1, 20_000), Arg(2, 5), Arg(3, 32));
}

if (args is ["--health-probe-cost", var protocol, var count, var seconds])
{
    // Issue #15's target: 1,000 endpoints probed every second cost under 5 % of one core (benchmarks/README.md).
    return await HealthProbeCost.RunAsync(protocol, int.Parse(count, System.Globalization.CultureInfo.InvariantCulture), int.Parse(seconds, System.Globalization.CultureInfo.InvariantCulture));
}

if (args is ["--scale", ..])
{
    // Issue 12's scale targets (benchmarks/README.md): [subscribers, default 1,000] [EndpointSlice changes, default 200]
    // [percent of Services and Gateways with policies, default 0].
    int ScaleArg(int index, int fallback) => args.Length > index ? int.Parse(args[index], System.Globalization.CultureInfo.InvariantCulture) : fallback;
    return await ScaleBenchmark.RunAsync(ScaleArg(1, 1_000), ScaleArg(2, 200), ScaleArg(3, 0));
}

if (args is ["--data-plane-rss", var dataPlane, ..])
{
    // Issue 12's claim: a data plane's RSS with a 10-object and a 100,000-object cluster (benchmarks/README.md): <fsm-gateway executable> [runs].
    return await DataPlaneRss.RunAsync(dataPlane, args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 3);
}

if (args is ["--health-probe-server", var serverPort, var serverProtocol])
{
    return await HealthProbeCost.ServeAsync(int.Parse(serverPort, System.Globalization.CultureInfo.InvariantCulture), serverProtocol == "http");
}

BenchmarkSwitcher.FromAssembly(typeof(CompilerBenchmarks).Assembly).Run(args);
return 0;
