namespace FsmGateway.Resources;

/// <summary>Base of every object in the model: an immutable record with its metadata.</summary>
/// <param name="Metadata">The object's metadata.</param>
public abstract record Resource(ObjectMeta Metadata)
{
    /// <summary>The kind of this object.</summary>
    public abstract ResourceKind Kind { get; }

    /// <summary>The object's identity.</summary>
    public ResourceKey Key => new(Kind, Metadata.Namespace, Metadata.Name);

    /// <summary>Orders objects oldest first: by creation timestamp, then namespace, then name, as Gateway API conflict rules require.</summary>
    public static IComparer<Resource> OldestFirst { get; } = Comparer<Resource>.Create(static (a, b) =>
    {
        var byTime = Nullable.Compare(a.Metadata.CreationTimestamp, b.Metadata.CreationTimestamp);
        if (byTime != 0)
        {
            return byTime;
        }

        var byNamespace = string.CompareOrdinal(a.Metadata.Namespace, b.Metadata.Namespace);
        return byNamespace != 0 ? byNamespace : string.CompareOrdinal(a.Metadata.Name, b.Metadata.Name);
    });
}
