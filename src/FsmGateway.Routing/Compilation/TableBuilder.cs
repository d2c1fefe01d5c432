using System.Collections.Immutable;
using FsmGateway.Resources;

namespace FsmGateway.Routing.Compilation;

/// <summary>Builds the routing table: one entry per served listener, carrying its oldest attached route's backends.</summary>
internal static class TableBuilder
{
    public static RoutingTable Run(CompilationContext context, List<GatewayState> gateways, Dictionary<ResourceKey, ResolvedBackends> backends, PolicyAttacher policies, ClientPolicyAttacher clients)
    {
        var entries = new List<ListenerRoute>();
        foreach (var listener in gateways.SelectMany(static g => g.Listeners).Where(static l => l.IsServed))
        {
            var winner = listener.AttachedRoutes.FirstOrDefault();
            if (winner is null)
            {
                context.Note(listener.Owner.Key, $"{listener.Describe}: no route attached; connections will be closed at once");
            }
            else if (listener.AttachedRoutes.Count > 1)
            {
                var idle = string.Join(", ", listener.AttachedRoutes.Skip(1).Select(static r => $"{r.Metadata.Namespace}/{r.Metadata.Name}"));
                context.Note(listener.Owner.Key,
                    $"{listener.Describe}: {winner.Key} is the oldest attached route and carries the traffic; also attached: {idle}");
            }

            var routeBackends = winner is null ? [] : WithPolicies(backends[winner.Key].Backends, listener, winner, policies);
            foreach (var backend in routeBackends.Where(static b => b.Problem is null && b.Endpoints.IsEmpty && b.Weight > 0))
            {
                context.Note(winner!.Key,
                    $"backend Service {backend.Namespace}/{backend.Name} port {backend.Port} has no ready endpoints; its share of connections (weight {backend.Weight}) is closed at once");
            }

            entries.Add(new ListenerRoute(
                listener.Owner.Key,
                listener.Listener.Name,
                listener.Owner.BindAddresses,
                listener.Listener.Port,
                winner?.Key,
                routeBackends)
            {
                Client = clients.Effective(listener, winner),
            });
        }

        return new RoutingTable(
        [
            .. entries
                .OrderBy(static e => e.Port)
                .ThenBy(static e => e.Gateway)
                .ThenBy(static e => e.ListenerName, StringComparer.Ordinal),
        ]);
    }

    private static ImmutableArray<RouteBackend> WithPolicies(ImmutableArray<RouteBackend> backends, ListenerState listener, TcpRoute route, PolicyAttacher policies)
    {
        var builder = ImmutableArray.CreateBuilder<RouteBackend>(backends.Length);
        foreach (var backend in backends)
        {
            var policy = policies.Effective(listener, route, backend);
            builder.Add(ReferenceEquals(policy, BackendPolicy.Default) ? backend : backend with { Policy = policy });
        }

        return builder.MoveToImmutable();
    }
}
