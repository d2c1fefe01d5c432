using FsmGateway.Routing;
using FsmGateway.Transport.Connections;
using FsmGateway.Transport.LoadBalancing;

namespace FsmGateway.Transport.Proxy;

/// <summary>
/// How connections to one backend pick an endpoint and connect: its <see cref="BackendPolicy"/> resolved against the
/// proxy's options and policy registry when a routing table is applied, so the connection path reads fields only.
/// </summary>
internal sealed class BackendConnectSettings
{
    /// <summary>Picks the endpoint.</summary>
    public required ILoadBalancingPolicy Policy { get; init; }

    /// <summary>The Maglev table size, for <see cref="LoadBalancingPolicies.ConsistentHashSourceIP"/>.</summary>
    public int ConsistentHashTableSize { get; init; } = BackendPolicy.DefaultTableSize;

    /// <summary>The most connections to the backend at once, per replica, across listeners; null for no limit.</summary>
    public long? MaxConnections { get; init; }

    /// <summary>The most connections to one endpoint at once, per replica, across listeners; null for no limit.</summary>
    public long? MaxConnectionsPerEndpoint { get; init; }

    /// <summary>How long one upstream connect may take.</summary>
    public required TimeSpan ConnectTimeout { get; init; }

    /// <summary>The upstream socket options (keepalive).</summary>
    public UpstreamConnectOptions ConnectOptions { get; init; } = UpstreamConnectOptions.None;

    /// <summary>The settings of a backend with <paramref name="policy"/>.</summary>
    public static BackendConnectSettings Resolve(BackendPolicy policy, LoadBalancingPolicyRegistry policies, ProxyOptions options) => new()
    {
        Policy = policies.For(policy.LoadBalancer),
        ConsistentHashTableSize = policy.ConsistentHashTableSize > 1 ? policy.ConsistentHashTableSize : BackendPolicy.DefaultTableSize,
        MaxConnections = policy.MaxConnections,
        MaxConnectionsPerEndpoint = policy.MaxConnectionsPerEndpoint,
        ConnectTimeout = policy.ConnectTimeout is { } timeout && timeout > TimeSpan.Zero ? timeout : options.ConnectTimeout,
        ConnectOptions = policy.TcpKeepalive is { } keepalive ? new UpstreamConnectOptions { TcpKeepalive = keepalive } : UpstreamConnectOptions.None,
    };
}
