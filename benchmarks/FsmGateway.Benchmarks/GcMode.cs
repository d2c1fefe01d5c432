using System.Runtime;

namespace FsmGateway.Benchmarks;

/// <summary>
/// The GC this process runs with, printed first by the controller's probes (<c>--full-compile</c>, <c>--scale</c>):
/// their figures are the controller's only with the controller's GC, which deploy/20-controller.yaml sets in the
/// environment (<c>DOTNET_gcServer=1</c>), so a run without it says so.
/// </summary>
internal static class GcMode
{
    public static string Describe() =>
        $"GC: {(GCSettings.IsServerGC ? "server" : "workstation")}, {(GCSettings.LatencyMode == GCLatencyMode.Batch ? "non-concurrent" : "concurrent")}, {Environment.ProcessorCount} processors" +
        (GCSettings.IsServerGC ? string.Empty : " (the controller runs server GC: DOTNET_gcServer=1, deploy/20-controller.yaml)");
}
