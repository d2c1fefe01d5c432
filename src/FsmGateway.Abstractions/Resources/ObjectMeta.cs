using System.Collections.Immutable;

namespace FsmGateway.Resources;

/// <summary>The parts of Kubernetes object metadata that routing decisions and status depend on.</summary>
/// <param name="Namespace">The namespace; empty for cluster-scoped objects.</param>
/// <param name="Name">The name.</param>
public sealed record ObjectMeta(string Namespace, string Name)
{
    /// <summary><c>metadata.generation</c>: bumped by the API server on every spec change; echoed as <c>observedGeneration</c>.</summary>
    public long Generation { get; init; } = 1;

    /// <summary><c>metadata.creationTimestamp</c>; decides which of two conflicting objects is older. Missing sorts as oldest.</summary>
    public DateTimeOffset? CreationTimestamp { get; init; }

    /// <summary><c>metadata.labels</c>.</summary>
    public ImmutableSortedDictionary<string, string> Labels { get; init; } = ImmutableSortedDictionary<string, string>.Empty.WithComparers(StringComparer.Ordinal);

    /// <summary><c>metadata.uid</c>, when known.</summary>
    public string? Uid { get; init; }

    /// <summary><c>metadata.resourceVersion</c>, when the object came from an API server.</summary>
    public string? ResourceVersion { get; init; }

    /// <summary>Compares every field, labels by content.</summary>
    /// <param name="other">The metadata to compare with.</param>
    /// <returns>Whether both describe the same metadata.</returns>
    public bool Equals(ObjectMeta? other) =>
        other is not null
        && Namespace == other.Namespace
        && Name == other.Name
        && Generation == other.Generation
        && CreationTimestamp == other.CreationTimestamp
        && Uid == other.Uid
        && ResourceVersion == other.ResourceVersion
        && Labels.SequenceEqual(other.Labels);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Namespace, Name, Generation, Labels.Count);
}
