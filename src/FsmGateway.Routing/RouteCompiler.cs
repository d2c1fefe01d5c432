using System.Collections.Immutable;
using FsmGateway.Configuration;
using FsmGateway.Resources;
using FsmGateway.Routing.Compilation;
using FsmGateway.Status;

namespace FsmGateway.Routing;

/// <summary>
/// The pure compiler: a <see cref="ConfigSnapshot"/> in, a <see cref="CompilationResult"/> out. No I/O, no clock;
/// the same snapshot always compiles to the same result. Bad objects become status conditions and diagnostics,
/// never exceptions, and never stop the rest from compiling.
/// </summary>
public static class RouteCompiler
{
    /// <summary>Compiles <paramref name="snapshot"/>.</summary>
    /// <param name="snapshot">Every object the gateway knows.</param>
    /// <param name="options">Which controller we are; <see cref="CompilerOptions.Default"/> when null.</param>
    /// <param name="bindings">What the transport bound; <see cref="ListenerBindings.Pending"/> when null.</param>
    /// <param name="dataPlanes">
    /// What a controller that provisions data planes found of them (Deployment availability, the Service's addresses,
    /// unusable parameters); null when this process provisions nothing, and then no Gateway gets an address.
    /// </param>
    /// <returns>The routing table, statuses and diagnostics.</returns>
    public static CompilationResult Compile(ConfigSnapshot snapshot, CompilerOptions? options = null, ListenerBindings? bindings = null, ProvisionedDataPlanes? dataPlanes = null)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        // The snapshot's own sorted dictionary, read with its struct enumerator (its Values go through an interface per object).
        return Run(new CompilationContext(snapshot.Resources, options ?? CompilerOptions.Default, bindings ?? ListenerBindings.Pending) { DataPlanes = dataPlanes }, snapshot.Revision);
    }

    /// <summary>
    /// Compiles <paramref name="resources"/> (sorted by key, each key once, as a snapshot holds them): what
    /// <see cref="IncrementalRouteCompiler"/> calls with the part of a snapshot some Gateways depend on.
    /// </summary>
    internal static CompilationResult CompileResources(IEnumerable<Resource> resources, long revision, CompilerOptions options, ListenerBindings bindings, ProvisionedDataPlanes? dataPlanes) =>
        Run(new CompilationContext(resources, options, bindings) { DataPlanes = dataPlanes }, revision);

    private static CompilationResult Run(CompilationContext context, long revision)
    {
        var classStatuses = ImmutableSortedDictionary.CreateBuilder<ResourceKey, GatewayClassStatus>();
        var gatewayStatuses = ImmutableSortedDictionary.CreateBuilder<ResourceKey, GatewayStatus>();

        var ourClasses = GatewayClassFilter.Run(context, classStatuses);
        var gateways = ListenerValidator.Run(context, ourClasses);
        PortConflictResolver.Run(context, gateways);
        var attachment = RouteAttacher.Run(context, gateways);
        var filters = FsmFilters.Run(context, gateways);
        var policies = PolicyAttacher.Run(context, gateways, filters);
        var clients = ClientPolicyAttacher.Run(context, gateways, policies, filters);

        // The table, the Gateway statuses and the route statuses read what the stages above settled and write apart:
        // in the scale cluster, 10, 8 and 4 ms of work on one thread (the route statuses come sorted, and are copied
        // into their maps in one pass), so on two cores the longest takes one thread and the other two the other.
        RoutingTable? table = null;
        ResourceMap<RouteStatus>? routeStatuses = null;
        ResourceMap<string>? apiVersions = null;
        context.Concurrently(
            () => table = TableBuilder.Run(context, gateways, policies, clients),
            () => GatewayStatusBuilder.Run(context, gateways, gatewayStatuses),
            () => (routeStatuses, apiVersions) = (attachment.Statuses(), attachment.ApiVersions()));
        var policyStatuses = ImmutableSortedDictionary.CreateBuilder<ResourceKey, PolicyStatus>();
        policies.WriteStatuses(policyStatuses);
        var conditionStatuses = ImmutableSortedDictionary.CreateBuilder<ResourceKey, ConditionsStatus>();
        clients.WriteStatuses(conditionStatuses);
        filters.WriteStatuses(conditionStatuses, policyStatuses);

        var statuses = new StatusSet(ResourceMap.Create(classStatuses), ResourceMap.Create(gatewayStatuses), routeStatuses!)
        {
            Policies = ResourceMap.Create(policyStatuses),
            Conditions = ResourceMap.Create(conditionStatuses),
        };
        var result = new CompilationResult(revision, table!, statuses, context.SortedDiagnostics())
        {
            RouteApiVersions = apiVersions!,
        };
        context.Release();
        return result;
    }
}
