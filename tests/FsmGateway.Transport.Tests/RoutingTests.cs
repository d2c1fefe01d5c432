using System.Collections.Concurrent;
using System.Text;
using FsmGateway.Routing;
using FsmGateway.Transport.Tests.TestSupport;

namespace FsmGateway.Transport.Tests;

/// <summary>Which backend a connection reaches: listeners, weights, invalid backends and listeners without a route.</summary>
public sealed class RoutingTests
{
    private const string Closed = "(closed)";

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task ApplyAsync_TwoListenersToOneBackend_EachListenerReachesTheBackend()
    {
        // The seed: one Gateway with listeners on two ports, one TCPRoute attached to both, one Service behind it.
        await using var backend = TestBackend.Echo();
        var ports = FreePort.Get(2);
        var httpbin = Routes.Backend("httpbin", 1, backend);
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Listener(ports[0], httpbin), Routes.Listener(ports[1], httpbin)));

        using var deadline = Guard.Deadline();
        foreach (var port in ports)
        {
            using var client = await TestClient.ConnectAsync(port, deadline.Token);
            await client.AssertEchoesAsync($"hello through port {port}");
        }

        Assert.Equal(2, backend.Accepted);
        Assert.Equal(2, proxy.BoundEndPoints.Count);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Connect_Weights70And30And0_SplitsConnectionsByWeightAndWeightZeroGetsNone()
    {
        await using var a = TestBackend.Tagging("a");
        await using var b = TestBackend.Tagging("b");
        await using var zero = TestBackend.Tagging("zero");
        var port = FreePort.Get();
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Listener(port,
            Routes.Backend("a", 70, a), Routes.Backend("b", 30, b), Routes.Backend("zero", 0, zero))));

        var replies = await ConnectManyAsync(port, 1_000);

        AssertShare(replies, "a", 0.70);
        AssertShare(replies, "b", 0.30);
        Assert.Equal(0, replies.GetValueOrDefault("zero"));
        Assert.Equal(0, replies.GetValueOrDefault(Closed));
        Assert.Equal(0, zero.Accepted);
        Assert.Equal(replies["a"], a.Accepted);
        Assert.Equal(replies["b"], b.Accepted);
    }

    [Theory(Timeout = Guard.TestTimeout)]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Connect_BackendThatCannotServe_KeepsItsShareAndThoseConnectionsAreClosed(bool invalidReference)
    {
        // An unresolved backendRef and a Service with no ready endpoints are alike: weight 1 of 4 keeps 25% of the
        // connections, and those are closed at once rather than handed to the healthy backend.
        await using var good = TestBackend.Tagging("good");
        var port = FreePort.Get();
        var broken = invalidReference ? Routes.Invalid("missing", 1) : Routes.Backend("empty", 1, Array.Empty<BackendEndpoint>());
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("good", 3, good), broken)));

        var replies = await ConnectManyAsync(port, 1_000);

        AssertShare(replies, Closed, 0.25);
        AssertShare(replies, "good", 0.75);
        Assert.Equal(replies["good"], good.Accepted);
        Assert.Equal(1_000, replies.Values.Sum());
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Connect_AllWeightsZero_EveryConnectionIsClosed()
    {
        await using var a = TestBackend.Tagging("a");
        await using var b = TestBackend.Tagging("b");
        var port = FreePort.Get();
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("a", 0, a), Routes.Backend("b", 0, b))));

        var replies = await ConnectManyAsync(port, 50);

        Assert.Equal(50, replies.GetValueOrDefault(Closed));
        Assert.Equal(0, a.Accepted + b.Accepted);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Connect_ListenerWithoutRoute_EveryConnectionIsClosed()
    {
        var port = FreePort.Get();
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Unrouted(port)));

        var replies = await ConnectManyAsync(port, 50);

        Assert.Equal(50, replies.GetValueOrDefault(Closed));
        Assert.True(await Guard.Eventually(() => proxy.ActiveConnections == 0), $"{proxy.ActiveConnections} connection(s) still open");
    }

    /// <summary>Opens <paramref name="count"/> connections (a few at a time) and counts the tag each one was answered with.</summary>
    private static async Task<Dictionary<string, int>> ConnectManyAsync(int port, int count)
    {
        var replies = new ConcurrentDictionary<string, int>();
        using var deadline = Guard.Deadline(30);
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = deadline.Token }, async (_, cancellationToken) =>
        {
            var result = await TestClient.ConnectAndReadToEndAsync(port, cancellationToken);
            var tag = result.ClosedWithoutData ? Closed : Encoding.ASCII.GetString(result.Data);
            Assert.False(result.Reset && !result.ClosedWithoutData, $"reply '{tag}' was cut off by a reset");
            replies.AddOrUpdate(tag, 1, static (_, n) => n + 1);
        });
        return new Dictionary<string, int>(replies);
    }

    private static void AssertShare(Dictionary<string, int> replies, string tag, double expected)
    {
        var total = replies.Values.Sum();
        var share = replies.GetValueOrDefault(tag) / (double)total;
        Assert.True(Math.Abs(share - expected) <= 0.03, $"'{tag}' got {share:P1} of {total} connections, expected {expected:P0} ± 3 points; all: {string.Join(", ", replies.Select(static r => $"{r.Key}={r.Value}"))}");
    }
}
