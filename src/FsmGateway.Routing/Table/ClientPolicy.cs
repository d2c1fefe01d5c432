using FsmGateway.Resources;

namespace FsmGateway.Routing;

/// <summary>
/// What the transport does with a client connection on one listener before (and while) it reaches a backend, after every
/// policy that reaches the listener is merged: FSM's ListenerFilters (ConcurrencyLimit, IPRestriction) and
/// RouteRuleFilterPolicy, FSM's first-generation RateLimitPolicy, and our ClientTrafficPolicy on the Gateway and on the
/// listener (the listener-level one winning field by field, ours winning over FSM's where both set the same thing).
/// <see cref="Default"/> when no policy applies.
/// </summary>
/// <remarks>
/// The order on accept: <see cref="ProxyProtocol"/> (the parsed source address is the client address from then on),
/// then <see cref="ListenerFilters"/>, then <see cref="RouteFilters"/>, then <see cref="ConnectionLimit"/>, then the
/// upstream connect. Every count (connections, bytes) is per listener and per replica.
/// </remarks>
public sealed record ClientPolicy
{
    /// <summary>No PROXY protocol, no filters, no caps, the socket's keepalive, the gateway's global timeouts and buffer size.</summary>
    public static ClientPolicy Default { get; } = new();

    /// <summary>Accept a PROXY protocol header (v1 or v2) first on every client connection, or <see langword="null"/> for none.</summary>
    public ClientProxyProtocol? ProxyProtocol { get; init; }

    /// <summary>TCP keepalive on client sockets, or <see langword="null"/> to leave the socket as it is.</summary>
    public TcpKeepalive? TcpKeepalive { get; init; }

    /// <summary>Close a connection after this long with no bytes either way; <see langword="null"/> for the gateway's global idle timeout.</summary>
    public TimeSpan? IdleTimeout { get; init; }

    /// <summary>
    /// How long one direction may stay open after the other has finished (a half-closed connection);
    /// <see langword="null"/> for the gateway's global one.
    /// </summary>
    public TimeSpan? HalfClosedTimeout { get; init; }

    /// <summary>Close a connection this long after it was accepted, busy or not; <see langword="null"/> for no limit (the gateway's global).</summary>
    public TimeSpan? MaxConnectionDuration { get; init; }

    /// <summary>The most connections open at once on the listener (ClientTrafficPolicy's <c>connection.connectionLimit</c>), or <see langword="null"/> for no limit.</summary>
    public ConnectionLimit? ConnectionLimit { get; init; }

    /// <summary>The most bytes held per direction for one connection; <see langword="null"/> for the gateway's global size.</summary>
    public int? BufferLimit { get; init; }

    /// <summary>The data-rate cap on bytes from the client to the backend, per connection, or <see langword="null"/> for none.</summary>
    public BandwidthLimit? UploadBandwidth { get; init; }

    /// <summary>The data-rate cap on bytes from the backend to the client, per connection, or <see langword="null"/> for none.</summary>
    public BandwidthLimit? DownloadBandwidth { get; init; }

    /// <summary>FSM's ListenerFilters on this listener's port, in the order they run: lower priority first, ties by type, then by name.</summary>
    public EquatableArray<ConnectionFilter> ListenerFilters { get; init; } = [];

    /// <summary>
    /// The filters of the RouteRuleFilterPolicies on the rule of the listener's winning route (a TCPRoute has one rule),
    /// in the order they run (lower priority first); they run after <see cref="ListenerFilters"/>.
    /// </summary>
    public EquatableArray<ConnectionFilter> RouteFilters { get; init; } = [];

    /// <summary>The policies that set something here (ClientTrafficPolicy, RateLimitPolicy, ListenerFilter, RouteRuleFilterPolicy), least specific first, for output and logs.</summary>
    public EquatableArray<ResourceKey> Sources { get; init; } = [];
}

/// <summary>PROXY protocol (v1 and v2) on client connections: the header's source address becomes the client address.</summary>
/// <param name="Optional">Whether connections without a header are accepted too (then the socket's peer is the client address).</param>
public sealed record ClientProxyProtocol(bool Optional)
{
    /// <summary>Envoy Gateway's default <c>timeout.tcp.connectionInspectionTimeout</c>, 15s.</summary>
    public static readonly TimeSpan DefaultInspectionTimeout = TimeSpan.FromSeconds(15);

    /// <summary>How long the header may take to arrive; the connection is closed when it has not by then.</summary>
    public TimeSpan InspectionTimeout { get; init; } = DefaultInspectionTimeout;
}

/// <summary>A cap on the connections open at once on a listener (per replica); connections past it are closed.</summary>
/// <param name="Max">The most connections open at once (at least 1).</param>
/// <param name="CloseDelay">How long a refused connection is held before it is closed; <see langword="null"/> closes it at once.</param>
public sealed record ConnectionLimit(long Max, TimeSpan? CloseDelay);

/// <summary>A per-connection data-rate cap on one direction (a token bucket).</summary>
/// <param name="BytesPerSecond">The sustained rate (at least 1).</param>
/// <param name="Burst">The bucket's size: the most bytes passed at once after a quiet spell (at least 1).</param>
public sealed record BandwidthLimit(long BytesPerSecond, long Burst);

/// <summary>What an FSM connection filter does.</summary>
public enum ConnectionFilterType
{
    /// <summary>FSM's <c>ConcurrencyLimit</c>: connections past <see cref="ConnectionFilter.MaxConnections"/> are closed at once.</summary>
    ConcurrencyLimit,

    /// <summary>FSM's <c>IPRestriction</c>: the client address must match a non-empty allow list and must not match the deny list, else the connection is closed.</summary>
    IPRestriction,
}

/// <summary>
/// One FSM filter (ConcurrencyLimit or IPRestriction) the transport runs on accepted connections, before any upstream
/// connect. A ConcurrencyLimit counts per filter, per listener and per replica.
/// </summary>
/// <param name="Type">What the filter does.</param>
/// <param name="Source">The policy that put it here: a ListenerFilter, or a RouteRuleFilterPolicy.</param>
/// <param name="Filter">The object naming the type: the ListenerFilter itself, or the Filter a RouteRuleFilterPolicy references.</param>
/// <param name="Config">The ConcurrencyLimit or IPRestriction object holding the settings.</param>
/// <param name="Priority">Its priority (0–10000; lower runs first).</param>
public sealed record ConnectionFilter(ConnectionFilterType Type, ResourceKey Source, ResourceKey Filter, ResourceKey Config, int Priority)
{
    /// <summary>For <see cref="ConnectionFilterType.ConcurrencyLimit"/>: the most connections open at once through this filter.</summary>
    public int? MaxConnections { get; init; }

    /// <summary>
    /// For <see cref="ConnectionFilterType.IPRestriction"/>: the networks a client address must be in (when not empty),
    /// as normalized CIDR strings (<c>10.0.0.0/8</c>, <c>2001:db8::/32</c>; a bare address is <c>/32</c> or <c>/128</c>),
    /// parseable with <see cref="System.Net.IPNetwork.Parse(string)"/>.
    /// </summary>
    public EquatableArray<string> Allowed { get; init; } = [];

    /// <summary>
    /// For <see cref="ConnectionFilterType.IPRestriction"/>: the networks a client address must not be in, as <see cref="Allowed"/>.
    /// An IPv4-mapped IPv6 client address (a dual-stack socket's <c>::ffff:a.b.c.d</c>) is matched as the IPv4 address.
    /// </summary>
    public EquatableArray<string> Forbidden { get; init; } = [];
}
