using System.Collections.Immutable;

namespace FsmGateway.Resources;

/// <summary>A Gateway: a set of listeners served by the controller of its class.</summary>
/// <param name="Metadata">The object's metadata.</param>
/// <param name="GatewayClassName"><c>spec.gatewayClassName</c>.</param>
/// <param name="Listeners"><c>spec.listeners</c>, in spec order.</param>
public sealed record Gateway(ObjectMeta Metadata, string GatewayClassName, EquatableArray<Listener> Listeners) : Resource(Metadata)
{
    /// <inheritdoc />
    public override ResourceKind Kind => ResourceKind.Gateway;

    /// <summary><c>spec.addresses</c>; empty means "any address".</summary>
    public EquatableArray<GatewayAddress> Addresses { get; init; } = [];
}

/// <summary>One of <c>spec.addresses</c>.</summary>
/// <param name="Type">The address type (<c>IPAddress</c> when omitted, <c>Hostname</c>, or an implementation-specific type).</param>
/// <param name="Value">The address.</param>
public sealed record GatewayAddress(string Type, string Value)
{
    /// <summary>The type for literal IP addresses, and the default.</summary>
    public const string IPAddressType = "IPAddress";
}

/// <summary>A listener of a Gateway.</summary>
/// <param name="Name">The listener's name, unique in its Gateway.</param>
/// <param name="Port">The port, 1..65535.</param>
/// <param name="Protocol">The protocol as written (<c>TCP</c>, <c>HTTP</c>, ...).</param>
public sealed record Listener(string Name, int Port, string Protocol)
{
    /// <summary><c>hostname</c>, when set (invalid on a TCP listener).</summary>
    public string? Hostname { get; init; }

    /// <summary>Whether <c>tls</c> is set (invalid on a TCP listener).</summary>
    public bool HasTls { get; init; }

    /// <summary><c>allowedRoutes</c>, with the API's defaults filled in.</summary>
    public AllowedRoutes AllowedRoutes { get; init; } = AllowedRoutes.Default;
}

/// <summary>Which routes may attach to a listener.</summary>
/// <param name="From">Which namespaces routes may come from.</param>
/// <param name="Selector">The namespace selector when <paramref name="From"/> is <see cref="FromNamespaces.Selector"/>.</param>
/// <param name="Kinds">The route kinds allowed; <see langword="null"/> when unset, meaning the protocol's default kinds.</param>
public sealed record AllowedRoutes(FromNamespaces From, LabelSelector? Selector, EquatableArray<RouteGroupKind>? Kinds)
{
    /// <summary>Routes from the listener's own namespace, of the protocol's default kinds.</summary>
    public static AllowedRoutes Default { get; } = new(FromNamespaces.Same, null, null);
}

/// <summary><c>allowedRoutes.namespaces.from</c>.</summary>
public enum FromNamespaces
{
    /// <summary>Only the Gateway's namespace.</summary>
    Same,

    /// <summary>Every namespace.</summary>
    All,

    /// <summary>Namespaces whose labels match the selector.</summary>
    Selector,
}

/// <summary>A route kind with its group, as <c>allowedRoutes.kinds</c> and <c>supportedKinds</c> write it.</summary>
/// <param name="Group">The group; the Gateway API group when omitted.</param>
/// <param name="Kind">The kind.</param>
public sealed record RouteGroupKind(string Group, string Kind)
{
    /// <summary>The only kind a TCP listener serves.</summary>
    public static RouteGroupKind TcpRoute { get; } = new(GatewayApi.Group, "TCPRoute");
}
