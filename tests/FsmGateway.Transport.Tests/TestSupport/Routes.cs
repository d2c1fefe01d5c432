using FsmGateway.Resources;
using FsmGateway.Routing;
using FsmGateway.Transport.Proxy;

namespace FsmGateway.Transport.Tests.TestSupport;

/// <summary>Routing tables built by hand: each listener bound to 127.0.0.1 only.</summary>
internal static class Routes
{
    public static readonly ResourceKey Gateway = new(ResourceKind.Gateway, "test", "gateway");

    public static readonly ResourceKey Route = new(ResourceKind.TcpRoute, "test", "route");

    /// <summary>A table of <paramref name="listeners"/>, sorted by port as the compiler sorts them.</summary>
    /// <param name="listeners">The listeners.</param>
    /// <returns>The table.</returns>
    public static RoutingTable Table(params ListenerRoute[] listeners) => new([.. listeners.OrderBy(static l => l.Port)]);

    /// <summary>A listener on 127.0.0.1:<paramref name="port"/> whose route sends connections to <paramref name="backends"/>.</summary>
    /// <param name="port">The port.</param>
    /// <param name="backends">The route's backends, in spec order.</param>
    /// <returns>The listener.</returns>
    public static ListenerRoute Listener(int port, params RouteBackend[] backends) =>
        new(Gateway, $"tcp-{port}", ["127.0.0.1"], port, Route, [.. backends]);

    /// <summary>A listener with no route attached: every connection is closed at once.</summary>
    /// <param name="port">The port.</param>
    /// <returns>The listener.</returns>
    public static ListenerRoute Unrouted(int port) => new(Gateway, $"tcp-{port}", ["127.0.0.1"], port, null, []);

    /// <summary>A resolved backend with the given endpoints.</summary>
    /// <param name="name">The Service name.</param>
    /// <param name="weight">The weight.</param>
    /// <param name="endpoints">The ready endpoints.</param>
    /// <returns>The backend.</returns>
    public static RouteBackend Backend(string name, int weight, params BackendEndpoint[] endpoints) =>
        new("test", name, 8080, weight, [.. endpoints.Order()], null);

    /// <summary>A resolved backend whose endpoints are the given test backends.</summary>
    /// <param name="name">The Service name.</param>
    /// <param name="weight">The weight.</param>
    /// <param name="servers">The servers.</param>
    /// <returns>The backend.</returns>
    public static RouteBackend Backend(string name, int weight, params TestBackend[] servers) =>
        Backend(name, weight, [.. servers.Select(static s => s.Endpoint)]);

    /// <summary>A backendRef that did not resolve: it keeps its weight and its connections are closed.</summary>
    /// <param name="name">The Service name.</param>
    /// <param name="weight">The weight.</param>
    /// <returns>The backend.</returns>
    public static RouteBackend Invalid(string name, int weight) =>
        new("test", name, 8080, weight, [], new BackendProblem("BackendNotFound", $"spec.rules[0].backendRefs[0]: Service test/{name} not found"));

    /// <summary>A proxy on real sockets serving <paramref name="table"/>, every port bound.</summary>
    /// <param name="table">The table.</param>
    /// <param name="options">The options; defaults when null.</param>
    /// <param name="time">The clock; the system clock when null.</param>
    /// <returns>The proxy.</returns>
    public static async Task<GatewayProxy> StartProxyAsync(RoutingTable table, ProxyOptions? options = null, TimeProvider? time = null)
    {
        var proxy = GatewayProxy.CreateDefault(options ?? new ProxyOptions(), time);
        try
        {
            var bindings = await proxy.ApplyAsync(table, CancellationToken.None).Within("ApplyAsync");
            foreach (var (port, outcome) in bindings.ByPort)
            {
                Assert.True(outcome.State == BindState.Bound, $"port {port} was not bound: {outcome.Message}");
            }

            return proxy;
        }
        catch
        {
            await proxy.DisposeAsync();
            throw;
        }
    }
}
