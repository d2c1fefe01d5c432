namespace FsmGateway.Transport.Proxy;

/// <summary>Which transport binds listeners and opens upstream connections (<see cref="ProxyOptions.Transport"/>).</summary>
public enum ProxyTransport
{
    /// <summary>The Linux transport on Linux, the sockets transport elsewhere.</summary>
    Auto,

    /// <summary>
    /// The portable transport: .NET sockets, one listening socket per endpoint, every byte copied through a pooled
    /// buffer. Runs everywhere .NET does.
    /// </summary>
    Sockets,

    /// <summary>
    /// The Linux transport: accepted sockets inherit <c>TCP_NODELAY</c> from the listener, listeners are sharded over
    /// <see cref="ProxyOptions.ListenerShards"/> <c>SO_REUSEPORT</c> sockets with one accept loop each, and bulk data is
    /// relayed zero-copy with <c>splice(2)</c>. Linux only: asking for it elsewhere fails at start.
    /// </summary>
    Linux,
}
