namespace FsmGateway.Resources;

/// <summary>A GatewayClass: which controller serves the Gateways of this class.</summary>
/// <param name="Metadata">The object's metadata (cluster-scoped: empty namespace).</param>
/// <param name="ControllerName"><c>spec.controllerName</c>.</param>
public sealed record GatewayClass(ObjectMeta Metadata, string ControllerName) : Resource(Metadata)
{
    /// <inheritdoc />
    public override ResourceKind Kind => ResourceKind.GatewayClass;

    /// <summary><c>spec.parametersRef</c> as <c>group/kind name</c>, when set. FsmGateway takes no parameters.</summary>
    public string? ParametersRef { get; init; }
}
