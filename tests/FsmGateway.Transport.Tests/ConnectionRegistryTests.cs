using FsmGateway.Routing;
using FsmGateway.Transport.Connections;
using FsmGateway.Transport.Proxy;
using FsmGateway.Transport.Tests.TestSupport;
using Microsoft.Extensions.Logging.Abstractions;

namespace FsmGateway.Transport.Tests;

/// <summary>
/// The registry every connection is held in, striped per thread: connections added on some threads and removed on
/// others (as a connection's release runs wherever its last I/O completed) leave it exact.
/// </summary>
public sealed class ConnectionRegistryTests
{
    [Fact(Timeout = Guard.TestTimeout)]
    public async Task AddedAndRemovedOnDifferentThreads_CountAndSnapshotStayExact()
    {
        var listener = Routes.Listener(FreePort.Get(), Routes.Backend("svc", 1, new BackendEndpoint("127.0.0.1", 9)));
        var model = new RouteModel(listener, new ConnectionLimits(null, null, null), admission: null, 4096, static (_, _) => null!);
        var runtime = new ListenerRuntime(BindKey.Of(listener), [], model);
        using var metrics = new ProxyMetrics(meterFactory: null);
        await using var registry = new ConnectionRegistry(TimeProvider.System, NullLogger.Instance, TimeSpan.FromHours(1));
        const int PerThread = 2_000;

        // Eight threads add; the connections are then removed by other threads, in another order.
        var added = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Factory.StartNew(
            () =>
            {
                var mine = new List<ProxiedConnection>(PerThread);
                for (var i = 0; i < PerThread; i++)
                {
                    var connection = new ProxiedConnection(new Idle(), runtime, model, TimeProvider.System, metrics);
                    registry.Add(connection);
                    mine.Add(connection);
                }

                return mine;
            },
            TaskCreationOptions.LongRunning)));
        var all = added.SelectMany(static a => a).ToList();
        Assert.Equal(8 * PerThread, registry.Count);
        Assert.Equal(all.Count, registry.Connections.Distinct().Count());

        var kept = all.Where(static (_, i) => i % 3 == 0).ToHashSet();
        var leaving = all.Where(c => !kept.Contains(c)).Reverse().ToList();
        await Task.WhenAll(Enumerable.Range(0, 4).Select(t => Task.Factory.StartNew(
            () =>
            {
                for (var i = t; i < leaving.Count; i += 4)
                {
                    registry.Remove(leaving[i]);
                    registry.Remove(leaving[i]); // a second remove does nothing
                }
            },
            TaskCreationOptions.LongRunning)));

        Assert.Equal(kept.Count, registry.Count);
        Assert.True(kept.SetEquals(registry.Connections));
    }

    private sealed class Idle : IDuplexConnection
    {
        public System.Net.EndPoint? LocalEndPoint => null;

        public System.Net.EndPoint? RemoteEndPoint => null;

        public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken) => ValueTask.FromResult(0);

        public ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public void CompleteSend()
        {
        }

        public void Abort()
        {
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
