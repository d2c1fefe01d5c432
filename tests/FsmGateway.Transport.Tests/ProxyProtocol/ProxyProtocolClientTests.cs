using System.Net;
using System.Net.Sockets;
using System.Text;
using FsmGateway.Routing;
using FsmGateway.Transport.ProxyProtocol;
using FsmGateway.Transport.Tests.TestSupport;
using Microsoft.Extensions.Time.Testing;

namespace FsmGateway.Transport.Tests.ProxyProtocol;

/// <summary>
/// ClientTrafficPolicy <c>proxyProtocol</c> (issue 10): a listener that accepts the PROXY protocol takes the header's
/// source as the client address, which a real HAProxy (<c>send-proxy</c>, <c>send-proxy-v2</c>) or nginx stream proxy
/// (<c>proxy_protocol on</c>) in front delivers, and which the backend then receives in the header the gateway sends.
/// A missing, malformed or late header closes the connection with the reason <c>refused_proxy_protocol</c>.
/// </summary>
public sealed class ProxyProtocolClientTests
{
    private static readonly IPAddress ClientAddress = ProxyProtocolUpstreamTests.ClientAddress;

    [ExternalProxyFact("haproxy")]
    public Task HAProxySendProxy_InFront_BackendReceivesTheClientsAddress() => HAProxyInFrontAsync("send-proxy", ProxyProtocolVersion.V2);

    [ExternalProxyFact("haproxy")]
    public Task HAProxySendProxyV2_InFront_BackendReceivesTheClientsAddress() => HAProxyInFrontAsync("send-proxy-v2", ProxyProtocolVersion.V1);

    [ExternalProxyFact("nginx")]
    public async Task NginxStreamProxyProtocolOn_InFront_BackendReceivesTheClientsAddress()
    {
        await using var backend = ProxyProtocolBackend.ExpectingHeader();
        var port = FreePort.Get();
        await using var proxy = await StartGatewayAsync(port, backend, ProxyProtocolVersion.V2);
        var nginxPort = FreePort.Get();
        await using var nginx = await ExternalProxy.StartNginxAsync(
            $$"""
            stream {
              server {
                listen 127.0.0.1:{{nginxPort}};
                proxy_pass 127.0.0.1:{{port}};
                proxy_protocol on;
                proxy_half_close on;
              }
            }
            """,
            nginxPort,
            ExternalProxy.NginxStreamModule);

        await AssertClientAddressReachesBackendAsync(nginxPort, backend);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task ValidHeader_ClientAddressIsTheHeadersSourceInTheHeaderSentOnwards()
    {
        await using var backend = ProxyProtocolBackend.ExpectingHeader();
        var port = FreePort.Get();
        await using var proxy = await StartGatewayAsync(port, backend, ProxyProtocolVersion.V1);

        using var client = await TestClient.ConnectAsync(port, CancellationToken.None);
        using var deadline = Guard.Deadline(15);
        var header = ProxyProtocolWriter.ToArray(ProxyProtocolVersion.V2, new IPEndPoint(IPAddress.Parse("203.0.113.9"), 40000), new IPEndPoint(IPAddress.Parse("198.51.100.1"), 443));
        await client.SendAllAsync(header.Concat("ping"u8.ToArray()).ToArray(), deadline.Token);
        client.Shutdown(SocketShutdown.Send);

        Assert.Equal("source=203.0.113.9:40000\nping", Encoding.ASCII.GetString((await client.ReadToEndAsync()).Data));
        Assert.True(await Guard.Eventually(() => backend.Connections.Count == 1));
        Assert.Equal(new IPEndPoint(IPAddress.Parse("198.51.100.1"), 443), backend.Connections[0].Header!.Destination);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task MalformedHeader_ClosesTheConnectionAsRefusedProxyProtocol_BeforeAnyUpstreamConnect()
    {
        await using var backend = ProxyProtocolBackend.Recording();
        var port = FreePort.Get();
        using var closed = new ClosedCounter(port);
        await using var proxy = await StartGatewayAsync(port, backend, null);

        using var client = await TestClient.ConnectAsync(port, CancellationToken.None);
        using var deadline = Guard.Deadline(15);
        await client.SendAllAsync("PROXY TCP4 127.0.0.300 127.0.0.1 1 2\r\npayload"u8.ToArray(), deadline.Token);

        Assert.True((await client.ReadToEndAsync()).ClosedWithoutData);
        await closed.WaitForAsync("refused_proxy_protocol");
        Assert.Empty(backend.Connections);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task NoHeader_NotOptional_IsRefused()
    {
        await using var backend = ProxyProtocolBackend.Recording();
        var port = FreePort.Get();
        using var closed = new ClosedCounter(port);
        await using var proxy = await StartGatewayAsync(port, backend, null);

        using var client = await TestClient.ConnectAsync(port, CancellationToken.None);
        using var deadline = Guard.Deadline(15);
        await client.SendAllAsync("GET / HTTP/1.1\r\n\r\n"u8.ToArray(), deadline.Token);

        Assert.True((await client.ReadToEndAsync()).ClosedWithoutData);
        await closed.WaitForAsync("refused_proxy_protocol");
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task NoHeader_Optional_RelaysEveryByteWithThePeerAsClient()
    {
        await using var backend = ProxyProtocolBackend.ExpectingHeader();
        var port = FreePort.Get();
        await using var proxy = await StartGatewayAsync(port, backend, ProxyProtocolVersion.V2, optional: true);

        using var client = await ProxyProtocolBackend.ConnectFromAsync(ClientAddress, port);
        var clientPort = ((IPEndPoint)client.LocalEndPoint!).Port;
        using var deadline = Guard.Deadline(15);
        await client.SendAllAsync("GET / HTTP/1.1\r\n\r\n"u8.ToArray(), deadline.Token);
        client.Shutdown(SocketShutdown.Send);

        Assert.Equal($"source=127.0.0.7:{clientPort}\nGET / HTTP/1.1\r\n\r\n", Encoding.ASCII.GetString((await client.ReadToEndAsync()).Data));
    }

    [Theory(Timeout = Guard.TestTimeout)]
    [InlineData(true)]
    [InlineData(false)]
    public async Task NoHeader_Optional_OnAConnectionThatCannotPeek_RelaysTheBytesLookedAtFirst(bool headerOnwards)
    {
        // Without a peek the reader has received the first bytes before it knows there is no header: they go first.
        await using var backend = headerOnwards ? ProxyProtocolBackend.ExpectingHeader() : ProxyProtocolBackend.Recording();
        var port = FreePort.Get();
        var transport = new Sockets.SocketTransport();
        var listener = Routes.Listener(port, Routes.Backend("svc", 1, backend.Endpoint) with { Policy = new BackendPolicy { ProxyProtocol = headerOnwards ? ProxyProtocolVersion.V1 : null } }) with
        {
            Client = new ClientPolicy { ProxyProtocol = new ClientProxyProtocol(true) },
        };
        await using var proxy = new Proxy.GatewayProxy(new WithoutPeekListenerFactory(transport), transport, [new LoadBalancing.RoundRobinPolicy()], Microsoft.Extensions.Options.Options.Create(new Proxy.ProxyOptions()), TimeProvider.System);
        await proxy.ApplyAsync(Routes.Table(listener), CancellationToken.None);

        using var client = await ProxyProtocolBackend.ConnectFromAsync(ClientAddress, port);
        var clientPort = ((IPEndPoint)client.LocalEndPoint!).Port;
        using var deadline = Guard.Deadline(15);
        var request = "SSH-2.0-OpenSSH_9.6\r\n and then more bytes than any first look"u8.ToArray();
        await client.SendAllAsync(request, deadline.Token);
        client.Shutdown(SocketShutdown.Send);

        var expected = (headerOnwards ? $"source=127.0.0.7:{clientPort}\n" : string.Empty) + Encoding.ASCII.GetString(request);
        Assert.Equal(expected, Encoding.ASCII.GetString((await client.ReadToEndAsync()).Data));
        Assert.True(await Guard.Eventually(() => backend.Connections.Count == 1));
        Assert.Equal(request, backend.Connections[0].Payload);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task HeaderNotCompleteWithinTheInspectionTimeout_IsRefused()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var backend = ProxyProtocolBackend.Recording();
        var port = FreePort.Get();
        using var closed = new ClosedCounter(port);
        var listener = Routes.Listener(port, Routes.Backend("svc", 1, backend.Endpoint)) with
        {
            Client = new ClientPolicy { ProxyProtocol = new ClientProxyProtocol(false) { InspectionTimeout = TimeSpan.FromSeconds(5) } },
        };
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(listener), time: time);

        using var client = await TestClient.ConnectAsync(port, CancellationToken.None);
        using var deadline = Guard.Deadline(15);
        await client.SendAllAsync("PROXY TCP4 127.0.0.9 "u8.ToArray(), deadline.Token);
        Assert.True(await Guard.Eventually(() => proxy.ActiveConnections == 1));
        time.Advance(TimeSpan.FromSeconds(4));
        await Task.Delay(200);
        Assert.Empty(closed.Snapshot());

        time.Advance(TimeSpan.FromSeconds(2));

        Assert.True((await client.ReadToEndAsync()).ClosedWithoutData);
        await closed.WaitForAsync("refused_proxy_protocol");
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task AcceptedHeader_IsTheClientAddressOfTheAccessLogAndTheEndpointPick()
    {
        var folder = Directory.CreateTempSubdirectory("fsm-pp-accesslog-");
        try
        {
            var path = Path.Combine(folder.FullName, "access.log");
            await using var backend = ProxyProtocolBackend.Recording();
            var port = FreePort.Get();
            var options = new Proxy.ProxyOptions { LoadBalancingPolicy = "recording" };
            options.AccessLog.Destination = path;
            options.AccessLog.Format = AccessLog.AccessLogFormat.Text;
            var policy = new ClientRecordingPolicy();
            var transport = new Sockets.SocketTransport();
            var listener = Routes.Listener(port, Routes.Backend("svc", 1, backend.Endpoint)) with
            {
                Client = new ClientPolicy { ProxyProtocol = new ClientProxyProtocol(false) },
            };
            await using (var proxy = new Proxy.GatewayProxy(transport, transport, [policy], Microsoft.Extensions.Options.Options.Create(options), TimeProvider.System))
            {
                await proxy.ApplyAsync(Routes.Table(listener), CancellationToken.None);
                using var client = await TestClient.ConnectAsync(port, CancellationToken.None);
                using var deadline = Guard.Deadline(15);
                await client.SendAllAsync("PROXY TCP6 2001:db8::42 2001:db8::1 40001 443\r\n"u8.ToArray(), deadline.Token);
                await client.AssertEchoesAsync("through");
                client.Shutdown(SocketShutdown.Send);
                await client.ReadToEndAsync();
                Assert.True(await Guard.Eventually(() => proxy.ActiveConnections == 0), "the connection was never released");
            }

            Assert.Equal([new IPEndPoint(IPAddress.Parse("2001:db8::42"), 40001)], policy.Clients);
            Assert.Contains(" client_address=2001:db8::42 client_port=40001 ", Assert.Single(File.ReadAllLines(path)), StringComparison.Ordinal);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    internal static Task<Proxy.GatewayProxy> StartGatewayAsync(int port, ProxyProtocolBackend backend, ProxyProtocolVersion? onwards, bool optional = false, Proxy.ProxyOptions? options = null, ConnectionFilter? filter = null)
    {
        var listener = Routes.Listener(port, Routes.Backend("svc", 1, backend.Endpoint) with { Policy = new BackendPolicy { ProxyProtocol = onwards } }) with
        {
            Client = new ClientPolicy { ProxyProtocol = new ClientProxyProtocol(optional), ListenerFilters = filter is null ? [] : [filter] },
        };
        return Routes.StartProxyAsync(Routes.Table(listener), options);
    }

    [ExternalProxyFact("haproxy")]
    public async Task HAProxyInFront_IPRestrictionJudgesTheHeadersSourceNotTheProxysAddress()
    {
        // HAProxy connects from 127.0.0.1; the client is 127.0.0.7. An allow list of the client alone serves it, a deny
        // list of the client alone refuses it: the restriction sees the address the PROXY header carries.
        var key = new Resources.ResourceKey(Resources.ResourceKind.Gateway, "test", "office");
        var allowClient = new ConnectionFilter(ConnectionFilterType.IPRestriction, key, key, key, 100) { Allowed = ["127.0.0.7/32"] };
        await HAProxyInFrontAsync("send-proxy-v2", ProxyProtocolVersion.V1, allowClient);

        var denyClient = allowClient with { Allowed = [], Forbidden = ["127.0.0.7/32"] };
        await using var backend = ProxyProtocolBackend.ExpectingHeader();
        var port = FreePort.Get();
        using var closed = new ClosedCounter(port);
        await using var proxy = await StartGatewayAsync(port, backend, ProxyProtocolVersion.V1, filter: denyClient);
        var haproxyPort = FreePort.Get();
        await using var haproxy = await ExternalProxy.StartHAProxyAsync(HAProxyConfig(haproxyPort, port, "send-proxy-v2"), haproxyPort);
        using var client = await ProxyProtocolBackend.ConnectFromAsync(ClientAddress, haproxyPort);
        using var deadline = Guard.Deadline(15);
        await client.SendAllAsync("ping"u8.ToArray(), deadline.Token);

        Assert.Empty((await client.ReadToEndAsync()).Data);

        // HAProxy may retry a server connection that was closed at once, so there may be more than one refusal.
        Assert.True(await Guard.Eventually(() => closed.Snapshot().GetValueOrDefault("refused_ip_denied") >= 1), $"closed by reason: {string.Join(", ", closed.Snapshot())}");

        // The denied client never reached the backend. (Only its connections count: a port handed out by FreePort is
        // not reserved, and a stray connection of another test in this process may reach this gateway meanwhile.)
        Assert.DoesNotContain(backend.Connections, c => c.Header?.Source is IPEndPoint { Address: var source } && source.Equals(ClientAddress));
    }

    private static string HAProxyConfig(int haproxyPort, int gatewayPort, string sendProxy) => $$"""
        defaults
          mode tcp
          timeout connect 5s
          timeout client 30s
          timeout server 30s
        frontend fe
          bind 127.0.0.1:{{haproxyPort}}
          default_backend be
        backend be
          server gateway 127.0.0.1:{{gatewayPort}} {{sendProxy}}
        """;

    private static async Task HAProxyInFrontAsync(string sendProxy, ProxyProtocolVersion onwards, ConnectionFilter? filter = null)
    {
        await using var backend = ProxyProtocolBackend.ExpectingHeader();
        var port = FreePort.Get();
        await using var proxy = await StartGatewayAsync(port, backend, onwards, filter: filter);
        var haproxyPort = FreePort.Get();
        await using var haproxy = await ExternalProxy.StartHAProxyAsync(
            $$"""
            defaults
              mode tcp
              timeout connect 5s
              timeout client 30s
              timeout server 30s
            frontend fe
              bind 127.0.0.1:{{haproxyPort}}
              default_backend be
            backend be
              server gateway 127.0.0.1:{{port}} {{sendProxy}}
            """,
            haproxyPort);

        await AssertClientAddressReachesBackendAsync(haproxyPort, backend);
    }

    /// <summary>client 127.0.0.7 -> the proxy in front -> gateway (accepts PROXY) -> backend (parses the gateway's header).</summary>
    private static async Task AssertClientAddressReachesBackendAsync(int frontPort, ProxyProtocolBackend backend)
    {
        using var client = await ProxyProtocolBackend.ConnectFromAsync(ClientAddress, frontPort);
        var clientPort = ((IPEndPoint)client.LocalEndPoint!).Port;
        using var deadline = Guard.Deadline(15);
        await client.SendAllAsync("ping"u8.ToArray(), deadline.Token);
        client.Shutdown(SocketShutdown.Send);

        // The client half-closes, so the backend's answer is complete when the stream ends.
        Assert.Equal($"source=127.0.0.7:{clientPort}\nping", Encoding.ASCII.GetString((await client.ReadToEndAsync()).Data));
    }

    /// <summary>Round robin that records the client address each pick was made for.</summary>
    private sealed class ClientRecordingPolicy : LoadBalancing.ILoadBalancingPolicy
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<EndPoint?> _clients = new();

        public string Name => "recording";

        public IReadOnlyList<EndPoint?> Clients => [.. _clients];

        public int Pick(LoadBalancing.EndpointPickContext context)
        {
            _clients.Enqueue(context.Client);
            return 0;
        }
    }
}
