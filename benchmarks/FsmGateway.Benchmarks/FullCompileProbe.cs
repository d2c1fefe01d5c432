using System.Diagnostics;
using System.Globalization;
using FsmGateway.Resources;
using FsmGateway.Routing;

namespace FsmGateway.Benchmarks;

/// <summary>
/// Issue 12's full-compile target (benchmarks/README.md): the scale benchmark's cluster (<see cref="LargeSnapshot"/>,
/// 31,001 objects) compiled in full by <see cref="RouteCompiler"/> with the controller's options, several times in a
/// row, every other one on one thread (<see cref="CompilerOptions.MaxDegreeOfParallelism"/> = 1) and the others in
/// parallel (the default), so both modes run under the same load; prints each run's time, allocation (this thread's),
/// GCs and their pauses, then p50, p90, min, max and mean of each mode over the runs after <c>warmUp</c> (tiered JIT:
/// the stages run once per compile, so their optimized code arrives after a few compiles).
/// </summary>
internal static class FullCompileProbe
{
    public static int Run(int runs, int warmUp)
    {
        Console.WriteLine(GcMode.Describe());
        var snapshot = LargeSnapshot.Build();
        _ = snapshot.Resources;
        var options = new CompilerOptions { ControllerName = GatewayApi.DefaultControllerName, ImplicitGatewayClassName = GatewayApi.DefaultGatewayClassName, GatewaysHaveOwnAddresses = true };
        var times = new List<(double Ms, bool OneThread)>();
        for (var i = 0; i < runs; i++)
        {
            // Every other compile on one thread: the two modes side by side, under the same load.
            var oneThread = i % 2 == 1;
            options = options with { MaxDegreeOfParallelism = oneThread ? 1 : -1 };
            var paused = GC.GetTotalPauseDuration();
            var collections = GC.CollectionCount(0);
            var allocated = GC.GetAllocatedBytesForCurrentThread();
            var watch = Stopwatch.StartNew();
            var result = RouteCompiler.Compile(snapshot, options, ListenerBindings.AssumeAllBound);
            watch.Stop();
            times.Add((watch.Elapsed.TotalMilliseconds, oneThread));
            var gcs = GC.CollectionCount(0) - collections;
            var lastGc = gcs > 0 ? GC.GetGCMemoryInfo(GCKind.Any) : default;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"compile {i} ({(oneThread ? "1 thread" : "parallel")}): {watch.Elapsed.TotalMilliseconds:F1} ms, {(GC.GetAllocatedBytesForCurrentThread() - allocated) / 1024.0 / 1024.0:F1} MiB allocated, {gcs} GCs pausing {(GC.GetTotalPauseDuration() - paused).TotalMilliseconds:F1} ms{(gcs > 0 ? $" (last: gen{lastGc.Generation}, {lastGc.PromotedBytes / 1024.0 / 1024.0:F1} MiB promoted)" : string.Empty)}; {result.Table.Listeners.Length:N0} listeners, {result.Statuses.Routes.Count:N0} route statuses"));
        }

        foreach (var oneThread in new[] { false, true })
        {
            var sorted = times.Skip(warmUp).Where(t => t.OneThread == oneThread).Select(static t => t.Ms).Order().ToList();
            if (sorted.Count > 0)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"full compile {(oneThread ? "on 1 thread (MaxDegreeOfParallelism = 1)" : "in parallel (the default)")} over runs {warmUp}..{runs - 1} (the first {warmUp} are JIT warm-up; the first of all, at start, took {times[0].Ms:F1} ms): p50 {sorted[(sorted.Count - 1) / 2]:F1} ms, p90 {sorted[(int)Math.Ceiling(sorted.Count * 0.9) - 1]:F1} ms, min {sorted[0]:F1} ms, max {sorted[^1]:F1} ms, mean {sorted.Average():F1} ms"));
            }
        }

        return 0;
    }
}
