namespace FsmGateway.Resources;

/// <summary>A Namespace; its labels are what listener namespace selectors match.</summary>
/// <param name="Metadata">The object's metadata; the namespace's name is <c>Metadata.Name</c>.</param>
public sealed record KubernetesNamespace(ObjectMeta Metadata) : Resource(Metadata)
{
    /// <inheritdoc />
    public override ResourceKind Kind => ResourceKind.Namespace;
}
