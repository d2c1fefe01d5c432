using System.Collections.Immutable;

namespace FsmGateway.Resources;

/// <summary>A core Service: the ports a backendRef may name.</summary>
/// <param name="Metadata">The object's metadata.</param>
/// <param name="Ports"><c>spec.ports</c>.</param>
public sealed record Service(ObjectMeta Metadata, EquatableArray<ServicePort> Ports) : Resource(Metadata)
{
    /// <summary>The type written for ExternalName Services, which are not backends.</summary>
    public const string ExternalNameType = "ExternalName";

    /// <inheritdoc />
    public override ResourceKind Kind => ResourceKind.Service;

    /// <summary><c>spec.type</c> (ClusterIP when omitted).</summary>
    public string Type { get; init; } = "ClusterIP";
}

/// <summary>One of a Service's ports.</summary>
/// <param name="Name">The port's name; <see langword="null"/> when unnamed (allowed for a single port).</param>
/// <param name="Port">The Service port number.</param>
/// <param name="Protocol">TCP, UDP or SCTP.</param>
public sealed record ServicePort(string? Name, int Port, string Protocol);
