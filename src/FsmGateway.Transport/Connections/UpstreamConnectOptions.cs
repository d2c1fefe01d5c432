using FsmGateway.Routing;

namespace FsmGateway.Transport.Connections;

/// <summary>
/// Socket options for an upstream connection, from the backend's policy (see
/// <see cref="IUpstreamConnector.ConnectAsync(System.Net.EndPoint, UpstreamConnectOptions, CancellationToken)"/>).
/// </summary>
public sealed class UpstreamConnectOptions
{
    /// <summary>No options: the socket as the connector makes it.</summary>
    public static UpstreamConnectOptions None { get; } = new();

    /// <summary>
    /// TCP keepalive on the upstream socket (<c>SO_KEEPALIVE</c> with <c>TCP_KEEPIDLE</c>, <c>TCP_KEEPINTVL</c>,
    /// <c>TCP_KEEPCNT</c> for the fields set), or <see langword="null"/> to leave the socket's keepalive alone.
    /// </summary>
    public TcpKeepalive? TcpKeepalive { get; init; }
}
