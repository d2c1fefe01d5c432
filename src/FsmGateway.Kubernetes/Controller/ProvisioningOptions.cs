namespace FsmGateway.Kubernetes.Controller;

/// <summary>What the provisioner creates for each Gateway.</summary>
/// <param name="Image">The data-plane image.</param>
/// <param name="Replicas">Replicas of each Deployment, unless its Gateway's parameters say otherwise.</param>
/// <param name="ControllerName">Ours; passed to the pods and written on what we provision, so installs with other names leave it alone.</param>
/// <param name="DrainTimeout">How long a stopping pod lets connections finish (its <c>--drain-timeout</c>).</param>
/// <param name="PreStopDelay">How long a stopping pod keeps serving before it drains (a preStop sleep); zero for none.</param>
internal sealed record ProvisioningOptions(string Image, int Replicas, string ControllerName, TimeSpan DrainTimeout, TimeSpan PreStopDelay)
{
    /// <summary>
    /// The controller's config stream the pods subscribe to (their <c>--controller-address</c>), so that they report
    /// their listeners' bind outcomes, which <c>Programmed</c> follows; null for pods that read the API server.
    /// </summary>
    public string? ControllerAddress { get; init; }

    /// <summary>
    /// Whether the config stream is TLS with token authentication (ADR 0010): the pods then verify the controller
    /// against the CA in ConfigMap <see cref="DataPlaneManifests.AuthorityConfigMapName"/> and present a projected
    /// ServiceAccount token of audience <see cref="DataPlaneManifests.TokenAudience"/>.
    /// </summary>
    public bool SecureStream { get; init; }

    /// <summary>The field manager of every server-side apply the controller makes.</summary>
    public const string FieldManager = "fsm-gateway-controller";
}
