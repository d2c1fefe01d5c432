using System.Collections.Immutable;
using FsmGateway.Resources;

namespace FsmGateway.Routing.Compilation;

/// <summary>Builds the routing table: one entry per served listener, carrying its oldest attached route's backends.</summary>
internal static class TableBuilder
{
    public static RoutingTable Run(CompilationContext context, List<GatewayState> gateways, PolicyAttacher policies, ClientPolicyAttacher clients)
    {
        var served = 0;
        foreach (var gateway in gateways)
        {
            foreach (var listener in gateway.Listeners)
            {
                served += listener.IsServed ? 1 : 0;
            }
        }

        // Sized once and wrapped, not grown and copied: the table's array is the one filled here. The Gateways come in
        // key order, and a Gateway serves one listener per port at most (two on one port conflict, and neither is
        // served), so the table's order is the order of (port, place here): a sort of numbers, with no string compared.
        var entries = new ListenerRoute[served];
        var order = new long[served];
        var count = 0;
        foreach (var gateway in gateways)
        {
            foreach (var listener in gateway.Listeners)
            {
                if (listener.IsServed)
                {
                    order[count] = ((long)listener.Listener.Port << 32) | (uint)count;
                    entries[count++] = Entry(context, listener, policies, clients);
                }
            }
        }

        Array.Sort(order, entries);
        AssertInTableOrder(entries);
        return new RoutingTable(System.Runtime.InteropServices.ImmutableCollectionsMarshal.AsImmutableArray(entries));
    }

    /// <summary>The table's order: by port, then Gateway, then listener name (unique among served listeners: two listeners of one Gateway on one port conflict, and neither is served).</summary>
    public static int CompareEntries(ListenerRoute a, ListenerRoute b)
    {
        var byPort = a.Port.CompareTo(b.Port);
        if (byPort != 0)
        {
            return byPort;
        }

        var byGateway = a.Gateway.CompareTo(b.Gateway);
        return byGateway != 0 ? byGateway : string.CompareOrdinal(a.ListenerName, b.ListenerName);
    }

    [System.Diagnostics.Conditional("DEBUG")]
    private static void AssertInTableOrder(ListenerRoute[] entries)
    {
        for (var i = 1; i < entries.Length; i++)
        {
            System.Diagnostics.Debug.Assert(CompareEntries(entries[i - 1], entries[i]) < 0, "the table's entries are sorted by port, Gateway and listener name, each once");
        }
    }

    private static ListenerRoute Entry(CompilationContext context, ListenerState listener, PolicyAttacher policies, ClientPolicyAttacher clients)
    {
        var winner = listener.Winner;
        var route = winner?.Route;
        if (route is null)
        {
            context.Note(listener.Owner.Key, $"{listener.Describe}: no route attached; connections will be closed at once");
        }
        else if (listener.AttachedCount > 1)
        {
            var idle = string.Join(", ", listener.AttachedRoutes.Skip(1).Select(static r => $"{r.Metadata.Namespace}/{r.Metadata.Name}"));
            context.Note(listener.Owner.Key,
                $"{listener.Describe}: {route.Key} is the oldest attached route and carries the traffic; also attached: {idle}");
        }

        var routeBackends = winner is { } carrier ? WithPolicies(carrier.Backends.Backends, listener, carrier.Route, policies) : [];
        foreach (var backend in routeBackends)
        {
            if (HasNoReadyEndpoints(backend))
            {
                context.Note(route!.Key, NoReadyEndpoints(backend));
            }
        }

        return new ListenerRoute(
            listener.Owner.Key,
            listener.Listener.Name,
            listener.Owner.BindAddresses,
            listener.Listener.Port,
            route?.Key,
            routeBackends)
        {
            Client = clients.Effective(listener, route),
        };
    }

    /// <summary>Whether the listener whose route carries <paramref name="backend"/> gets a <see cref="NoReadyEndpoints"/> note.</summary>
    public static bool HasNoReadyEndpoints(RouteBackend backend) => backend.Problem is null && !backend.CanServe && backend.Weight > 0;

    /// <summary>The note on the winning route for a backend that resolved but has no ready endpoint.</summary>
    public static string NoReadyEndpoints(RouteBackend backend) =>
        $"{NoReadyEndpointsPrefix(backend.Namespace, backend.Name)}{backend.Port} has no ready endpoints; its share of connections (weight {backend.Weight}) is closed at once";

    /// <summary>How every <see cref="NoReadyEndpoints"/> note about one Service begins.</summary>
    public static string NoReadyEndpointsPrefix(string ns, string name) => $"backend Service {ns}/{name} port ";

    private static ImmutableArray<RouteBackend> WithPolicies(ImmutableArray<RouteBackend> backends, ListenerState listener, TcpRoute route, PolicyAttacher policies)
    {
        if (!policies.HasWinners)
        {
            return backends;
        }

        var builder = ImmutableArray.CreateBuilder<RouteBackend>(backends.Length);
        foreach (var backend in backends)
        {
            var policy = policies.Effective(listener, route, backend);
            builder.Add(ReferenceEquals(policy, BackendPolicy.Default) ? backend : backend with { Policy = policy });
        }

        return builder.MoveToImmutable();
    }
}
