using System.Collections.Immutable;
using FsmGateway.Status;

namespace FsmGateway.Resources;

/// <summary>A TCPRoute (v1 or v1alpha2): parents to attach to and the backends to forward connections to.</summary>
/// <param name="Metadata">The object's metadata.</param>
/// <param name="ParentRefs"><c>spec.parentRefs</c>, in spec order.</param>
/// <param name="Rules"><c>spec.rules</c>; v1 allows exactly one, v1alpha2 up to 16.</param>
public sealed record TcpRoute(ObjectMeta Metadata, EquatableArray<ParentReference> ParentRefs, EquatableArray<TcpRouteRule> Rules) : Resource(Metadata)
{
    /// <inheritdoc />
    public override ResourceKind Kind => ResourceKind.TcpRoute;

    /// <summary>The apiVersion the route was written in, echoed in its status.</summary>
    public string ApiVersion { get; init; } = GatewayApi.Group + "/v1";

    /// <summary>The <c>status.parents</c> already stored on the object; entries of other controllers are kept when ours are written.</summary>
    public EquatableArray<RouteParentStatus> ExistingParentStatuses { get; init; } = [];
}

/// <summary>A rule of a TCPRoute.</summary>
/// <param name="BackendRefs">Where connections go, by weight.</param>
public sealed record TcpRouteRule(EquatableArray<BackendReference> BackendRefs)
{
    /// <summary>The rule's optional <c>name</c>.</summary>
    public string? Name { get; init; }
}

/// <summary>A route's <c>parentRef</c>, as written; unset fields are <see langword="null"/>.</summary>
/// <param name="Group">The parent's group (defaults to the Gateway API group).</param>
/// <param name="Kind">The parent's kind (defaults to Gateway).</param>
/// <param name="Namespace">The parent's namespace (defaults to the route's).</param>
/// <param name="Name">The parent's name.</param>
/// <param name="SectionName">The listener name, when the route targets one listener.</param>
/// <param name="Port">The listener port, when the route targets listeners by port.</param>
public sealed record ParentReference(string? Group, string? Kind, string? Namespace, string Name, string? SectionName, int? Port);

/// <summary>A rule's <c>backendRef</c>, as written; unset fields are <see langword="null"/>.</summary>
/// <param name="Group">The backend's group (defaults to core).</param>
/// <param name="Kind">The backend's kind (defaults to Service).</param>
/// <param name="Namespace">The backend's namespace (defaults to the route's).</param>
/// <param name="Name">The backend's name.</param>
/// <param name="Port">The Service port; required for Services.</param>
/// <param name="Weight">The share of connections (defaults to 1, range 0..1,000,000).</param>
public sealed record BackendReference(string? Group, string? Kind, string? Namespace, string Name, int? Port, int? Weight);
