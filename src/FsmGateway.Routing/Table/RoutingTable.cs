using System.Collections.Immutable;
using FsmGateway.Resources;

namespace FsmGateway.Routing;

/// <summary>
/// What the data plane serves: one entry per listening socket, each with the route that carries its traffic.
/// Immutable; sorted by port, then gateway, then listener name.
/// </summary>
/// <param name="Listeners">The listeners to bind.</param>
public sealed record RoutingTable(EquatableArray<ListenerRoute> Listeners)
{
    /// <summary>A table that serves nothing.</summary>
    public static RoutingTable Empty { get; } = new([]);
}

/// <summary>A listener to bind, and where its connections go.</summary>
/// <param name="Gateway">The Gateway the listener belongs to.</param>
/// <param name="ListenerName">The listener's name in its Gateway.</param>
/// <param name="Addresses">The IP addresses to bind; empty means every address.</param>
/// <param name="Port">The port to bind.</param>
/// <param name="Route">The route that carries the traffic (the oldest attached one), or <see langword="null"/> when none is attached: then every connection is closed at once.</param>
/// <param name="Backends">The winning route's backends, in spec order, including those that cannot serve: they keep their share of the weight.</param>
public sealed record ListenerRoute(
    ResourceKey Gateway,
    string ListenerName,
    EquatableArray<string> Addresses,
    int Port,
    ResourceKey? Route,
    EquatableArray<RouteBackend> Backends)
{
    /// <summary>What the transport does with client connections on this listener: PROXY protocol, filters, caps, timeouts, keepalive.</summary>
    public ClientPolicy Client { get; init; } = ClientPolicy.Default;

    /// <summary>The sum of every backend's weight.</summary>
    public long TotalWeight => Backends.Sum(static b => (long)b.Weight);

    /// <summary>The weight of backends that cannot serve; that share of connections is closed at once, never redistributed.</summary>
    public long RejectedWeight => Backends.Where(static b => !b.CanServe).Sum(static b => (long)b.Weight);
}

/// <summary>One weighted backend of a route, resolved to endpoints.</summary>
/// <param name="Namespace">The backend's namespace.</param>
/// <param name="Name">The backend's name.</param>
/// <param name="Port">The Service port named by the backendRef.</param>
/// <param name="Weight">Its share of connections.</param>
/// <param name="Endpoints">The ready endpoints (address and target port), sorted; none when the compile did not list them (<see cref="CompilerOptions.ListEndpoints"/>).</param>
/// <param name="Problem">Why the reference did not resolve, or <see langword="null"/> when it did.</param>
public sealed record RouteBackend(string Namespace, string Name, int? Port, int Weight, EquatableArray<BackendEndpoint> Endpoints, BackendProblem? Problem)
{
    /// <summary>Whether connections sent here can be served: the reference resolved and there is a ready endpoint.</summary>
    public bool CanServe => Problem is null && (!Endpoints.IsEmpty || ReadyEndpointsOmitted);

    /// <summary>
    /// True when the backend has a ready endpoint that <see cref="Endpoints"/> does not list, because the compile was
    /// told not to list them (<see cref="CompilerOptions.ListEndpoints"/> false); false when they are listed.
    /// </summary>
    public bool ReadyEndpointsOmitted { get; init; }

    /// <summary>What the transport does for this backend: load balancing, health, caps, PROXY protocol, timeouts.</summary>
    public BackendPolicy Policy { get; init; } = BackendPolicy.Default;
}

/// <summary>Why a backendRef did not resolve: the route's ResolvedRefs reason and a message naming the field.</summary>
/// <param name="Reason">InvalidKind, BackendNotFound or RefNotPermitted.</param>
/// <param name="Message">What is wrong, naming the field and object.</param>
public sealed record BackendProblem(string Reason, string Message);

/// <summary>An address and port to connect to.</summary>
/// <param name="Address">An IP address (or a name, for FQDN EndpointSlices).</param>
/// <param name="Port">The port.</param>
public readonly record struct BackendEndpoint(string Address, int Port) : IComparable<BackendEndpoint>
{
    /// <inheritdoc />
    public int CompareTo(BackendEndpoint other)
    {
        var byAddress = string.CompareOrdinal(Address, other.Address);
        return byAddress != 0 ? byAddress : Port.CompareTo(other.Port);
    }

    /// <summary>Compares by address, then port.</summary>
    /// <param name="left">The first endpoint.</param>
    /// <param name="right">The second endpoint.</param>
    /// <returns>Whether <paramref name="left"/> sorts first.</returns>
    public static bool operator <(BackendEndpoint left, BackendEndpoint right) => left.CompareTo(right) < 0;

    /// <summary>Compares by address, then port.</summary>
    /// <param name="left">The first endpoint.</param>
    /// <param name="right">The second endpoint.</param>
    /// <returns>Whether <paramref name="left"/> sorts last.</returns>
    public static bool operator >(BackendEndpoint left, BackendEndpoint right) => left.CompareTo(right) > 0;

    /// <summary>Compares by address, then port.</summary>
    /// <param name="left">The first endpoint.</param>
    /// <param name="right">The second endpoint.</param>
    /// <returns>Whether <paramref name="left"/> sorts first or equal.</returns>
    public static bool operator <=(BackendEndpoint left, BackendEndpoint right) => left.CompareTo(right) <= 0;

    /// <summary>Compares by address, then port.</summary>
    /// <param name="left">The first endpoint.</param>
    /// <param name="right">The second endpoint.</param>
    /// <returns>Whether <paramref name="left"/> sorts last or equal.</returns>
    public static bool operator >=(BackendEndpoint left, BackendEndpoint right) => left.CompareTo(right) >= 0;

    /// <summary><c>address:port</c>, with IPv6 addresses bracketed.</summary>
    /// <returns>The endpoint as text.</returns>
    public override string ToString() => Address.Contains(':', StringComparison.Ordinal) ? $"[{Address}]:{Port}" : $"{Address}:{Port}";
}
