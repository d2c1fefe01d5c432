using FsmGateway.Transport.Connections;
using FsmGateway.Transport.Linux;
using FsmGateway.Transport.Sockets;

namespace FsmGateway.Transport.Proxy;

/// <summary>The transport <see cref="ProxyOptions.Transport"/> selects, made once per proxy (or per service provider).</summary>
/// <param name="Listeners">Binds listeners.</param>
/// <param name="Connector">Opens upstream connections.</param>
internal sealed record TransportSelection(IListenerFactory Listeners, IUpstreamConnector Connector)
{
    /// <summary>What <see cref="ProxyTransport.Auto"/> means here: Linux on Linux, sockets elsewhere.</summary>
    public static ProxyTransport Resolve(ProxyTransport transport) =>
        transport == ProxyTransport.Auto ? (LinuxTransport.IsSupported ? ProxyTransport.Linux : ProxyTransport.Sockets) : transport;

    /// <summary>Listening sockets per endpoint: as configured, else one per processor the process may use.</summary>
    public static int Shards(ProxyOptions options) => options.ListenerShards ?? Math.Max(1, Environment.ProcessorCount);

    /// <summary>Makes the transport <paramref name="options"/> select (validated already: Linux only where supported).</summary>
    public static TransportSelection Create(ProxyOptions options)
    {
        if (Resolve(options.Transport) == ProxyTransport.Linux)
        {
            var linux = new LinuxTransport(Shards(options));
            return new TransportSelection(linux, linux);
        }

        var sockets = new SocketTransport();
        return new TransportSelection(sockets, sockets);
    }
}
