using System.Collections.Concurrent;
using System.Net;
using System.Reactive.Subjects;
using FsmGateway.Configuration;
using FsmGateway.Host.Tests.Support;
using FsmGateway.Kubernetes;
using FsmGateway.Resources;
using FsmGateway.Status;
using FsmGateway.Transport;
using FsmGateway.Transport.Connections;
using FsmGateway.Transport.Hosting;
using FsmGateway.Transport.LoadBalancing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Host.Tests;

/// <summary>The embedding API through the real DI composition and a real generic host: no mocks of our own types.</summary>
public sealed class EmbeddingApiTests
{
    private static ResourceSetBuilder EchoConfig(int port, int backendPort) => new ResourceSetBuilder("apps")
        .Gateway("gw", g => g.Address("127.0.0.1").Listener("tcp", port))
        .TcpRoute("route", r => r.Parent("gw").Backend("echo", 80))
        .Service("echo", 80, $"127.0.0.1:{backendPort}");

    private static async Task<IHost> StartAsync(Action<IFsmGatewayBuilder> configure, Action<FsmGatewayOptions>? options = null)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        configure(builder.Services.AddFsmGateway(options));
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

    private static Task WaitReadyAsync(IHost host) =>
        Net.EventuallyAsync(() => Task.FromResult(host.Services.GetRequiredService<GatewayRuntimeState>().IsReady), "the gateway is ready");

    [Fact]
    public async Task LoadFromMemory_ServesTheConfig_AndUpdateReconfiguresTheRunningGateway()
    {
        await using var backend = new EchoServer();
        var (first, second) = (Net.FreePort(), Net.FreePort());
        using var host = await StartAsync(g => g.LoadFromMemory(EchoConfig(first, backend.Port).Build()));
        await WaitReadyAsync(host);

        Assert.Equal("hello", await Net.EchoOnceAsync(first, "hello"));

        host.Services.GetRequiredService<InMemoryConfigSource>().Update(EchoConfig(second, backend.Port).Build());

        // Removed listeners are unbound before new ones are bound (a new one may need the same port), so wait for both.
        await Net.EventuallyAsync(() => Net.IsRefusedAsync(first), "the old port closes");
        await Net.EventuallyAsync(async () => !await Net.IsRefusedAsync(second), "the new port serves");
        Assert.Equal("moved", await Net.EchoOnceAsync(second, "moved"));
        await host.StopAsync();
        Assert.False(host.Services.GetRequiredService<GatewayRuntimeState>().IsReady);
    }

    [Fact]
    public async Task LoadFromObservable_WaitsForTheFirstSet_ThenServesEachNewOne()
    {
        await using var backend = new EchoServer();
        var port = Net.FreePort();
        using var sets = new BehaviorSubject<IEnumerable<Resource>>(EchoConfig(port, backend.Port).Build());
        using var host = await StartAsync(g => g.LoadFromObservable(sets));
        await WaitReadyAsync(host);

        Assert.Equal("pushed", await Net.EchoOnceAsync(port, "pushed"));

        sets.OnNext([]);
        await Net.EventuallyAsync(() => Net.IsRefusedAsync(port), "an empty set serves nothing");
        await host.StopAsync();
    }

    [Fact]
    public async Task LoadFromManifests_ServesTheFolder()
    {
        await using var backend = new EchoServer();
        var port = Net.FreePort();
        var folder = Directory.CreateTempSubdirectory("fsm-embed-");
        try
        {
            File.WriteAllText(Path.Combine(folder.FullName, "gw.yaml"), Manifests.Gateway(("tcp", port)));
            File.WriteAllText(Path.Combine(folder.FullName, "route.yaml"), Manifests.RouteAndBackend(backend.Port));
            using var host = await StartAsync(g => g.LoadFromManifests(folder.FullName));
            await WaitReadyAsync(host);
            var compiled = host.Services.GetRequiredService<GatewayRuntimeState>().LastCompilation!;
            Assert.True(compiled.Table.Listeners.Length == 1, FsmGateway.Routing.CompilationResultJson.ToJson(compiled));

            Assert.Equal("from yaml", await Net.EchoOnceAsync(port, "from yaml"));
            await host.StopAsync();
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task AddStatusSink_ReceivesTheStatusesWithWhatWasReallyBound()
    {
        await using var backend = new EchoServer();
        var port = Net.FreePort();
        using var host = await StartAsync(g => g.LoadFromMemory(EchoConfig(port, backend.Port).Build()).AddStatusSink<RecordingSink>());
        await WaitReadyAsync(host);

        var sink = host.Services.GetServices<IStatusSink>().OfType<RecordingSink>().Single();
        var gateway = sink.Published.Last().Gateways.Values.Single();
        var programmed = gateway.Listeners.Single().Conditions.Single(c => c.Type == ConditionTypes.Programmed);
        Assert.Equal((ConditionStatus.True, $"Listening on port {port}"), (programmed.Status, programmed.Message));
        await host.StopAsync();
    }

    [Fact]
    public async Task UseUpstreamConnector_AndACustomPolicy_AreTheOnesUsed()
    {
        await using var backend = new EchoServer();
        var port = Net.FreePort();
        using var host = await StartAsync(g => g
            .LoadFromMemory(EchoConfig(port, backend.Port).Build())
            .UseUpstreamConnector<CountingConnector>()
            .AddLoadBalancingPolicy<FirstEndpointPolicy>()
            .ConfigureProxy(o => o.LoadBalancingPolicy = FirstEndpointPolicy.PolicyName));
        await WaitReadyAsync(host);

        Assert.Equal("x", await Net.EchoOnceAsync(port, "x"));
        Assert.Equal("y", await Net.EchoOnceAsync(port, "y"));

        Assert.Equal(2, Assert.IsType<CountingConnector>(host.Services.GetRequiredService<IUpstreamConnector>()).Connects.Count);
        Assert.Equal(2, FirstEndpointPolicy.Picks);
        await host.StopAsync();
    }

    [Fact]
    public async Task UnknownPolicyName_FailsAtStartWithTheKnownNames()
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddFsmGateway().LoadFromMemory([]).ConfigureProxy(o => o.LoadBalancingPolicy = "Nope");
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<ArgumentException>(() => host.StartAsync());

        Assert.Contains("No load-balancing policy named 'Nope' is registered; known: ConsistentHashSourceIP, LeastRequest, Random, RoundRobin", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoConfigSource_StartsButIsNeverReady()
    {
        using var host = await StartAsync(_ => { });

        await Task.Delay(300);

        Assert.False(host.Services.GetRequiredService<GatewayRuntimeState>().IsReady);
        await host.StopAsync();
    }

    private sealed class RecordingSink : IStatusSink
    {
        public ConcurrentQueue<StatusSet> Published { get; } = new();

        public ValueTask PublishAsync(StatusSet statuses, CancellationToken cancellationToken)
        {
            Published.Enqueue(statuses);
            return ValueTask.CompletedTask;
        }
    }

    private sealed class CountingConnector : IUpstreamConnector
    {
        public ConcurrentQueue<EndPoint> Connects { get; } = new();

        public async ValueTask<IDuplexConnection> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken)
        {
            Connects.Enqueue(endPoint);
            var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            await socket.ConnectAsync(endPoint, cancellationToken);
            return new StreamConnection(socket);
        }
    }

    private sealed class FirstEndpointPolicy : ILoadBalancingPolicy
    {
        public const string PolicyName = "First";
        private static int _picks;

        public static int Picks => Volatile.Read(ref _picks);

        public string Name => PolicyName;

        public int Pick(EndpointPickContext context)
        {
            Interlocked.Increment(ref _picks);
            return 0;
        }
    }

    /// <summary>A connection of the test's own making, to prove the proxy needs nothing but the interface.</summary>
    private sealed class StreamConnection(System.Net.Sockets.Socket socket) : IDuplexConnection
    {
        public EndPoint? LocalEndPoint => socket.LocalEndPoint;

        public EndPoint? RemoteEndPoint => socket.RemoteEndPoint;

        public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken) => socket.ReceiveAsync(buffer, cancellationToken);

        public async ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            while (!data.IsEmpty)
            {
                data = data[await socket.SendAsync(data, cancellationToken)..];
            }
        }

        public void CompleteSend() => socket.Shutdown(System.Net.Sockets.SocketShutdown.Send);

        public void Abort() => socket.Dispose();

        public ValueTask DisposeAsync()
        {
            socket.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
