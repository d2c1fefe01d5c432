using System.Collections.Immutable;
using FsmGateway.Resources;
using FsmGateway.Status;

namespace FsmGateway.Routing.Compilation;

/// <summary>
/// Resolves a route's backendRefs to Services and their ready endpoints. A reference that does not resolve keeps
/// its weight (that share of connections is refused) and explains itself in the route's ResolvedRefs condition.
/// </summary>
internal static class BackendResolver
{
    private const int DefaultWeight = 1;

    public static ResolvedBackends Run(CompilationContext context, TcpRoute route, TcpRouteRule rule, int ruleIndex)
    {
        var backends = ImmutableArray.CreateBuilder<RouteBackend>(rule.BackendRefs.Length);
        List<BackendProblem>? problems = null;
        for (var i = 0; i < rule.BackendRefs.Length; i++)
        {
            var reference = rule.BackendRefs[i];
            var ns = reference.Namespace ?? route.Metadata.Namespace;
            var (endpoints, omitted, problem) = Resolve(context, route, reference, ns, new FieldPath(ruleIndex, i));
            if (problem is { } p)
            {
                (problems ??= []).Add(p);
            }

            backends.Add(new RouteBackend(ns, reference.Name, reference.Port, reference.Weight ?? DefaultWeight, endpoints, problem) { ReadyEndpointsOmitted = omitted });
        }

        return new ResolvedBackends(backends.MoveToImmutable(), problems ?? NoProblems);
    }

    private static readonly List<BackendProblem> NoProblems = [];

    /// <summary>A backendRef's ready endpoints, or (when the options say not to list them) whether it has one, or why it does not resolve.</summary>
    private static (ImmutableArray<BackendEndpoint> Endpoints, bool ReadyOmitted, BackendProblem? Problem) Resolve(
        CompilationContext context, TcpRoute route, BackendReference reference, string ns, FieldPath field)
    {
        var group = reference.Group ?? GatewayApi.CoreGroup;
        var kind = reference.Kind ?? "Service";
        if (group != GatewayApi.CoreGroup || kind != "Service")
        {
            var groupKind = RouteAttacher.GroupKind(group, kind);
            return ([], false, new(ConditionReasons.InvalidKind, $"{field}: {groupKind} {reference.Name} is not a supported backend kind; only core Services are"));
        }

        if (ns != route.Metadata.Namespace && !ReferenceGrants.Permit(context, route.Metadata.Namespace, ns, reference.Name))
        {
            return ([], false, new(ConditionReasons.RefNotPermitted,
                $"{field}: Service {ns}/{reference.Name} is in another namespace and no ReferenceGrant in '{ns}' allows TCPRoutes from '{route.Metadata.Namespace}' to refer to it"));
        }

        if (reference.Port is not { } port)
        {
            return ([], false, new(ConditionReasons.BackendNotFound, $"{field}.port is required when the backend is a Service (Service {ns}/{reference.Name})"));
        }

        if (!context.TryGetService(ns, reference.Name, out var service, out var slices))
        {
            return ([], false, new(ConditionReasons.BackendNotFound, $"{field}: Service {ns}/{reference.Name} does not exist"));
        }

        if (service.Type == Service.ExternalNameType)
        {
            return ([], false, new(ConditionReasons.BackendNotFound, $"{field}: Service {ns}/{reference.Name} is of type ExternalName, which cannot be a backend"));
        }

        ServicePort? servicePort = null;
        foreach (var candidate in service.Ports)
        {
            if (candidate.Port == port)
            {
                servicePort = candidate;
                break;
            }
        }

        if (servicePort is null)
        {
            return ([], false, new(ConditionReasons.BackendNotFound, $"{field}: Service {ns}/{reference.Name} has no port {port}"));
        }

        return context.Options.ListEndpoints
            ? (ReadyEndpoints(slices, servicePort), false, null)
            : ([], HasReadyEndpoint(slices, servicePort), null);
    }

    /// <summary>
    /// Whether one Service port has a ready endpoint in <paramref name="slices"/>, matched as <see cref="ReadyEndpoints"/>
    /// matches them: it stops at the first, so it reads one endpoint of a Service that has any, not all of them.
    /// </summary>
    public static bool HasReadyEndpoint(ReadOnlySpan<EndpointSlice> slices, ServicePort servicePort)
    {
        foreach (var slice in slices)
        {
            if (TargetPort(slice, servicePort) is null)
            {
                continue;
            }

            foreach (var endpoint in slice.Endpoints)
            {
                if (endpoint.Ready != false && !endpoint.Addresses.IsEmpty)
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>
    /// The port a slice gives for one Service port, or null: slice ports are matched to the Service port by name (an
    /// unnamed Service port matches an unnamed slice port) and protocol.
    /// </summary>
    private static int? TargetPort(EndpointSlice slice, ServicePort servicePort)
    {
        var wantedName = servicePort.Name ?? string.Empty;
        foreach (var port in slice.Ports)
        {
            if ((port.Name ?? string.Empty) == wantedName && port.Protocol == servicePort.Protocol)
            {
                return port.Port;
            }
        }

        return null;
    }

    /// <summary>
    /// The ready endpoints of one Service port across <paramref name="slices"/> (the Service's EndpointSlices, in any
    /// order), each slice's port matched as <see cref="TargetPort"/> says; duplicates are merged.
    /// </summary>
    public static ImmutableArray<BackendEndpoint> ReadyEndpoints(ReadOnlySpan<EndpointSlice> slices, ServicePort servicePort)
    {
        var found = new BackendEndpoint[slices.Length == 1 ? AddressCount(slices[0]) : 8];
        var count = 0;
        foreach (var slice in slices)
        {
            if (TargetPort(slice, servicePort) is not { } portNumber)
            {
                continue;
            }

            foreach (var endpoint in slice.Endpoints)
            {
                if (endpoint.Ready == false)
                {
                    continue;
                }

                foreach (var address in endpoint.Addresses)
                {
                    if (count == found.Length)
                    {
                        Array.Resize(ref found, Math.Max(8, found.Length * 2));
                    }

                    found[count++] = new BackendEndpoint(address, portNumber);
                }
            }
        }

        // Sorted, duplicates merged in place; the array itself becomes the result when it is exactly full.
        Array.Sort(found, 0, count);
        var distinct = 0;
        for (var i = 0; i < count; i++)
        {
            if (distinct == 0 || found[distinct - 1] != found[i])
            {
                found[distinct++] = found[i];
            }
        }

        return distinct == found.Length
            ? System.Runtime.InteropServices.ImmutableCollectionsMarshal.AsImmutableArray(found)
            : [.. found.AsSpan(0, distinct)];
    }

    private static int AddressCount(EndpointSlice slice)
    {
        var count = 0;
        foreach (var endpoint in slice.Endpoints)
        {
            count += endpoint.Addresses.Length;
        }

        return count;
    }

    /// <summary>The path of a backendRef (<c>spec.rules[0].backendRefs[1]</c>), formatted only when a message needs it.</summary>
    private readonly record struct FieldPath(int Rule, int Backend)
    {
        public override string ToString() => $"spec.rules[{Rule}].backendRefs[{Backend}]";
    }
}

/// <summary>A route's backends, resolved, with the reason and message of each reference that did not resolve.</summary>
internal sealed record ResolvedBackends(ImmutableArray<RouteBackend> Backends, List<BackendProblem> Problems);
