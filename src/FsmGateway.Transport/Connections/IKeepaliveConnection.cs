namespace FsmGateway.Transport.Connections;

/// <summary>A TCP connection whose keepalive can be turned on after it was accepted (the client policy's <c>tcpKeepalive</c>).</summary>
internal interface IKeepaliveConnection
{
    /// <summary>Turns TCP keepalive on with <paramref name="keepalive"/>'s settings (unset ones keep the system's); a closed connection is left alone.</summary>
    /// <param name="keepalive">The settings.</param>
    void SetKeepalive(Routing.TcpKeepalive keepalive);
}
