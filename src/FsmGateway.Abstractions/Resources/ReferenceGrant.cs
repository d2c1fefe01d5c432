using System.Collections.Immutable;

namespace FsmGateway.Resources;

/// <summary>A ReferenceGrant: lets objects in other namespaces refer to objects in this one.</summary>
/// <param name="Metadata">The object's metadata; the grant lives in the namespace of the things referred to.</param>
/// <param name="From">Who may refer.</param>
/// <param name="To">What may be referred to.</param>
public sealed record ReferenceGrant(ObjectMeta Metadata, EquatableArray<ReferenceGrantFrom> From, EquatableArray<ReferenceGrantTo> To) : Resource(Metadata)
{
    /// <inheritdoc />
    public override ResourceKind Kind => ResourceKind.ReferenceGrant;
}

/// <summary>A <c>spec.from</c> entry of a ReferenceGrant.</summary>
/// <param name="Group">The referring object's group.</param>
/// <param name="Kind">The referring object's kind.</param>
/// <param name="Namespace">The referring object's namespace.</param>
public sealed record ReferenceGrantFrom(string Group, string Kind, string Namespace);

/// <summary>A <c>spec.to</c> entry of a ReferenceGrant.</summary>
/// <param name="Group">The referred object's group (empty for core).</param>
/// <param name="Kind">The referred object's kind.</param>
/// <param name="Name">The referred object's name; <see langword="null"/> for every object of that kind.</param>
public sealed record ReferenceGrantTo(string Group, string Kind, string? Name);
