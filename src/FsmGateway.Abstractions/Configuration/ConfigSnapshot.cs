using System.Collections.Immutable;
using FsmGateway.Resources;

namespace FsmGateway.Configuration;

/// <summary>
/// Everything every source holds at one moment, immutable. <see cref="Apply"/> is the pure reducer: the same
/// events in the same order always give the same snapshot. Where two sources hold an object with the same key,
/// the source whose name sorts first (ordinal) wins, so the merged view never depends on arrival order.
/// </summary>
public sealed class ConfigSnapshot
{
    private static readonly ImmutableSortedDictionary<string, ImmutableDictionary<ResourceKey, Resource>> NoSources =
        ImmutableSortedDictionary<string, ImmutableDictionary<ResourceKey, Resource>>.Empty.WithComparers(StringComparer.Ordinal);

    private readonly ImmutableSortedDictionary<string, ImmutableDictionary<ResourceKey, Resource>> _bySource;
    private ImmutableSortedDictionary<ResourceKey, Resource>? _merged;

    private ConfigSnapshot(
        long revision,
        ImmutableSortedDictionary<string, ImmutableDictionary<ResourceKey, Resource>> bySource,
        ImmutableSortedSet<string> syncedSources)
    {
        Revision = revision;
        _bySource = bySource;
        SyncedSources = syncedSources;
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
    public ImmutableSortedDictionary<ResourceKey, Resource> Resources => _merged ??= Merge(_bySource);

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

                return With(change.Source, held.SetItem(upserted.Resource.Key, upserted.Resource), SyncedSources);

            case ConfigEvent.Deleted deleted:
                return held.ContainsKey(deleted.Key) ? With(change.Source, held.Remove(deleted.Key), SyncedSources) : this;

            case ConfigEvent.SourceSynced:
                return SyncedSources.Contains(change.Source)
                    ? this
                    : new ConfigSnapshot(Revision + 1, _bySource.SetItem(change.Source, held), SyncedSources.Add(change.Source));

            case ConfigEvent.SourceReset reset:
                var replacement = FirstOfEachKey(reset.Resources);
                if (SyncedSources.Contains(change.Source) && SameContents(held, replacement))
                {
                    return this;
                }

                return With(change.Source, replacement, SyncedSources.Add(change.Source));

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

    private ConfigSnapshot With(string source, ImmutableDictionary<ResourceKey, Resource> held, ImmutableSortedSet<string> synced) =>
        new(Revision + 1, _bySource.SetItem(source, held), synced);

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
