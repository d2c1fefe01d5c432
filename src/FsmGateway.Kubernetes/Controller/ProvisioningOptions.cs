namespace FsmGateway.Kubernetes.Controller;

/// <summary>What the provisioner creates for each Gateway.</summary>
/// <param name="Image">The data-plane image.</param>
/// <param name="Replicas">Replicas of a new Deployment.</param>
/// <param name="DataPlaneClusterRole">The read-only ClusterRole the pods are bound to.</param>
/// <param name="ControllerName">Ours; passed to the pods and written on what we provision, so installs with other names leave it alone.</param>
internal sealed record ProvisioningOptions(string Image, int Replicas, string DataPlaneClusterRole, string ControllerName);
