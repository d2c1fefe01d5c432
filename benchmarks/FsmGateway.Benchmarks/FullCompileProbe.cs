using System.Diagnostics;
using System.Globalization;
using FsmGateway.Resources;
using FsmGateway.Routing;

namespace FsmGateway.Benchmarks;

/// <summary>
/// Issue 12's full-compile target (benchmarks/README.md): the scale benchmark's cluster (<see cref="LargeSnapshot"/>,
/// 31,001 objects) compiled in full by <see cref="RouteCompiler"/> several times in a row, in three modes taken in
/// turn so that all three run under the same load: the controller's options (<see cref="LargeSnapshot.ControllerOptions"/>:
/// on the thread pool, no endpoints listed), the same listing every endpoint (<see cref="CompilerOptions.ListEndpoints"/>,
/// as a process that serves the table compiles), and the controller's options on one thread
/// (<see cref="CompilerOptions.MaxDegreeOfParallelism"/> = 1). Prints each run's time, allocation (this thread's), GCs
/// and their pauses, then p50, p90, min, max and mean of each mode over the runs after <c>warmUp</c> (tiered JIT: the
/// stages run once per compile, so their optimized code arrives after a few compiles).
/// </summary>
internal static class FullCompileProbe
{
    private static readonly (string Name, CompilerOptions Options)[] Modes =
    [
        ("the controller's options (in parallel, no endpoints listed)", LargeSnapshot.ControllerOptions),
        ("listing endpoints (in parallel)", LargeSnapshot.ControllerOptions with { ListEndpoints = true }),
        ("the controller's options on 1 thread (MaxDegreeOfParallelism = 1)", LargeSnapshot.ControllerOptions with { MaxDegreeOfParallelism = 1 }),
    ];

    public static int Run(int runs, int warmUp)
    {
        Console.WriteLine(GcMode.Describe());
        var snapshot = LargeSnapshot.Build();
        _ = snapshot.Resources;
        var times = new List<(double Ms, int Mode)>();
        for (var i = 0; i < runs; i++)
        {
            // The modes in turn, side by side under the same load.
            var mode = i % Modes.Length;
            var paused = GC.GetTotalPauseDuration();
            var collections = GC.CollectionCount(0);
            var allocated = GC.GetAllocatedBytesForCurrentThread();
            var watch = Stopwatch.StartNew();
            var result = RouteCompiler.Compile(snapshot, Modes[mode].Options, ListenerBindings.AssumeAllBound);
            watch.Stop();
            times.Add((watch.Elapsed.TotalMilliseconds, mode));
            var gcs = GC.CollectionCount(0) - collections;
            var lastGc = gcs > 0 ? GC.GetGCMemoryInfo(GCKind.Any) : default;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"compile {i} ({Modes[mode].Name}): {watch.Elapsed.TotalMilliseconds:F1} ms, {(GC.GetAllocatedBytesForCurrentThread() - allocated) / 1024.0 / 1024.0:F1} MiB allocated, {gcs} GCs pausing {(GC.GetTotalPauseDuration() - paused).TotalMilliseconds:F1} ms{(gcs > 0 ? $" (last: gen{lastGc.Generation}, {lastGc.PromotedBytes / 1024.0 / 1024.0:F1} MiB promoted)" : string.Empty)}; {result.Table.Listeners.Length:N0} listeners, {result.Statuses.Routes.Count:N0} route statuses"));
        }

        for (var mode = 0; mode < Modes.Length; mode++)
        {
            var sorted = times.Skip(warmUp).Where(t => t.Mode == mode).Select(static t => t.Ms).Order().ToList();
            if (sorted.Count > 0)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"full compile with {Modes[mode].Name} over runs {warmUp}..{runs - 1} (the first {warmUp} are JIT warm-up; the first of all, at start, took {times[0].Ms:F1} ms): p50 {sorted[(sorted.Count - 1) / 2]:F1} ms, p90 {sorted[(int)Math.Ceiling(sorted.Count * 0.9) - 1]:F1} ms, min {sorted[0]:F1} ms, max {sorted[^1]:F1} ms, mean {sorted.Average():F1} ms"));
            }
        }

        return 0;
    }
}
