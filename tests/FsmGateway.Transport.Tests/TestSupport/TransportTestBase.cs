using FsmGateway.Routing;
using FsmGateway.Transport.Proxy;

namespace FsmGateway.Transport.Tests.TestSupport;

/// <summary>
/// The base of a test class that runs against each transport: one concrete subclass per <see cref="ProxyTransport"/>,
/// so every test runs on both the sockets and the Linux transport.
/// </summary>
public abstract class TransportTestBase
{
    /// <summary>The transport under test.</summary>
    protected abstract ProxyTransport Transport { get; }

    /// <summary>A proxy on the transport under test, serving <paramref name="table"/>, every port bound.</summary>
    /// <param name="table">The table.</param>
    /// <param name="options">The options (their <see cref="ProxyOptions.Transport"/> is set); defaults when null.</param>
    /// <returns>The proxy.</returns>
    private protected Task<GatewayProxy> StartProxyAsync(RoutingTable table, ProxyOptions? options = null)
    {
        options ??= new ProxyOptions();
        options.Transport = Transport;
        return Routes.StartProxyAsync(table, options);
    }
}
