using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net;
using FsmGateway.Routing;
using FsmGateway.Transport.Connections;
using FsmGateway.Transport.LoadBalancing;
using FsmGateway.Transport.Proxy;
using FsmGateway.Transport.Sockets;
using FsmGateway.Transport.Tests.TestSupport;
using Microsoft.Extensions.Options;

namespace FsmGateway.Transport.Tests;

/// <summary>Connecting upstream: failover between a backend's endpoints and the connect timeout.</summary>
public sealed class UpstreamConnectTests
{
    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Connect_OneOfTwoEndpointsRefuses_EveryClientIsServed()
    {
        await using var alive = TestBackend.Echo();
        var ports = FreePort.Get(2);
        var (listenerPort, deadPort) = (ports[0], ports[1]);
        // A backend name of its own: connect failures are tagged by backend, and other tests run at the same time.
        var backendName = $"svc-{listenerPort}";
        using var failures = new ConnectFailureCounter(backendName);
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Listener(listenerPort,
            Routes.Backend(backendName, 1, new BackendEndpoint("127.0.0.1", deadPort), alive.Endpoint))));

        using var deadline = Guard.Deadline(30);
        var served = 0;
        await Parallel.ForEachAsync(Enumerable.Range(0, 200), new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = deadline.Token }, async (i, cancellationToken) =>
        {
            using var client = await TestClient.ConnectAsync(listenerPort, cancellationToken);
            var payload = BitConverter.GetBytes(i);
            Assert.Equal(payload, await client.RoundTripAsync(payload, cancellationToken));
            Interlocked.Increment(ref served);
        });

        Assert.Equal(200, served);
        Assert.Equal(200, alive.Accepted);

        // Round robin sent first attempts to the dead endpoint too: failover, not luck, served those clients.
        Assert.True(failures.Count > 0, "no connect attempt failed, so the refusing endpoint was never tried");
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Connect_UpstreamConnectNeverCompletes_ClientIsClosedAfterConnectTimeout()
    {
        var connector = new ScriptedConnector(hangFirst: int.MaxValue);
        var port = FreePort.Get();
        await using var proxy = CreateProxy(connector, TimeSpan.FromMilliseconds(200));
        await proxy.ApplyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, new BackendEndpoint("127.0.0.1", 9)))), CancellationToken.None);

        using var deadline = Guard.Deadline(20);
        var started = Stopwatch.StartNew();
        var result = await TestClient.ConnectAndReadToEndAsync(port, deadline.Token).Within("the proxy closing the client after the connect timeout");

        Assert.True(result.ClosedWithoutData);
        Assert.True(started.Elapsed >= TimeSpan.FromMilliseconds(150), $"closed after {started.Elapsed.TotalMilliseconds} ms, before the 200 ms connect timeout");
        Assert.Equal(1, connector.Calls);
        Assert.Equal(1, connector.Cancelled);
        Assert.True(await Guard.Eventually(() => proxy.ActiveConnections == 0), "the client connection was not released");
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Connect_FirstEndpointHangsSecondAnswers_ClientIsServedByTheSecond()
    {
        await using var first = TestBackend.Echo();
        await using var second = TestBackend.Echo();
        var connector = new ScriptedConnector(hangFirst: 1);
        var port = FreePort.Get();
        await using var proxy = CreateProxy(connector, TimeSpan.FromMilliseconds(200));
        await proxy.ApplyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, first, second))), CancellationToken.None);

        using var deadline = Guard.Deadline(15);
        using var client = await TestClient.ConnectAsync(port, deadline.Token);
        await client.AssertEchoesAsync("served after a timed-out attempt");

        Assert.Equal(2, connector.Calls);
        Assert.Equal(1, connector.Cancelled);
        Assert.NotEqual(connector.Endpoints[0], connector.Endpoints[1]);
        Assert.Equal(1, first.Accepted + second.Accepted);
    }

    private static GatewayProxy CreateProxy(IUpstreamConnector connector, TimeSpan connectTimeout) =>
        new(new SocketTransport(), connector, [new RoundRobinPolicy()], Options.Create(new ProxyOptions { ConnectTimeout = connectTimeout }), TimeProvider.System);

    /// <summary>A connector whose first calls never complete until cancelled; later calls open real sockets.</summary>
    private sealed class ScriptedConnector(int hangFirst) : IUpstreamConnector
    {
        private readonly SocketTransport _real = new();
        private int _calls;
        private int _cancelled;

        public int Calls => Volatile.Read(ref _calls);

        public int Cancelled => Volatile.Read(ref _cancelled);

        public List<EndPoint> Endpoints { get; } = [];

        public async ValueTask<IDuplexConnection> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken)
        {
            lock (Endpoints)
            {
                Endpoints.Add(endPoint);
            }

            if (Interlocked.Increment(ref _calls) > hangFirst)
            {
                return await _real.ConnectAsync(endPoint, cancellationToken);
            }

            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
                throw new UnreachableException();
            }
            catch (OperationCanceledException)
            {
                Interlocked.Increment(ref _cancelled);
                throw;
            }
        }
    }

    /// <summary>Counts <c>fsmgateway.upstream.connect_failures</c> for one listener port.</summary>
    private sealed class ConnectFailureCounter : IDisposable
    {
        private readonly MeterListener _listener = new();
        private long _count;

        public ConnectFailureCounter(string backendName)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == ProxyMetrics.MeterName && instrument.Name == "fsmgateway.upstream.connect_failures")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            {
                foreach (var tag in tags)
                {
                    if (tag is { Key: "backend_name", Value: string name } && name == backendName)
                    {
                        Interlocked.Add(ref _count, value);
                    }
                }
            });
            _listener.Start();
        }

        public long Count => Interlocked.Read(ref _count);

        public void Dispose() => _listener.Dispose();
    }
}
