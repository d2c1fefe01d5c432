using System.Diagnostics;
using System.Globalization;
using System.Runtime;
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
/// and their pauses, then p50, p90, min, max and mean of each mode over the runs after the warm-up.
/// </summary>
/// <remarks>
/// The warm-up lasts until the JIT has settled: the stages run once per compile, so tiered compilation reaches their
/// final (tier-1, profile-guided) code only after 30 calls each and a background compile: on the machine the figures
/// come from, 40-100 compiles in, the runs before that up to a quarter slower (benchmarks/README.md, "The JIT's
/// warm-up"). So the warm-up is at least <c>warmUp</c> compiles, and goes on until <see cref="QuietRounds"/> rounds of
/// the three modes in a row compiled no method anew.
/// </remarks>
internal static class FullCompileProbe
{
    private static readonly (string Name, CompilerOptions Options)[] Modes =
    [
        ("the controller's options (in parallel, no endpoints listed)", LargeSnapshot.ControllerOptions),
        ("listing endpoints (in parallel)", LargeSnapshot.ControllerOptions with { ListEndpoints = true }),
        ("the controller's options on 1 thread (MaxDegreeOfParallelism = 1)", LargeSnapshot.ControllerOptions with { MaxDegreeOfParallelism = 1 }),
    ];

    /// <summary>Compiles after which the warm-up ends even if the JIT is still compiling.</summary>
    private const int MaxWarmUp = 300;

    /// <summary>Rounds of the modes in a row that must compile no method anew before the warm-up ends.</summary>
    private const int QuietRounds = 3;

    public static int Run(int runs, int warmUp)
    {
        Console.WriteLine(GcMode.Describe());
        var snapshot = LargeSnapshot.Build();
        _ = snapshot.Resources;
        var times = new List<(double Ms, int Mode)>();
        var jitted = -1L;
        var settledAt = -1;
        for (var i = 0; settledAt < 0 || i < settledAt + runs; i++)
        {
            // Settled: at least warmUp compiles, the last QuietRounds rounds of the modes without a method compiled anew.
            if (settledAt < 0 && i >= warmUp && i % (QuietRounds * Modes.Length) == 0)
            {
                var now = JitInfo.GetCompiledMethodCount();
                if (now == jitted || i >= MaxWarmUp)
                {
                    settledAt = i;
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"warm-up done after {i} compiles ({(now == jitted ? $"no method compiled anew in the last {QuietRounds} rounds" : $"still compiling at the cap of {MaxWarmUp}")}); measuring {runs}"));
                }

                jitted = now;
            }

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
            Print("warm-up", times.Take(settledAt).Skip(1), mode, $"runs 1..{settledAt - 1}");
            Print("full compile", times.Skip(settledAt), mode, $"runs {settledAt}..{times.Count - 1}, after the warm-up; the first of all, at start, took {times[0].Ms:F1} ms");
        }

        return 0;
    }

    private static void Print(string what, IEnumerable<(double Ms, int Mode)> times, int mode, string runs)
    {
        var sorted = times.Where(t => t.Mode == mode).Select(static t => t.Ms).Order().ToList();
        if (sorted.Count > 0)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{what} with {Modes[mode].Name} ({runs}): p50 {sorted[(sorted.Count - 1) / 2]:F1} ms, p90 {sorted[(int)Math.Ceiling(sorted.Count * 0.9) - 1]:F1} ms, min {sorted[0]:F1} ms, max {sorted[^1]:F1} ms, mean {sorted.Average():F1} ms"));
        }
    }
}
