namespace FsmGateway.Kubernetes.Controller;

/// <summary>What the provisioner creates for each Gateway.</summary>
internal sealed record ProvisioningOptions(string Image, int Replicas, string DataPlaneClusterRole);
