using System.Collections.Immutable;
using System.Net;
using FsmGateway.Resources;

namespace FsmGateway.Configuration;

/// <summary>
/// Gateway API objects from code, as naturally as from YAML:
/// <code>
/// var resources = new ResourceSetBuilder("apps")
///     .Gateway("gw", g => g.Listener("foo", 8000).Listener("bar", 8001))
///     .TcpRoute("route", r => r.Parent("gw").Backend("echo", 9000, weight: 70).Backend("echo-v2", 9000, weight: 30))
///     .Service("echo", 9000, "127.0.0.1:7001", "127.0.0.1:7002")
///     .Service("echo-v2", 9000, "127.0.0.1:7003")
///     .Build();
/// </code>
/// With no GatewayClass added, one named <c>fsm</c> with the default controller name is included.
/// </summary>
/// <param name="defaultNamespace">The namespace of every object added without one.</param>
public sealed class ResourceSetBuilder(string defaultNamespace = "default")
{
    private readonly List<Resource> _resources = [];

    /// <summary>Adds a GatewayClass.</summary>
    /// <param name="name">Its name.</param>
    /// <param name="controllerName">The controller it names.</param>
    /// <returns>This builder.</returns>
    public ResourceSetBuilder GatewayClass(string name, string controllerName = GatewayApi.DefaultControllerName) =>
        Add(new GatewayClass(new ObjectMeta(string.Empty, name), controllerName));

    /// <summary>Adds a Gateway of class <c>fsm</c> unless <paramref name="configure"/> says otherwise.</summary>
    /// <param name="name">Its name.</param>
    /// <param name="configure">Adds listeners and addresses.</param>
    /// <param name="ns">Its namespace; the builder's default when null.</param>
    /// <returns>This builder.</returns>
    public ResourceSetBuilder Gateway(string name, Action<GatewayBuilder> configure, string? ns = null)
    {
        ArgumentNullException.ThrowIfNull(configure);
        var builder = new GatewayBuilder();
        configure(builder);
        return Add(new Gateway(Meta(name, ns), builder.ClassName, [.. builder.Listeners]) { Addresses = [.. builder.Addresses] });
    }

    /// <summary>Adds a TCPRoute (v1, one rule).</summary>
    /// <param name="name">Its name.</param>
    /// <param name="configure">Adds parents and weighted backends.</param>
    /// <param name="ns">Its namespace; the builder's default when null.</param>
    /// <returns>This builder.</returns>
    public ResourceSetBuilder TcpRoute(string name, Action<TcpRouteBuilder> configure, string? ns = null)
    {
        ArgumentNullException.ThrowIfNull(configure);
        var builder = new TcpRouteBuilder();
        configure(builder);
        return Add(new TcpRoute(Meta(name, ns), [.. builder.Parents], [new TcpRouteRule([.. builder.Backends])]));
    }

    /// <summary>
    /// Adds a Service with one TCP port and an EndpointSlice of ready endpoints for it, as a cluster's endpoint
    /// controller would. Endpoints are <c>address:port</c> (IPv6 as <c>[address]:port</c>); with none, the Service has no endpoints.
    /// </summary>
    /// <param name="name">The Service's name.</param>
    /// <param name="port">The Service port a backendRef names.</param>
    /// <param name="endpoints">The endpoints, each <c>address:port</c>.</param>
    /// <returns>This builder.</returns>
    public ResourceSetBuilder Service(string name, int port, params string[] endpoints) => ServiceIn(null, name, port, endpoints);

    /// <summary>Like <see cref="Service(string, int, string[])"/>, in namespace <paramref name="ns"/>.</summary>
    /// <param name="ns">The namespace.</param>
    /// <param name="name">The Service's name.</param>
    /// <param name="port">The Service port.</param>
    /// <param name="endpoints">The endpoints, each <c>address:port</c>.</param>
    /// <returns>This builder.</returns>
    public ResourceSetBuilder ServiceIn(string? ns, string name, int port, params string[] endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        Add(new Service(Meta(name, ns), [new ServicePort(null, port, "TCP")]));
        var parsed = endpoints.Select(e => IPEndPoint.TryParse(e, out var ep) && ep.Port != 0
            ? ep
            : throw new ArgumentException($"Endpoint '{e}' of Service {name} is not address:port.", nameof(endpoints))).ToList();
        foreach (var byPort in parsed.GroupBy(static e => (e.Port, e.AddressFamily)))
        {
            var family = byPort.Key.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? "IPv6" : "IPv4";
            Add(new EndpointSlice(
                Meta($"{name}-{family.ToLowerInvariant()}-{byPort.Key.Port}", ns),
                name,
                family,
                [new EndpointPort(null, byPort.Key.Port, "TCP")],
                [.. byPort.Select(static e => new Endpoint([e.Address.ToString()], true))]));
        }

        return this;
    }

    /// <summary>Adds a ReferenceGrant letting TCPRoutes in <paramref name="fromNamespace"/> refer to Services in <paramref name="ns"/>.</summary>
    /// <param name="name">Its name.</param>
    /// <param name="ns">The namespace of the Services.</param>
    /// <param name="fromNamespace">The namespace of the routes.</param>
    /// <returns>This builder.</returns>
    public ResourceSetBuilder ServiceReferenceGrant(string name, string ns, string fromNamespace) =>
        Add(new ReferenceGrant(new ObjectMeta(ns, name), [new ReferenceGrantFrom(GatewayApi.Group, "TCPRoute", fromNamespace)], [new ReferenceGrantTo(GatewayApi.CoreGroup, "Service", null)]));

    /// <summary>Adds any object of the model.</summary>
    /// <param name="resource">The object.</param>
    /// <returns>This builder.</returns>
    public ResourceSetBuilder Add(Resource resource)
    {
        ArgumentNullException.ThrowIfNull(resource);
        _resources.Add(resource);
        return this;
    }

    /// <summary>Everything added, plus GatewayClass <c>fsm</c> when no GatewayClass was added.</summary>
    /// <returns>The objects.</returns>
    public ImmutableArray<Resource> Build() =>
        _resources.Any(static r => r is GatewayClass)
            ? [.. _resources]
            : [new GatewayClass(new ObjectMeta(string.Empty, GatewayApi.DefaultGatewayClassName), GatewayApi.DefaultControllerName), .. _resources];

    private ObjectMeta Meta(string name, string? ns) => new(ns ?? defaultNamespace, name);
}

/// <summary>Configures a Gateway for <see cref="ResourceSetBuilder.Gateway"/>.</summary>
public sealed class GatewayBuilder
{
    internal string ClassName { get; private set; } = GatewayApi.DefaultGatewayClassName;

    internal List<Listener> Listeners { get; } = [];

    internal List<GatewayAddress> Addresses { get; } = [];

    /// <summary>Sets the GatewayClass (default <c>fsm</c>).</summary>
    /// <param name="name">The class name.</param>
    /// <returns>This builder.</returns>
    public GatewayBuilder Class(string name)
    {
        ClassName = name;
        return this;
    }

    /// <summary>Adds a TCP listener.</summary>
    /// <param name="name">The listener's name.</param>
    /// <param name="port">Its port.</param>
    /// <param name="from">Which namespaces' routes may attach (default: the Gateway's own).</param>
    /// <returns>This builder.</returns>
    public GatewayBuilder Listener(string name, int port, FromNamespaces from = FromNamespaces.Same)
    {
        Listeners.Add(new Listener(name, port, "TCP") { AllowedRoutes = new AllowedRoutes(from, null, null) });
        return this;
    }

    /// <summary>Binds the listeners on <paramref name="ipAddress"/> only (default: every address).</summary>
    /// <param name="ipAddress">An IP address.</param>
    /// <returns>This builder.</returns>
    public GatewayBuilder Address(string ipAddress)
    {
        Addresses.Add(new GatewayAddress(GatewayAddress.IPAddressType, ipAddress));
        return this;
    }
}

/// <summary>Configures a TCPRoute for <see cref="ResourceSetBuilder.TcpRoute"/>.</summary>
public sealed class TcpRouteBuilder
{
    internal List<ParentReference> Parents { get; } = [];

    internal List<BackendReference> Backends { get; } = [];

    /// <summary>Attaches to a Gateway, optionally to one listener by name or port.</summary>
    /// <param name="gateway">The Gateway's name.</param>
    /// <param name="sectionName">A listener name.</param>
    /// <param name="port">A listener port.</param>
    /// <param name="ns">The Gateway's namespace (default: the route's).</param>
    /// <returns>This builder.</returns>
    public TcpRouteBuilder Parent(string gateway, string? sectionName = null, int? port = null, string? ns = null)
    {
        Parents.Add(new ParentReference(null, null, ns, gateway, sectionName, port));
        return this;
    }

    /// <summary>Sends a share of connections to a Service port.</summary>
    /// <param name="service">The Service's name.</param>
    /// <param name="port">The Service port.</param>
    /// <param name="weight">The share (default 1).</param>
    /// <param name="ns">The Service's namespace (default: the route's; another needs a ReferenceGrant).</param>
    /// <returns>This builder.</returns>
    public TcpRouteBuilder Backend(string service, int port, int weight = 1, string? ns = null)
    {
        Backends.Add(new BackendReference(null, null, ns, service, port, weight));
        return this;
    }
}
