using System.Net.Sockets;

namespace FsmGateway.Host.Tests.Support;

/// <summary>
/// A gateway config with five listeners on 127.0.0.1 and a known amount of traffic through them: <c>echo</c> relays
/// to an echo server, <c>banner</c> to a backend that sends its name and closes first, <c>dead</c> routes to an
/// endpoint where nothing listens (every connect refused), <c>empty</c> routes to a Service without endpoints,
/// <c>noroute</c> has no route attached.
/// </summary>
internal sealed class KnownTraffic : IAsyncDisposable
{
    private readonly EchoServer _echo = new();
    private readonly BannerServer _banner = new("banner");

    public int EchoPort { get; } = Net.FreePort();

    public int DeadPort { get; } = Net.FreePort();

    public int EmptyPort { get; } = Net.FreePort();

    public int BannerPort { get; } = Net.FreePort();

    public int NoRoutePort { get; } = Net.FreePort();

    /// <summary>The <c>echo</c> backend's own port (what the access log names as the endpoint).</summary>
    public int EchoBackendPort => _echo.Port;

    /// <summary>A port nothing listens on: the <c>dead</c> backend's endpoint.</summary>
    public int ClosedPort { get; } = Net.FreePort();

    public string Manifests => $"""
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata:
          name: gw
          namespace: apps
        spec:
          gatewayClassName: fsm
          addresses:
            - type: IPAddress
              value: 127.0.0.1
          listeners:
            - name: echo
              port: {EchoPort}
              protocol: TCP
            - name: dead
              port: {DeadPort}
              protocol: TCP
            - name: empty
              port: {EmptyPort}
              protocol: TCP
            - name: banner
              port: {BannerPort}
              protocol: TCP
            - name: noroute
              port: {NoRoutePort}
              protocol: TCP
        ---
        {Route("banner", _banner.Port)}
        ---
        {Route("echo", _echo.Port)}
        ---
        {Route("dead", ClosedPort)}
        ---
        {Route("empty", null)}
        """;

    /// <summary>Opens <paramref name="connections"/> connections to <c>echo</c>, each echoing <paramref name="bytes"/> bytes, then closing cleanly.</summary>
    public async Task EchoAsync(int connections, int bytes)
    {
        var payload = new string('x', bytes);
        for (var i = 0; i < connections; i++)
        {
            using var socket = await Net.ConnectAsync(EchoPort);
            Assert.Equal(payload, await Net.RoundTripAsync(socket, payload));
            socket.Shutdown(SocketShutdown.Send);
            await ReadToEndAsync(socket);
        }
    }

    /// <summary>Opens <paramref name="connections"/> connections to <paramref name="port"/>, each refused by the gateway (closed without data).</summary>
    public static async Task RefusedAsync(int port, int connections)
    {
        for (var i = 0; i < connections; i++)
        {
            try
            {
                using var socket = await Net.ConnectAsync(port);
                Assert.Equal(0, await ReadToEndAsync(socket));
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
            {
                // Accepted and reset before the connect call returned (ConnectionRefused instead would mean not accepted).
            }
        }
    }

    /// <summary>Opens <paramref name="connections"/> connections to <c>banner</c>, each read until the backend has closed it, then closed.</summary>
    public async Task BannerAsync(int connections)
    {
        for (var i = 0; i < connections; i++)
        {
            Assert.Equal(_banner.Name, await BannerServer.ReadBannerAsync(BannerPort));
        }
    }

    /// <summary>
    /// Opens <paramref name="connections"/> connections to <c>echo</c> at once and sends nothing until the gateway
    /// closes each one (its idle timeout must be short).
    /// </summary>
    public async Task IdleAsync(int connections)
    {
        var sockets = new List<Socket>();
        try
        {
            for (var i = 0; i < connections; i++)
            {
                sockets.Add(await Net.ConnectAsync(EchoPort));
            }

            foreach (var socket in sockets)
            {
                Assert.Equal(0, await ReadToEndAsync(socket, TimeSpan.FromSeconds(60)));
            }
        }
        finally
        {
            sockets.ForEach(static s => s.Dispose());
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _echo.DisposeAsync();
        await _banner.DisposeAsync();
    }

    private static async Task<int> ReadToEndAsync(Socket socket, TimeSpan? within = null)
    {
        var buffer = new byte[4096];
        var total = 0;
        using var timeout = new CancellationTokenSource(within ?? TimeSpan.FromSeconds(30));
        try
        {
            int read;
            while ((read = await socket.ReceiveAsync(buffer, timeout.Token)) > 0)
            {
                total += read;
            }
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            // A refusal may end in a reset rather than a FIN.
        }

        return total;
    }

    private static string Route(string name, int? endpointPort) => $"""
        apiVersion: gateway.networking.k8s.io/v1alpha2
        kind: TCPRoute
        metadata:
          name: {name}
          namespace: apps
        spec:
          parentRefs:
            - name: gw
              sectionName: {name}
          rules:
            - backendRefs:
                - name: {name}
                  port: 9000
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: {name}
          namespace: apps
        spec:
          ports:
            - port: 9000
        {(endpointPort is null ? string.Empty : EndpointSlice(name, endpointPort.Value))}
        """;

    private static string EndpointSlice(string name, int endpointPort) => $"""
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: {name}-1
          namespace: apps
          labels:
            kubernetes.io/service-name: {name}
        addressType: IPv4
        ports:
          - port: {endpointPort}
        endpoints:
          - addresses: [127.0.0.1]
        """;
}
