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
        Permit(context, GatewayApi.Group, "TCPRoute", routeNamespace, serviceNamespace, serviceName);

    /// <summary>
    /// True when a grant in the Service's namespace lets objects of <paramref name="fromGroup"/>/<paramref name="fromKind"/>
    /// in <paramref name="fromNamespace"/> refer to core Services, every one or <paramref name="serviceName"/>.
    /// </summary>
    public static bool Permit(CompilationContext context, string fromGroup, string fromKind, string fromNamespace, string serviceNamespace, string serviceName) =>
        context.ReferenceGrants.Any(grant =>
            grant.Metadata.Namespace == serviceNamespace
            && grant.From.Any(from => from.Group == fromGroup && from.Kind == fromKind && from.Namespace == fromNamespace)
            && grant.To.Any(to => to.Group == GatewayApi.CoreGroup && to.Kind == "Service" && (to.Name is null || to.Name == serviceName)));
}
