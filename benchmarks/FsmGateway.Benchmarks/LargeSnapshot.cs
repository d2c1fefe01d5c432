using System.Collections.Immutable;
using FsmGateway.Configuration;
using FsmGateway.Resources;

namespace FsmGateway.Benchmarks;

/// <summary>
/// A large cluster: 1,000 Gateways × 10 TCP listeners, 10,000 TCPRoutes (one per listener), 10,000 Services each
/// with an EndpointSlice of 10 endpoints. With <c>invalidEvery</c> set, that share of Gateways, routes and
/// backends is broken in the ways users break them (hostname on a TCP listener, missing Service, foreign namespace).
/// </summary>
public static class LargeSnapshot
{
    public const int Gateways = 1_000;
    public const int ListenersPerGateway = 10;
    public const int Routes = Gateways * ListenersPerGateway;
    public const int EndpointsPerService = 10;

    public static ConfigSnapshot Build(int? invalidEvery = null)
    {
        var resources = new List<Resource>(Gateways + (Routes * 3) + 1)
        {
            new GatewayClass(new ObjectMeta(string.Empty, "fsm"), GatewayApi.DefaultControllerName),
        };
        var created = new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);
        for (var g = 0; g < Gateways; g++)
        {
            var ns = $"team-{g % 50}";
            var broken = invalidEvery is { } every && g % every == 0;
            var listeners = Enumerable.Range(0, ListenersPerGateway)
                .Select(l => new Listener($"l{l}", 10_000 + (g * ListenersPerGateway) + l, "TCP")
                {
                    Hostname = broken && l == 0 ? "example.com" : null,
                })
                .ToImmutableArray();
            resources.Add(new Gateway(new ObjectMeta(ns, $"gw-{g}") { CreationTimestamp = created.AddSeconds(g) }, "fsm", listeners));
        }

        for (var r = 0; r < Routes; r++)
        {
            var g = r % Gateways;
            var ns = $"team-{g % 50}";
            var broken = invalidEvery is { } every && r % every == 1;
            var backendNs = broken && r % 2 == 0 ? "elsewhere" : ns;
            var service = broken && r % 2 == 1 ? "missing" : $"svc-{r}";
            resources.Add(new TcpRoute(
                new ObjectMeta(ns, $"route-{r}") { CreationTimestamp = created.AddSeconds(r) },
                [new ParentReference(null, null, null, $"gw-{g}", $"l{r / Gateways}", null)],
                [new TcpRouteRule([new BackendReference(null, null, backendNs, service, 80, 1)])]));
            resources.Add(new Service(new ObjectMeta(ns, $"svc-{r}"), [new ServicePort("tcp", 80, "TCP")]));
            resources.Add(new EndpointSlice(
                new ObjectMeta(ns, $"svc-{r}-abcde"),
                $"svc-{r}",
                "IPv4",
                [new EndpointPort("tcp", 8080, "TCP")],
                [.. Enumerable.Range(0, EndpointsPerService).Select(e => new Endpoint([$"10.{r / 256 % 256}.{r % 256}.{e + 1}"], true))]));
        }

        return ConfigSnapshot.From(resources);
    }
}
