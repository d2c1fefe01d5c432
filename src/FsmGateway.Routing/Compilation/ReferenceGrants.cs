using FsmGateway.Resources;

namespace FsmGateway.Routing.Compilation;

/// <summary>
/// Whether a cross-namespace reference to a Service is permitted by a ReferenceGrant: the one rule, read by the
/// compiler (a TCPRoute's backendRef, a policy's targetRef) and by <see cref="GatewayClosure"/> (which grants, and
/// which Services, a Gateway's data plane is sent), so the two cannot decide apart.
/// </summary>
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
    public static bool Permit(CompilationContext context, string fromGroup, string fromKind, string fromNamespace, string serviceNamespace, string serviceName)
    {
        foreach (var grant in context.ReferenceGrants)
        {
            if (Permits(grant, fromGroup, fromKind, fromNamespace, serviceNamespace, serviceName))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// True when <paramref name="grant"/> is in the Service's namespace and lets objects of
    /// <paramref name="fromGroup"/>/<paramref name="fromKind"/> in <paramref name="fromNamespace"/> refer to core
    /// Services, every one or <paramref name="serviceName"/>.
    /// </summary>
    public static bool Permits(ReferenceGrant grant, string fromGroup, string fromKind, string fromNamespace, string serviceNamespace, string serviceName) =>
        grant.Metadata.Namespace == serviceNamespace
        && grant.From.Any(from => from.Group == fromGroup && from.Kind == fromKind && from.Namespace == fromNamespace)
        && grant.To.Any(to => to.Group == GatewayApi.CoreGroup && to.Kind == "Service" && (to.Name is null || to.Name == serviceName));
}
