using System.Collections.Immutable;
using FsmGateway.Resources;

namespace FsmGateway.Configuration;

/// <summary>
/// One change reported by a config source. Sources send their current contents first (as upserts or one reset),
/// then <see cref="SourceSynced"/>, then changes. Invalid user config is data here, never <c>OnError</c>.
/// </summary>
/// <param name="Source">The name of the source that reports the change.</param>
public abstract record ConfigEvent(string Source)
{
    /// <summary>An object was created or changed.</summary>
    /// <param name="Source">The reporting source.</param>
    /// <param name="Resource">The object as it is now.</param>
    public sealed record Upserted(string Source, Resource Resource) : ConfigEvent(Source);

    /// <summary>An object was deleted.</summary>
    /// <param name="Source">The reporting source.</param>
    /// <param name="Key">The deleted object's key.</param>
    public sealed record Deleted(string Source, ResourceKey Key) : ConfigEvent(Source);

    /// <summary>The source has sent everything it held at start; the gateway may compile once every source has.</summary>
    /// <param name="Source">The reporting source.</param>
    public sealed record SourceSynced(string Source) : ConfigEvent(Source);

    /// <summary>
    /// The source's whole contents are now exactly <paramref name="Resources"/> (a re-list, a reloaded folder).
    /// Objects it held before and does not list are deleted. A reset also counts as a sync. Where
    /// <paramref name="Resources"/> lists one key more than once, the first definition is kept.
    /// </summary>
    /// <param name="Source">The reporting source.</param>
    /// <param name="Resources">Everything the source holds now.</param>
    public sealed record SourceReset(string Source, ImmutableArray<Resource> Resources) : ConfigEvent(Source);
}
