using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using FsmGateway.Routing;
using FsmGateway.Transport.Tests.TestSupport;

namespace FsmGateway.Transport.Tests.ProxyProtocol;

/// <summary>
/// BackendTrafficPolicy <c>proxyProtocol.version</c> (issue 15): the header the gateway writes first on an upstream
/// connection is accepted by a real HAProxy (<c>bind ... accept-proxy</c>) and a real nginx (<c>listen ...
/// proxy_protocol</c>), and the client address they log is the test client's own, 127.0.0.7 and its port.
/// </summary>
public sealed class ProxyProtocolUpstreamTests
{
    internal static readonly IPAddress ClientAddress = IPAddress.Parse("127.0.0.7");

    [ExternalProxyFact("haproxy")]
    public Task HAProxyAcceptProxy_V1Header_LogsTheTestClientsAddress() => HAProxyAsync(ProxyProtocolVersion.V1);

    [ExternalProxyFact("haproxy")]
    public Task HAProxyAcceptProxy_V2Header_LogsTheTestClientsAddress() => HAProxyAsync(ProxyProtocolVersion.V2);

    [ExternalProxyFact("nginx")]
    public Task NginxListenProxyProtocol_V1Header_LogsTheTestClientsAddress() => NginxAsync(ProxyProtocolVersion.V1);

    [ExternalProxyFact("nginx")]
    public Task NginxListenProxyProtocol_V2Header_LogsTheTestClientsAddress() => NginxAsync(ProxyProtocolVersion.V2);

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task NoProxyProtocolPolicy_BackendReceivesOnlyThePayload()
    {
        await using var backend = ProxyProtocolBackend.Recording();
        var port = FreePort.Get();
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, backend.Endpoint))));

        using (var client = await ProxyProtocolBackend.ConnectFromAsync(ClientAddress, port))
        {
            await client.AssertEchoesAsync("just the payload");
            client.Shutdown(SocketShutdown.Send);
            await client.ReadToEndAsync();
        }

        Assert.True(await Guard.Eventually(() => backend.Connections.Count == 1));
        Assert.Equal("just the payload", Encoding.ASCII.GetString(backend.Connections[0].Payload));
    }

    private static async Task HAProxyAsync(ProxyProtocolVersion version)
    {
        await using var echo = TestBackend.Echo();
        var haproxyPort = FreePort.Get();
        await using var haproxy = await ExternalProxy.StartHAProxyAsync(
            $$"""
            global
              log stdout format raw local0
            defaults
              mode tcp
              log global
              option dontlognull
              timeout connect 5s
              timeout client 30s
              timeout server 30s
            frontend fe
              bind 127.0.0.1:{{haproxyPort}} accept-proxy
              log-format "pp-client=%ci:%cp pp-frontend=%fi:%fp"
              default_backend be
            backend be
              server echo 127.0.0.1:{{echo.Port}}
            """,
            haproxyPort);
        var port = FreePort.Get();
        await using var proxy = await StartGatewayAsync(port, new BackendEndpoint("127.0.0.1", haproxyPort), version);

        var clientPort = await EchoThroughAsync(port, "hello through haproxy");

        // A header HAProxy rejects never reaches the log-format with the gateway's port as the frontend address.
        var line = await haproxy.WaitForLineAsync(l => l.Contains($"pp-frontend=127.0.0.1:{port}", StringComparison.Ordinal), "the relayed connection");
        Assert.Equal($"pp-client=127.0.0.7:{clientPort} pp-frontend=127.0.0.1:{port}", line.Trim());
    }

    private static async Task NginxAsync(ProxyProtocolVersion version)
    {
        var nginxPort = FreePort.Get();
        await using var nginx = await ExternalProxy.StartNginxAsync(
            $$"""
            http {
              {{ExternalProxy.NginxHttpTempPaths}}
              log_format pp 'pp-client=$proxy_protocol_addr:$proxy_protocol_port pp-server=$proxy_protocol_server_addr:$proxy_protocol_server_port';
              server {
                listen 127.0.0.1:{{nginxPort}} proxy_protocol;
                access_log {dir}/access.log pp;
                location / { return 200 "client=$proxy_protocol_addr:$proxy_protocol_port\n"; }
              }
            }
            """,
            nginxPort);
        var port = FreePort.Get();
        await using var proxy = await StartGatewayAsync(port, new BackendEndpoint("127.0.0.1", nginxPort), version);

        int clientPort;
        string response;
        using (var client = await ProxyProtocolBackend.ConnectFromAsync(ClientAddress, port))
        {
            clientPort = ((IPEndPoint)client.LocalEndPoint!).Port;
            using var deadline = Guard.Deadline(15);
            await client.SendAllAsync("GET / HTTP/1.0\r\nHost: test\r\n\r\n"u8.ToArray(), deadline.Token);
            response = Encoding.ASCII.GetString((await client.ReadToEndAsync()).Data);
        }

        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        Assert.EndsWith($"\r\n\r\nclient=127.0.0.7:{clientPort}\n", response, StringComparison.Ordinal);
        var line = await nginx.WaitForLineAsync(static l => l.StartsWith("pp-client=", StringComparison.Ordinal), "the request in its access log", "access.log");
        Assert.Equal($"pp-client=127.0.0.7:{clientPort} pp-server=127.0.0.1:{port}", line.Trim());
    }

    private static Task<Proxy.GatewayProxy> StartGatewayAsync(int port, BackendEndpoint upstream, ProxyProtocolVersion version) =>
        Routes.StartProxyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, upstream) with { Policy = new BackendPolicy { ProxyProtocol = version } })));

    /// <summary>Echoes <paramref name="text"/> through the gateway from 127.0.0.7, closes, and returns the client's port.</summary>
    private static async Task<int> EchoThroughAsync(int port, string text)
    {
        using var client = await ProxyProtocolBackend.ConnectFromAsync(ClientAddress, port);
        await client.AssertEchoesAsync(text);
        client.Shutdown(SocketShutdown.Send);
        await client.ReadToEndAsync();
        return ((IPEndPoint)client.LocalEndPoint!).Port;
    }

    internal static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);
}
