namespace FsmGateway.Resources;

/// <summary>Names from the Gateway API and core Kubernetes that the model and the compiler share.</summary>
public static class GatewayApi
{
    /// <summary>The Gateway API group, <c>gateway.networking.k8s.io</c>.</summary>
    public const string Group = "gateway.networking.k8s.io";

    /// <summary>The core group, written as the empty string.</summary>
    public const string CoreGroup = "";

    /// <summary>The controller name FSM installs its GatewayClass with, and our default.</summary>
    public const string DefaultControllerName = "flomesh.io/gateway-controller";

    /// <summary>The GatewayClass name a cluster with FSM installed has.</summary>
    public const string DefaultGatewayClassName = "fsm";

    /// <summary>The label an EndpointSlice carries naming its Service.</summary>
    public const string ServiceNameLabel = "kubernetes.io/service-name";
}
