using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using FsmGateway.Host.ControlPlane;
using FsmGateway.Host.Tests.Support;
using FsmGateway.Transport.ControlPlane.Protocol;
using FsmGateway.Transport.Hosting;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Host.Tests.ControlPlane;

/// <summary>
/// The config stream's server as the controller hosts it (<see cref="ConfigStreamHosting"/>: Kestrel, HTTP/2, gRPC) on
/// real sockets on 127.0.0.1, against data planes that stop answering or send too much: the controller pings each
/// connection and drops one whose peer no longer answers (its node gone without closing it), and ends a stream whose
/// message is larger than a data plane ever needs to send.
/// </summary>
public sealed class ConfigStreamConnectionTests : IAsyncLifetime
{
    private static readonly Method<DataPlaneMessage, ControllerMessage> Subscribe = new(
        MethodType.DuplexStreaming,
        "fsmgateway.controlplane.v1.ConfigStream",
        "Subscribe",
        Marshallers.Create(static (DataPlaneMessage m) => m.ToByteArray(), DataPlaneMessage.Parser.ParseFrom),
        Marshallers.Create(static (ControllerMessage m) => m.ToByteArray(), ControllerMessage.Parser.ParseFrom));

    private WebApplication _app = null!;
    private DataPlaneReports _reports = null!;
    private int _port;

    public async Task InitializeAsync()
    {
        _port = Net.FreePort();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(new GatewayRuntimeState());
        builder.Services.AddOptions<FsmGatewayOptions>();
        builder.Services.AddOptions<GatewayControllerOptions>();
        var hosting = new ConfigStreamHosting(o =>
        {
            o.Insecure = true;
            o.Address = "127.0.0.1";
            o.Port = _port;
            o.Identity = "test";

            // Kestrel's least: the test waits seconds, not the default half minute.
            o.KeepAlivePingDelay = TimeSpan.FromSeconds(1);
            o.KeepAlivePingTimeout = TimeSpan.FromSeconds(1);
        });
        hosting.ConfigureServices(builder);
        _app = builder.Build();
        hosting.Map(_app);
        await _app.StartAsync();
        _reports = _app.Services.GetRequiredService<DataPlaneReports>();
    }

    public async Task DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    [Fact]
    public async Task PeerThatStopsAnswering_IsDroppedByTheControllersPings_AndItsDataPlaneDisconnected()
    {
        await using var proxy = new FreezingProxy(_port);
        using var channel = Channel(proxy.Port);
        using var call = channel.CreateCallInvoker().AsyncDuplexStreamingCall(Subscribe, null, default);
        await call.RequestStream.WriteAsync(Hello());
        Assert.True(await call.ResponseStream.MoveNext(), "the controller answers");
        Assert.Equal(ControllerMessage.KindOneofCase.Welcome, call.ResponseStream.Current.KindCase);
        await Net.EventuallyAsync(() => Task.FromResult(_reports.Connected == 1), "the data plane is connected", TimeSpan.FromSeconds(10));

        // The peer goes silent without closing anything (its node died): the data plane sends no pings of its own here,
        // so only the controller's pings can notice. Before, the stream (and its report) lived until the token expired.
        proxy.Freeze();
        var silent = Stopwatch.StartNew();
        await Net.EventuallyAsync(() => Task.FromResult(_reports.Connected == 0), "the silent data plane is dropped", TimeSpan.FromSeconds(15));

        // Ping delay 1 s + timeout 1 s, checked on Kestrel's one-second heartbeat.
        Assert.True(silent.Elapsed < TimeSpan.FromSeconds(8), $"dropped after {silent.Elapsed.TotalSeconds:F1} s");
    }

    [Fact]
    public async Task ReportLargerThanTheLimit_EndsTheStreamAsResourceExhausted()
    {
        using var channel = Channel(_port);
        using var call = channel.CreateCallInvoker().AsyncDuplexStreamingCall(Subscribe, null, default);
        await call.RequestStream.WriteAsync(Hello());
        Assert.True(await call.ResponseStream.MoveNext(), "the controller answers");
        await Net.EventuallyAsync(() => Task.FromResult(_reports.Connected == 1), "the data plane is connected", TimeSpan.FromSeconds(10));

        // Before, a Report of up to gRPC's 4 MiB was taken in (and its message shared through the report Lease).
        var report = new Report { AppliedRevision = 1 };
        report.Listeners.Add(new ListenerOutcome { Port = 9000, State = BindState.Failed, Message = new string('x', ConfigStreamService.MaxReceiveMessageSize) });
        await call.RequestStream.WriteAsync(new DataPlaneMessage { Report = report });

        var error = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await call.ResponseStream.MoveNext())
            {
            }
        });
        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        await Net.EventuallyAsync(() => Task.FromResult(_reports.Connected == 0), "the data plane is disconnected", TimeSpan.FromSeconds(10));
    }

    /// <summary>A client that never pings (the data plane's pings are its own concern; here only the controller's count).</summary>
    private static GrpcChannel Channel(int port) => GrpcChannel.ForAddress(
        $"http://127.0.0.1:{port}",
        new GrpcChannelOptions { HttpHandler = new SocketsHttpHandler { KeepAlivePingDelay = Timeout.InfiniteTimeSpan }, DisposeHttpClient = true });

    private static DataPlaneMessage Hello() => new()
    {
        Hello = new Transport.ControlPlane.Protocol.Hello { ProtocolVersion = 1, GatewayNamespace = "apps", GatewayName = "gw", DataPlaneId = "dp-0" },
    };

    /// <summary>A TCP proxy on 127.0.0.1 that, once frozen, forwards nothing more either way and closes nothing.</summary>
    private sealed class FreezingProxy : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly List<Socket> _sockets = [];
        private readonly Task _accepting;
        private volatile bool _frozen;

        public FreezingProxy(int target)
        {
            _listener.Start();
            _accepting = AcceptAsync(target);
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public void Freeze() => _frozen = true;

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            lock (_sockets)
            {
                foreach (var socket in _sockets)
                {
                    socket.Dispose();
                }
            }

            try
            {
                await _accepting;
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }

            _stop.Dispose();
        }

        private async Task AcceptAsync(int target)
        {
            while (!_stop.IsCancellationRequested)
            {
                var client = await _listener.AcceptSocketAsync(_stop.Token);
                var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                lock (_sockets)
                {
                    _sockets.Add(client);
                    _sockets.Add(upstream);
                }

                await upstream.ConnectAsync(new IPEndPoint(IPAddress.Loopback, target), _stop.Token);
                _ = PumpAsync(client, upstream);
                _ = PumpAsync(upstream, client);
            }
        }

        private async Task PumpAsync(Socket from, Socket to)
        {
            var buffer = new byte[16 * 1024];
            try
            {
                while (true)
                {
                    var read = await from.ReceiveAsync(buffer, _stop.Token);
                    if (_frozen)
                    {
                        // Silent from now on: what arrives is dropped, nothing is closed.
                        await Task.Delay(Timeout.Infinite, _stop.Token);
                    }

                    if (read == 0)
                    {
                        to.Shutdown(SocketShutdown.Send);
                        return;
                    }

                    await to.SendAsync(buffer.AsMemory(0, read), _stop.Token);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }
    }
}
