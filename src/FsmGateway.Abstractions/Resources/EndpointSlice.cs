using System.Collections.Immutable;

namespace FsmGateway.Resources;

/// <summary>An EndpointSlice: some of a Service's endpoints and the ports they listen on.</summary>
/// <param name="Metadata">The object's metadata.</param>
/// <param name="ServiceName">The Service it belongs to (label <c>kubernetes.io/service-name</c>); <see langword="null"/> when unlabelled.</param>
/// <param name="AddressType">IPv4, IPv6 or FQDN.</param>
/// <param name="Ports">The ports, matched to Service ports by name.</param>
/// <param name="Endpoints">The endpoints.</param>
public sealed record EndpointSlice(ObjectMeta Metadata, string? ServiceName, string AddressType, EquatableArray<EndpointPort> Ports, EquatableArray<Endpoint> Endpoints) : Resource(Metadata)
{
    /// <inheritdoc />
    public override ResourceKind Kind => ResourceKind.EndpointSlice;
}

/// <summary>A port of an EndpointSlice.</summary>
/// <param name="Name">The name, equal to the Service port's name (empty or <see langword="null"/> for an unnamed one).</param>
/// <param name="Port">The port number on the endpoints.</param>
/// <param name="Protocol">TCP, UDP or SCTP.</param>
public sealed record EndpointPort(string? Name, int? Port, string Protocol);

/// <summary>One endpoint of an EndpointSlice.</summary>
/// <param name="Addresses">Its addresses (one, by Kubernetes convention).</param>
/// <param name="Ready"><c>conditions.ready</c>; <see langword="null"/> (unknown) counts as ready.</param>
public sealed record Endpoint(EquatableArray<string> Addresses, bool? Ready);
