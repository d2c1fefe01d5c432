using System.Diagnostics;
using System.Globalization;
using FsmGateway.Resources;
using FsmGateway.Routing;

namespace FsmGateway.Benchmarks;

/// <summary>
/// Issue 12's full-compile target (benchmarks/README.md): the scale benchmark's cluster (<see cref="LargeSnapshot"/>,
/// 31,001 objects) compiled in full by <see cref="RouteCompiler"/> with the controller's options, several times in a
/// row; prints each run's time, allocation and GC pauses, then p50 and max over all but the first (JIT) run.
/// </summary>
internal static class FullCompileProbe
{
    public static int Run(int runs)
    {
        var snapshot = LargeSnapshot.Build();
        _ = snapshot.Resources;
        var options = new CompilerOptions { ControllerName = GatewayApi.DefaultControllerName, ImplicitGatewayClassName = GatewayApi.DefaultGatewayClassName, GatewaysHaveOwnAddresses = true };
        var times = new List<double>();
        for (var i = 0; i < runs; i++)
        {
            var paused = GC.GetTotalPauseDuration();
            var allocated = GC.GetAllocatedBytesForCurrentThread();
            var watch = Stopwatch.StartNew();
            var result = RouteCompiler.Compile(snapshot, options, ListenerBindings.AssumeAllBound);
            watch.Stop();
            times.Add(watch.Elapsed.TotalMilliseconds);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"compile {i}: {watch.Elapsed.TotalMilliseconds:F1} ms, {(GC.GetAllocatedBytesForCurrentThread() - allocated) / 1024.0 / 1024.0:F1} MiB allocated, GC pauses {(GC.GetTotalPauseDuration() - paused).TotalMilliseconds:F1} ms; {result.Table.Listeners.Length:N0} listeners, {result.Statuses.Routes.Count:N0} route statuses"));
        }

        var sorted = times.Skip(1).Order().ToList();
        if (sorted.Count > 0)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"full compile over runs 1..{runs - 1}: p50 {sorted[(sorted.Count - 1) / 2]:F1} ms, min {sorted[0]:F1} ms, max {sorted[^1]:F1} ms"));
        }

        return 0;
    }
}
