using System.Collections.Immutable;
using FsmGateway.Configuration;
using FsmGateway.Resources;
using FsmGateway.Routing;

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

    /// <summary>
    /// The options the controller compiles this cluster with (GatewayHostedService in controller mode): every Gateway has
    /// addresses of its own, and the table lists no endpoints (the data planes compile their own Gateways).
    /// </summary>
    public static CompilerOptions ControllerOptions { get; } = new()
    {
        ControllerName = GatewayApi.DefaultControllerName,
        ImplicitGatewayClassName = GatewayApi.DefaultGatewayClassName,
        GatewaysHaveOwnAddresses = true,
        ListEndpoints = false,
    };

    /// <summary>The cluster; with <paramref name="policyPercent"/> above 0, also <see cref="Policies"/>.</summary>
    public static ConfigSnapshot Build(int? invalidEvery = null, int policyPercent = 0)
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

        if (policyPercent > 0)
        {
            resources.AddRange(Policies(policyPercent));
        }

        return ConfigSnapshot.From(resources);
    }

    /// <summary>
    /// Policies on <paramref name="percent"/>% of the Services and Gateways each: a BackendLBPolicy (LeastLoad) on
    /// Services svc-r with r % (100 / percent) == 0, a HealthCheckPolicy (TCP, every 5 s) on those with remainder 1;
    /// a ClientTrafficPolicy (PROXY protocol) on Gateways gw-g with g % (100 / percent) == 0, a BackendTrafficPolicy
    /// (connect timeout) on those with remainder 1.
    /// </summary>
    public static IEnumerable<Resource> Policies(int percent)
    {
        var every = Math.Max(2, 100 / percent);
        for (var r = 0; r < Routes; r++)
        {
            var ns = $"team-{r % Gateways % 50}";
            if (r % every == 0)
            {
                yield return BalancerPolicy(r, "LeastLoad");
            }
            else if (r % every == 1)
            {
                yield return new HealthCheckPolicy(
                    new ObjectMeta(ns, $"hc-{r}"),
                    [new PolicyTargetReference(GatewayApi.CoreGroup, "Service", $"svc-{r}")],
                    [],
                    new FsmHealthCheck(TimeSpan.FromSeconds(5), 3, null, null, []));
            }
        }

        for (var g = 0; g < Gateways; g++)
        {
            var ns = $"team-{g % 50}";
            if (g % every == 0)
            {
                yield return new ClientTrafficPolicy(new ObjectMeta(ns, $"ctp-{g}"), [new PolicyTargetReference(GatewayApi.Group, "Gateway", $"gw-{g}")])
                {
                    ProxyProtocol = new ProxyProtocolSpec(Optional: true),
                };
            }
            else if (g % every == 1)
            {
                yield return new BackendTrafficPolicy(new ObjectMeta(ns, $"btp-{g}"), [new PolicyTargetReference(GatewayApi.Group, "Gateway", $"gw-{g}")])
                {
                    ConnectTimeout = TimeSpan.FromSeconds(3),
                };
            }
        }
    }

    /// <summary>The BackendLBPolicy <see cref="Policies"/> puts on Service svc-<paramref name="route"/>, with <paramref name="algorithm"/>.</summary>
    public static BackendLbPolicy BalancerPolicy(int route, string algorithm) =>
        new(new ObjectMeta($"team-{route % Gateways % 50}", $"lb-{route}"), [new PolicyTargetReference(GatewayApi.CoreGroup, "Service", $"svc-{route}")], algorithm);
}
