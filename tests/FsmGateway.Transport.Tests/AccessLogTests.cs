using System.Net;
using FsmGateway.Resources;
using FsmGateway.Routing;
using FsmGateway.Transport.AccessLog;
using FsmGateway.Transport.Connections;
using FsmGateway.Transport.LoadBalancing;
using FsmGateway.Transport.Proxy;
using FsmGateway.Transport.Tests.TestSupport;
using Microsoft.Extensions.Options;

namespace FsmGateway.Transport.Tests;

/// <summary>The access log inside the library: its options checked at start, and the text format's quoting of odd names.</summary>
public sealed class AccessLogTests
{
    [Theory]
    [InlineData("/no/such/folder/access.log", "ProxyOptions.AccessLog.Destination '/no/such/folder/access.log': the folder '/no/such/folder' does not exist")]
    [InlineData("/tmp", "ProxyOptions.AccessLog.Destination '/tmp' is a folder, not a file")]
    [InlineData(" ", "ProxyOptions.AccessLog.Destination must be stdout, stderr or a file path (is empty)")]
    public void Options_BadDestination_FailTheProxyNamingTheOption(string destination, string failure)
    {
        var options = new ProxyOptions();
        options.AccessLog.Destination = destination;
        var error = Assert.Throws<OptionsValidationException>(() => GatewayProxy.CreateDefault(options));
        Assert.Contains(error.Failures, f => f.StartsWith(failure, StringComparison.Ordinal));
    }

    [Fact]
    public void Options_QueueOutOfRange_FailsNamingTheOption()
    {
        var options = new ProxyOptions();
        options.AccessLog.Destination = AccessLogOptions.StandardError;
        options.AccessLog.QueueCapacity = 0;
        var error = Assert.Throws<OptionsValidationException>(() => GatewayProxy.CreateDefault(options));
        Assert.Contains(error.Failures, static f => f.StartsWith("ProxyOptions.AccessLog.QueueCapacity must be between 1 and 1000000", StringComparison.Ordinal));
    }

    [Fact]
    public async Task File_WritesOneLinePerConnection_ThroughTheLibrary()
    {
        var folder = Directory.CreateTempSubdirectory("fsm-accesslog-");
        try
        {
            var path = Path.Combine(folder.FullName, "access.log");
            await using var backend = TestBackend.Echo();
            var port = FreePort.Get();
            var options = new ProxyOptions();
            options.AccessLog.Destination = path;
            options.AccessLog.Format = AccessLogFormat.Text;
            await using (var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, backend))), options))
            {
                using var client = await TestClient.ConnectAsync(port, CancellationToken.None);
                await client.AssertEchoesAsync();
                client.Shutdown(System.Net.Sockets.SocketShutdown.Send);
                await client.ReadToEndAsync();

                // The client has its FIN before the proxy has finished with the connection; stopping now would drain it.
                Assert.True(await Guard.Eventually(() => proxy.ActiveConnections == 0), "the connection was never released");
            }

            // Disposing the proxy writes what is queued.
            var line = Assert.Single(File.ReadAllLines(path));
            Assert.Contains($" port={port} route=test/route backend=test/svc backend_port=8080 endpoint=127.0.0.1:{backend.Port} ", line, StringComparison.Ordinal);
            Assert.EndsWith(" bytes_upstream=4 bytes_downstream=4 reason=client_closed closed_by=client", line, StringComparison.Ordinal);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Endpoints_GoneAfterDispose_TheLineHasThemAndTheConnectionIsReleased()
    {
        // An embedder's connection may not answer RemoteEndPoint once disposed: the proxy reads it while connected.
        var folder = Directory.CreateTempSubdirectory("fsm-accesslog-");
        try
        {
            var path = Path.Combine(folder.FullName, "access.log");
            await using var backend = TestBackend.Echo();
            var port = FreePort.Get();
            var options = new ProxyOptions();
            options.AccessLog.Destination = path;
            var transport = new Sockets.SocketTransport();
            var proxy = new GatewayProxy(transport, new ForgetfulConnector(transport), [new RoundRobinPolicy()], Options.Create(options), TimeProvider.System);
            await using (proxy)
            {
                await proxy.ApplyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, backend))), CancellationToken.None);
                using (var client = await TestClient.ConnectAsync(port, CancellationToken.None))
                {
                    await client.AssertEchoesAsync();
                }

                Assert.True(await Guard.Eventually(() => proxy.ActiveConnections == 0), "the connection was never released");
            }

            Assert.Contains($"\"endpoint\":\"127.0.0.1:{backend.Port}\"", Assert.Single(File.ReadAllLines(path)), StringComparison.Ordinal);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public void Text_ValueWithSpaceQuoteOrEquals_IsQuotedAndEscaped()
    {
        var formatter = new AccessLogFormatter(AccessLogFormat.Text);
        var listener = new ListenerRoute(new ResourceKey(ResourceKind.Gateway, "ns", "gw"), "odd \"name\"=x", ["127.0.0.1"], 80, null, []);
        formatter.Append(new AccessLogEntry(AccessLogEvent.End, DateTimeOffset.UnixEpoch, TimeSpan.FromMilliseconds(1.5), new IPEndPoint(IPAddress.Parse("::ffff:10.0.0.1"), 5), listener, null, null, null, 0, 0, TerminationReason.RefusedNoRoute));
        var line = System.Text.Encoding.UTF8.GetString(formatter.Written.Span);
        Assert.Equal(
            "start_time=1970-01-01T00:00:00.000Z event=end client_address=10.0.0.1 client_port=5 gateway=ns/gw listener=\"odd \\\"name\\\"=x\" port=80 route=- backend=- backend_port=- endpoint=- upstream_connect_ms=- duration_ms=1.5 bytes_upstream=0 bytes_downstream=0 reason=refused_no_route closed_by=gateway\n",
            line);
    }

    /// <summary>Real upstream connections whose <see cref="IDuplexConnection.RemoteEndPoint"/> throws once disposed.</summary>
    private sealed class ForgetfulConnector(IUpstreamConnector inner) : IUpstreamConnector
    {
        public async ValueTask<IDuplexConnection> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken) =>
            new Forgetful(await inner.ConnectAsync(endPoint, cancellationToken));

        private sealed class Forgetful(IDuplexConnection inner) : IDuplexConnection
        {
            private bool _disposed;

            public EndPoint? LocalEndPoint => inner.LocalEndPoint;

            public EndPoint? RemoteEndPoint => _disposed ? throw new ObjectDisposedException(nameof(Forgetful)) : inner.RemoteEndPoint;

            public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken) => inner.ReceiveAsync(buffer, cancellationToken);

            public ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => inner.SendAsync(data, cancellationToken);

            public void CompleteSend() => inner.CompleteSend();

            public void Abort() => inner.Abort();

            public ValueTask DisposeAsync()
            {
                _disposed = true;
                return inner.DisposeAsync();
            }
        }
    }
}
