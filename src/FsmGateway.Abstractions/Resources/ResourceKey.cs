namespace FsmGateway.Resources;

/// <summary>
/// Identifies one object: its kind, namespace and name. Cluster-scoped kinds have an empty namespace.
/// Ordered by kind, then namespace, then name (ordinal), so anything sorted by key is deterministic.
/// </summary>
/// <param name="Kind">The object's kind.</param>
/// <param name="Namespace">The object's namespace; empty for cluster-scoped kinds.</param>
/// <param name="Name">The object's name.</param>
public readonly record struct ResourceKey(ResourceKind Kind, string Namespace, string Name) : IComparable<ResourceKey>
{
    /// <summary>Whether objects of <paramref name="kind"/> live outside any namespace.</summary>
    /// <param name="kind">The kind to test.</param>
    /// <returns><see langword="true"/> for GatewayClass and Namespace.</returns>
    public static bool IsClusterScoped(ResourceKind kind) => kind is ResourceKind.GatewayClass or ResourceKind.Namespace;

    /// <inheritdoc />
    public int CompareTo(ResourceKey other)
    {
        // Compared as integers: Enum.CompareTo(object) boxes both values, and keys are compared in every sorted collection.
        var byKind = ((int)Kind).CompareTo((int)other.Kind);
        if (byKind != 0)
        {
            return byKind;
        }

        var byNamespace = string.CompareOrdinal(Namespace, other.Namespace);
        return byNamespace != 0 ? byNamespace : string.CompareOrdinal(Name, other.Name);
    }

    /// <summary>Compares two keys by kind, namespace and name.</summary>
    /// <param name="left">The first key.</param>
    /// <param name="right">The second key.</param>
    /// <returns>Whether <paramref name="left"/> sorts before <paramref name="right"/>.</returns>
    public static bool operator <(ResourceKey left, ResourceKey right) => left.CompareTo(right) < 0;

    /// <summary>Compares two keys by kind, namespace and name.</summary>
    /// <param name="left">The first key.</param>
    /// <param name="right">The second key.</param>
    /// <returns>Whether <paramref name="left"/> sorts after <paramref name="right"/>.</returns>
    public static bool operator >(ResourceKey left, ResourceKey right) => left.CompareTo(right) > 0;

    /// <summary>Compares two keys by kind, namespace and name.</summary>
    /// <param name="left">The first key.</param>
    /// <param name="right">The second key.</param>
    /// <returns>Whether <paramref name="left"/> sorts before or equal to <paramref name="right"/>.</returns>
    public static bool operator <=(ResourceKey left, ResourceKey right) => left.CompareTo(right) <= 0;

    /// <summary>Compares two keys by kind, namespace and name.</summary>
    /// <param name="left">The first key.</param>
    /// <param name="right">The second key.</param>
    /// <returns>Whether <paramref name="left"/> sorts after or equal to <paramref name="right"/>.</returns>
    public static bool operator >=(ResourceKey left, ResourceKey right) => left.CompareTo(right) >= 0;

    /// <summary>The key as <c>Kind namespace/name</c> (or <c>Kind name</c> when cluster-scoped), as logs and messages show it.</summary>
    /// <returns>A readable form of the key.</returns>
    public override string ToString() =>
        Namespace.Length == 0 ? $"{KindName(Kind)} {Name}" : $"{KindName(Kind)} {Namespace}/{Name}";

    /// <summary>The Kubernetes spelling of a kind (<c>TCPRoute</c>, not <c>TcpRoute</c>).</summary>
    /// <param name="kind">The kind.</param>
    /// <returns>The kind as Kubernetes writes it.</returns>
    public static string KindName(ResourceKind kind) => kind switch
    {
        ResourceKind.TcpRoute => "TCPRoute",
        ResourceKind.BackendLbPolicy => "BackendLBPolicy",
        _ => kind.ToString(),
    };
}
