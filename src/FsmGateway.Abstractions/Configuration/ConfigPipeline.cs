using System.Reactive.Concurrency;
using System.Reactive.Linq;
using FsmGateway.Reactive;

namespace FsmGateway.Configuration;

/// <summary>
/// Sources to snapshots: events merged, reduced into <see cref="ConfigSnapshot"/>s, held back until every source
/// has synced once (so a gateway never starts by serving a table it will replace at once), then debounced with a
/// maximum delay. The first complete snapshot is emitted at once; later ones after the debounce.
/// The stream never errs and never completes while subscribed: a source that faults is reported and subscribed again
/// (keeping its last contents meanwhile), and an event that cannot be applied is reported and skipped.
/// </summary>
public static class ConfigPipeline
{
    /// <summary>Builds the snapshot stream of <paramref name="sources"/>.</summary>
    /// <param name="sources">The config sources; their names must differ.</param>
    /// <param name="quiet">How long changes must pause before a new snapshot is emitted.</param>
    /// <param name="maxDelay">The longest a change may wait under constant churn.</param>
    /// <param name="scheduler">The scheduler for the debounce timers.</param>
    /// <returns>Snapshots, each a complete view of every source.</returns>
    /// <exception cref="ArgumentException">Two sources share a name.</exception>
    public static IObservable<ConfigSnapshot> Snapshots(IReadOnlyCollection<IConfigSource> sources, TimeSpan quiet, TimeSpan maxDelay, IScheduler scheduler) =>
        Snapshots(sources, quiet, maxDelay, scheduler, faulted: null);

    /// <summary>Builds the snapshot stream of <paramref name="sources"/>, telling <paramref name="faulted"/> of every contained fault.</summary>
    /// <param name="sources">The config sources; their names must differ.</param>
    /// <param name="quiet">How long changes must pause before a new snapshot is emitted.</param>
    /// <param name="maxDelay">The longest a change may wait under constant churn.</param>
    /// <param name="scheduler">The scheduler for the debounce and resubscription timers.</param>
    /// <param name="faulted">Told when a source faults or an event cannot be applied; the pipeline goes on either way.</param>
    /// <returns>Snapshots, each a complete view of every source.</returns>
    /// <exception cref="ArgumentException">Two sources share a name.</exception>
    public static IObservable<ConfigSnapshot> Snapshots(
        IReadOnlyCollection<IConfigSource> sources,
        TimeSpan quiet,
        TimeSpan maxDelay,
        IScheduler scheduler,
        Action<ConfigSourceFault>? faulted)
    {
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentNullException.ThrowIfNull(scheduler);
        var names = sources.Select(static s => s.Name).ToArray();
        var duplicate = names.GroupBy(static n => n, StringComparer.Ordinal).FirstOrDefault(static g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new ArgumentException($"Two config sources are named '{duplicate.Key}'; source names must be unique.", nameof(sources));
        }

        var report = faulted ?? (static _ => { });
        return sources
            .Zip(names, (source, name) => FaultContainedSource.Events(source, name, scheduler, report))
            .Merge()
            .Scan(ConfigSnapshot.Empty, (snapshot, change) => ApplyContained(snapshot, change, report))
            .DistinctUntilChanged(static s => s.Revision)
            .Where(s => s.HasSynced(names))
            .Publish(synced => synced.Take(1).Merge(synced.Skip(1).DebounceWithMaxDelay(quiet, maxDelay, scheduler)));
    }

    /// <summary>Applies <paramref name="change"/>; one that throws is reported and skipped, keeping the snapshot as it was.</summary>
    private static ConfigSnapshot ApplyContained(ConfigSnapshot snapshot, ConfigEvent change, Action<ConfigSourceFault> report)
    {
        try
        {
            return snapshot.Apply(change);
        }
#pragma warning disable CA1031 // Whatever one event does, the pipeline must outlive it.
        catch (Exception e)
#pragma warning restore CA1031
        {
            FaultContainedSource.Report(report, new ConfigSourceFault(change?.Source ?? "?", e, RetryAfter: null));
            return snapshot;
        }
    }
}
