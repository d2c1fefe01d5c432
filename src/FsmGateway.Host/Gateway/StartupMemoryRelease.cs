using FsmGateway.Status;

namespace FsmGateway.Host.Gateway;

/// <summary>
/// Returns start-up's memory to the OS once the first config is applied (its listeners bound): start-up allocates
/// ~20 MB of short-lived objects (DI, configuration, Kestrel, the manifests and their compilation) and grows the heap
/// to hold them, and an idle gateway need not keep those pages. One compacting collection, once, after the first status
/// set (benchmarks/README.md, idle RSS); every later status set costs nothing.
/// </summary>
internal sealed class StartupMemoryRelease : IStatusSink
{
    private int _released;

    public ValueTask PublishAsync(StatusSet statuses, CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        }

        return ValueTask.CompletedTask;
    }
}
