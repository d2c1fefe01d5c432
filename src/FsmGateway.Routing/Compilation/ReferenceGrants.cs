using FsmGateway.Resources;

namespace FsmGateway.Routing.Compilation;

/// <summary>Whether a cross-namespace reference from a TCPRoute to a Service is permitted by a ReferenceGrant.</summary>
internal static class ReferenceGrants
{
    /// <summary>
    /// True when a grant in the Service's namespace lets TCPRoutes from <paramref name="routeNamespace"/> refer to
    /// core Services, either every Service or <paramref name="serviceName"/> by name.
    /// </summary>
    public static bool Permit(CompilationContext context, string routeNamespace, string serviceNamespace, string serviceName) =>
        context.ReferenceGrants.Any(grant =>
            grant.Metadata.Namespace == serviceNamespace
            && grant.From.Any(from => from.Group == GatewayApi.Group && from.Kind == "TCPRoute" && from.Namespace == routeNamespace)
            && grant.To.Any(to => to.Group == GatewayApi.CoreGroup && to.Kind == "Service" && (to.Name is null || to.Name == serviceName)));
}
