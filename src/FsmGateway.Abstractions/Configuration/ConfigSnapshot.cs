using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using FsmGateway.Resources;

namespace FsmGateway.Configuration;

/// <summary>
/// Everything every source holds at one moment, immutable. <see cref="Apply"/> is the pure reducer: the same
/// events in the same order always give the same snapshot. Where two sources hold an object with the same key,
/// the source whose name sorts first (ordinal) wins, so the merged view never depends on arrival order.
/// </summary>
/// <remarks>
/// Each snapshot remembers which keys the events since its recent ancestors touched (a short change log), so the merged
/// view of a snapshot one event away from one whose view was built is derived from that view in O(changes · log n), not
/// rebuilt from every source, and <see cref="TryGetChangedKeys"/> tells an incremental consumer what to look at.
/// </remarks>
public sealed class ConfigSnapshot
{
    private static readonly ImmutableSortedDictionary<string, ImmutableDictionary<ResourceKey, Resource>> NoSources =
        ImmutableSortedDictionary<string, ImmutableDictionary<ResourceKey, Resource>>.Empty.WithComparers(StringComparer.Ordinal);

    /// <summary>How many events a change log reaches back at most; older history is forgotten (consumers then rebuild).</summary>
    private const int MaxLoggedEvents = 4096;

    private readonly ImmutableSortedDictionary<string, ImmutableDictionary<ResourceKey, Resource>> _bySource;
    private readonly Change? _changes;
    private ImmutableSortedDictionary<ResourceKey, Resource>? _merged;

    /// <summary>An ancestor whose merged view was built when this snapshot was made; this one's is derived from it.</summary>
    private ConfigSnapshot? _base;

    private ConfigSnapshot(
        long revision,
        ImmutableSortedDictionary<string, ImmutableDictionary<ResourceKey, Resource>> bySource,
        ImmutableSortedSet<string> syncedSources,
        Change? changes = null,
        ImmutableSortedDictionary<ResourceKey, Resource>? merged = null,
        ConfigSnapshot? mergedBase = null)
    {
        Revision = revision;
        _bySource = bySource;
        SyncedSources = syncedSources;
        _changes = changes;
        _merged = merged;
        _base = merged is null ? mergedBase : null;
    }

    /// <summary>The snapshot before any event: revision 0, no objects, no source synced.</summary>
    public static ConfigSnapshot Empty { get; } = new(0, NoSources, ImmutableSortedSet.Create<string>(StringComparer.Ordinal));

    /// <summary>Builds a snapshot holding exactly <paramref name="resources"/>, as one synced source named <paramref name="source"/>.</summary>
    /// <param name="resources">The objects.</param>
    /// <param name="source">The source name to file them under.</param>
    /// <returns>A snapshot at revision 1.</returns>
    public static ConfigSnapshot From(IEnumerable<Resource> resources, string source = "default") =>
        Empty.Apply(new ConfigEvent.SourceReset(source, [.. resources]));

    /// <summary>Counts the changes applied: every event that changed anything increments it.</summary>
    public long Revision { get; }

    /// <summary>The sources that have finished their initial sync.</summary>
    public ImmutableSortedSet<string> SyncedSources { get; }

    /// <summary>Every object, merged across sources, sorted by key.</summary>
    public ImmutableSortedDictionary<ResourceKey, Resource> Resources
    {
        get
        {
            if (_merged is { } merged)
            {
                return merged;
            }

            // Racing readers may both build it; they build the same view.
            merged = _base is { _merged: { } baseView } mergedBase && TryGetChangedKeys(mergedBase, out var keys)
                ? Update(baseView, keys)
                : Merge(_bySource);
            _merged = merged;
            _base = null;
            return merged;
        }
    }

    /// <summary>
    /// The keys whose merged object may differ between <paramref name="earlier"/> and this snapshot (a superset: a key
    /// changed in a source that another source overrides is listed too), when this snapshot descends from
    /// <paramref name="earlier"/> through recent enough events; <see langword="false"/> when that is not known (a
    /// different lineage, or history older than the change log), and the caller must compare everything.
    /// </summary>
    /// <param name="earlier">An earlier snapshot of the same pipeline.</param>
    /// <param name="keys">The keys that may have changed; empty when <paramref name="earlier"/> is this snapshot or holds the same objects.</param>
    /// <returns>Whether <paramref name="keys"/> is known.</returns>
    public bool TryGetChangedKeys(ConfigSnapshot earlier, [NotNullWhen(true)] out IReadOnlyCollection<ResourceKey>? keys)
    {
        ArgumentNullException.ThrowIfNull(earlier);
        keys = null;
        if (earlier._changes is not { } stop || earlier.Revision > Revision)
        {
            return false;
        }

        var found = new HashSet<ResourceKey>();
        for (var change = _changes; !ReferenceEquals(change, stop); change = change.Previous)
        {
            if (change is null || change.Depth <= stop.Depth)
            {
                return false;
            }

            found.UnionWith(change.Keys);
        }

        keys = found;
        return true;
    }

    /// <summary>Whether every one of <paramref name="sources"/> has synced.</summary>
    /// <param name="sources">The names of the sources the gateway waits for.</param>
    /// <returns><see langword="true"/> once all of them have synced.</returns>
    public bool HasSynced(IEnumerable<string> sources) => sources.All(SyncedSources.Contains);

    /// <summary>Every object of type <typeparamref name="T"/>, sorted by key.</summary>
    /// <typeparam name="T">The resource type.</typeparam>
    /// <returns>The objects.</returns>
    public IEnumerable<T> OfType<T>()
        where T : Resource => Resources.Values.OfType<T>();

    /// <summary>The reducer: this snapshot with <paramref name="change"/> applied. Returns this instance when nothing changed.</summary>
    /// <param name="change">The event.</param>
    /// <returns>The next snapshot.</returns>
    /// <remarks>
    /// A <see cref="ConfigEvent.SourceReset"/> that lists one key more than once keeps the first definition and ignores
    /// the later ones (the rule ManifestSet.Combine applies across files), so a duplicate never makes a reset fail.
    /// </remarks>
    public ConfigSnapshot Apply(ConfigEvent change)
    {
        ArgumentNullException.ThrowIfNull(change);
        var held = _bySource.GetValueOrDefault(change.Source) ?? ImmutableDictionary<ResourceKey, Resource>.Empty;
        switch (change)
        {
            case ConfigEvent.Upserted upserted:
                if (held.TryGetValue(upserted.Resource.Key, out var existing) && existing.Equals(upserted.Resource))
                {
                    return this;
                }

                return With(change.Source, held.SetItem(upserted.Resource.Key, upserted.Resource), SyncedSources, [upserted.Resource.Key]);

            case ConfigEvent.Deleted deleted:
                return held.ContainsKey(deleted.Key) ? With(change.Source, held.Remove(deleted.Key), SyncedSources, [deleted.Key]) : this;

            case ConfigEvent.SourceSynced:
                // No object changes: the merged view and the change log carry over.
                return SyncedSources.Contains(change.Source)
                    ? this
                    : new ConfigSnapshot(Revision + 1, _bySource.SetItem(change.Source, held), SyncedSources.Add(change.Source), _changes, _merged, _base);

            case ConfigEvent.SourceReset reset:
                var replacement = FirstOfEachKey(reset.Resources);
                if (SyncedSources.Contains(change.Source) && SameContents(held, replacement))
                {
                    return this;
                }

                return With(change.Source, replacement, SyncedSources.Add(change.Source), ChangedKeys(held, replacement));

            default:
                throw new ArgumentException($"Unknown config event type {change.GetType().Name}.", nameof(change));
        }
    }

    // A reset listing one key twice keeps the first definition (ManifestSet.Combine's rule), so no source can
    // make every later reset throw and freeze the config by holding a duplicate.
    private static ImmutableDictionary<ResourceKey, Resource> FirstOfEachKey(ImmutableArray<Resource> resources)
    {
        var builder = ImmutableDictionary.CreateBuilder<ResourceKey, Resource>();
        foreach (var resource in resources)
        {
            builder.TryAdd(resource.Key, resource);
        }

        return builder.ToImmutable();
    }

    private static bool SameContents(ImmutableDictionary<ResourceKey, Resource> a, ImmutableDictionary<ResourceKey, Resource> b) =>
        a.Count == b.Count && a.All(pair => b.TryGetValue(pair.Key, out var other) && other.Equals(pair.Value));

    private static ImmutableArray<ResourceKey> ChangedKeys(ImmutableDictionary<ResourceKey, Resource> before, ImmutableDictionary<ResourceKey, Resource> after)
    {
        var keys = ImmutableArray.CreateBuilder<ResourceKey>();
        foreach (var (key, resource) in after)
        {
            if (!before.TryGetValue(key, out var old) || !old.Equals(resource))
            {
                keys.Add(key);
            }
        }

        foreach (var key in before.Keys)
        {
            if (!after.ContainsKey(key))
            {
                keys.Add(key);
            }
        }

        return keys.ToImmutable();
    }

    private ConfigSnapshot With(string source, ImmutableDictionary<ResourceKey, Resource> held, ImmutableSortedSet<string> synced, ImmutableArray<ResourceKey> changed)
    {
        var previous = _changes is { } last && last.Depth - last.Oldest < MaxLoggedEvents ? last : null;
        var depth = (_changes?.Depth ?? 0) + 1;
        var change = new Change(changed, previous, depth, previous?.Oldest ?? depth);
        return new(Revision + 1, _bySource.SetItem(source, held), synced, change, merged: null, mergedBase: _merged is not null ? this : _base);
    }

    /// <summary><paramref name="view"/> with the winner of each of <paramref name="keys"/> looked up again across the sources.</summary>
    private ImmutableSortedDictionary<ResourceKey, Resource> Update(ImmutableSortedDictionary<ResourceKey, Resource> view, IReadOnlyCollection<ResourceKey> keys)
    {
        var builder = view.ToBuilder();
        foreach (var key in keys)
        {
            Resource? winner = null;
            foreach (var (_, held) in _bySource)
            {
                if (held.TryGetValue(key, out winner))
                {
                    break;
                }
            }

            if (winner is null)
            {
                builder.Remove(key);
            }
            else
            {
                builder[key] = winner;
            }
        }

        return builder.ToImmutable();
    }

    /// <summary>
    /// One event's entry in the change log: the keys it touched, the entry before it (null where the log was cut),
    /// how many events led here, and the depth of the oldest entry still reachable.
    /// </summary>
    private sealed class Change(ImmutableArray<ResourceKey> keys, Change? previous, long depth, long oldest)
    {
        public ImmutableArray<ResourceKey> Keys { get; } = keys;

        public Change? Previous { get; } = previous;

        public long Depth { get; } = depth;

        public long Oldest { get; } = oldest;
    }

    private static ImmutableSortedDictionary<ResourceKey, Resource> Merge(
        ImmutableSortedDictionary<string, ImmutableDictionary<ResourceKey, Resource>> bySource)
    {
        var merged = ImmutableSortedDictionary.CreateBuilder<ResourceKey, Resource>();

        // Sources are visited in name order and the first to hold a key keeps it.
        foreach (var (_, held) in bySource)
        {
            foreach (var (key, resource) in held)
            {
                merged.TryAdd(key, resource);
            }
        }

        return merged.ToImmutable();
    }
}
