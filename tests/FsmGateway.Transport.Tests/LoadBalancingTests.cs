using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using FsmGateway.Routing;
using FsmGateway.Transport.Proxy;
using FsmGateway.Transport.Tests.TestSupport;

namespace FsmGateway.Transport.Tests;

/// <summary>
/// Each backend's load-balancing algorithm, end to end through real sockets on 127.0.0.1: least connections against
/// endpoints that finish their connections at different speeds, source-IP affinity across endpoint changes (clients
/// bound to different 127.x.y.z addresses; Linux routes all of 127/8 to lo), random spread, and failover for every
/// algorithm. Each backend tells the client which endpoint it is with a one-byte tag.
/// </summary>
public sealed class LoadBalancingTests
{
    [Fact(Timeout = Guard.TestTimeout)]
    public async Task LeastRequest_KeepsActiveConnectionsEven_OverEndpointsThatFinishAtDifferentSpeeds()
    {
        // Endpoints 0 and 1 are the fast ones: they finish their connections (close them) when the test says; 2 and 3
        // hold theirs to the end. Least connections must then fill the fast ones up: round robin or random would
        // leave them with half the slow ones' load (150 against 250 here).
        var servers = Enumerable.Range(0, 4).Select(static i => new HoldingBackend((byte)('0' + i))).ToArray();
        try
        {
            var port = FreePort.Get();
            var backend = Routes.Backend("svc", 1, [.. servers.Select(static s => s.Server)]) with { Policy = new BackendPolicy { LoadBalancer = LoadBalancerAlgorithm.LeastRequest } };
            await using var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Listener(port, backend)));
            var clients = new ConcurrentBag<(Socket Socket, byte Tag)>();

            await OpenAsync(port, 400, clients);
            var wave1 = Tally(clients);
            Assert.All(wave1.Values, n => Assert.InRange(n, 80, 120));

            // The fast endpoints finish: their clients see the end, and close.
            servers[0].FinishAll();
            servers[1].FinishAll();
            var finished = clients.Where(static c => c.Tag is (byte)'0' or (byte)'1').ToList();
            foreach (var (socket, _) in finished)
            {
                await socket.ReadToEndAsync();
                socket.Dispose();
            }

            var left = 400 - finished.Count;
            Assert.True(await Guard.Eventually(() => proxy.ActiveConnections == left), $"{proxy.ActiveConnections} connections open, expected {left}");
            var open = new ConcurrentBag<(Socket Socket, byte Tag)>(clients.Except(finished));

            await OpenAsync(port, 600, open);
            var counts = Tally(open);
            var mean = open.Count / 4.0;
            Assert.Equal(left + 600, open.Count);
            Assert.All(counts, pair => Assert.True(Math.Abs(pair.Value - mean) <= mean * 0.10, $"endpoint {(char)pair.Key}: {pair.Value} open, mean {mean}; all: {Describe(counts)}"));
            // The fast endpoints did get more connections in all: that is what kept the open ones even.
            Assert.True(servers[0].Server.Accepted + servers[1].Server.Accepted > servers[2].Server.Accepted + servers[3].Server.Accepted + 150, $"accepted: {string.Join(", ", servers.Select(static s => s.Server.Accepted))}");

            foreach (var (socket, _) in open)
            {
                socket.Dispose();
            }
        }
        finally
        {
            foreach (var server in servers)
            {
                await server.DisposeAsync();
            }
        }
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task ConsistentHashSourceIP_EndpointAdded_ClientsNotMovedToItKeepTheirEndpoint()
    {
        await using var a = TestBackend.Tagging("a");
        await using var b = TestBackend.Tagging("b");
        await using var c = TestBackend.Tagging("c");
        await using var d = TestBackend.Tagging("d");
        var port = FreePort.Get();
        var policy = new BackendPolicy { LoadBalancer = LoadBalancerAlgorithm.ConsistentHashSourceIP };
        var three = Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, a, b, c) with { Policy = policy }));
        await using var proxy = await Routes.StartProxyAsync(three);
        var sources = Enumerable.Range(0, 1000).Select(static i => IPAddress.Parse($"127.{20 + (i / 250)}.{i % 250}.{1 + (i % 7)}")).ToArray();

        var before = await EndpointsOfAsync(port, sources);
        var again = await EndpointsOfAsync(port, sources);
        Assert.Equal(before, again);
        Assert.All(new[] { "a", "b", "c" }, tag => Assert.InRange(before.Count(t => t == tag), 250, 420));

        await proxy.ApplyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, a, b, c, d) with { Policy = policy })), CancellationToken.None);
        var after = await EndpointsOfAsync(port, sources);

        var toNew = after.Count(static t => t == "d");
        var stayed = Enumerable.Range(0, sources.Length).Count(i => after[i] != "d" && after[i] == before[i]);
        Assert.InRange(toNew, 150, 350); // about a quarter: the new endpoint's share
        Assert.True(stayed >= 0.99 * (sources.Length - toNew), $"{stayed} of the {sources.Length - toNew} clients not moved to the new endpoint kept theirs");

        // And back: the endpoint leaves, everyone is where they started.
        await proxy.ApplyAsync(three, CancellationToken.None);
        Assert.Equal(before, await EndpointsOfAsync(port, sources));
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task ConsistentHashSourceIP_HashesTheProxyProtocolSourceAddress()
    {
        await using var a = TestBackend.Tagging("a");
        await using var b = TestBackend.Tagging("b");
        await using var c = TestBackend.Tagging("c");
        var port = FreePort.Get();
        var backend = Routes.Backend("svc", 1, a, b, c) with { Policy = new BackendPolicy { LoadBalancer = LoadBalancerAlgorithm.ConsistentHashSourceIP } };
        var listener = Routes.Listener(port, backend) with { Client = new ClientPolicy { ProxyProtocol = new ClientProxyProtocol(false) } };
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(listener));

        // Every connection comes from 127.0.0.1; only the header's source differs.
        var sources = Enumerable.Range(0, 300).Select(static i => $"10.{i / 250}.{i % 250}.7").ToArray();
        var first = await Task.WhenAll(sources.Select(source => EndpointForAsync(port, source)));
        var second = await Task.WhenAll(sources.Select(source => EndpointForAsync(port, source)));

        Assert.Equal(first, second);
        Assert.All(new[] { "a", "b", "c" }, tag => Assert.InRange(first.Count(t => t == tag), 50, 150));
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Random_SpreadsConnectionsRoughlyEvenly()
    {
        var servers = new[] { TestBackend.Tagging("a"), TestBackend.Tagging("b"), TestBackend.Tagging("c"), TestBackend.Tagging("d") };
        try
        {
            var port = FreePort.Get();
            var backend = Routes.Backend("svc", 1, servers) with { Policy = new BackendPolicy { LoadBalancer = LoadBalancerAlgorithm.Random } };
            await using var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Listener(port, backend)));

            // One after the other, so that the order of the tags is the order of the picks.
            var tags = await EndpointsOfAsync(port, [.. Enumerable.Repeat(IPAddress.Loopback, 1000)], parallel: 1);

            // 250 expected each; the binomial's standard deviation is 13.7, so ±60 is more than 4 of them.
            Assert.All(new[] { "a", "b", "c", "d" }, tag => Assert.InRange(tags.Count(t => t == tag), 190, 310));
            // Not in turn: two connections in a row to one endpoint, which round robin never does (at random, about
            // 250 times in 1,000).
            Assert.Contains(Enumerable.Range(1, tags.Length - 1), i => tags[i] == tags[i - 1]);
        }
        finally
        {
            foreach (var server in servers)
            {
                await server.DisposeAsync();
            }
        }
    }

    [Theory(Timeout = Guard.TestTimeout)]
    [InlineData(LoadBalancerAlgorithm.RoundRobin)]
    [InlineData(LoadBalancerAlgorithm.LeastRequest)]
    [InlineData(LoadBalancerAlgorithm.Random)]
    [InlineData(LoadBalancerAlgorithm.ConsistentHashSourceIP)]
    public async Task EveryAlgorithm_FailsOverFromARefusingEndpoint_AndTheNextConnectionsDoNotStartOnIt(LoadBalancerAlgorithm algorithm)
    {
        await using var alive = TestBackend.Tagging("a");
        var connector = new RecordingConnector();
        var (port, deadPort) = (FreePort.Get(), FreePort.Get());
        var backend = Routes.Backend("svc", 1, new BackendEndpoint("127.0.0.1", deadPort), alive.Endpoint) with { Policy = new BackendPolicy { LoadBalancer = algorithm } };
        await using var proxy = new GatewayProxy(new Sockets.SocketTransport(), connector, [], Microsoft.Extensions.Options.Options.Create(new ProxyOptions()), TimeProvider.System);
        await proxy.ApplyAsync(Routes.Table(Routes.Listener(port, backend)), CancellationToken.None);

        // Many client addresses, so that source-IP hashing sends some of them to the dead endpoint first; one after
        // the other, since "the next connection" is the one that starts after a failover.
        var tags = await EndpointsOfAsync(port, [.. Enumerable.Range(0, 50).Select(static i => IPAddress.Parse($"127.30.0.{i + 1}"))], parallel: 1);

        Assert.All(tags, static tag => Assert.Equal("a", tag));
        Assert.True(connector.Attempts(deadPort) <= 1, $"{connector.Attempts(deadPort)} connects to the refusing endpoint");
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task BackendsOfOneListener_EachUseTheirOwnAlgorithm()
    {
        await using var a = TestBackend.Tagging("a");
        await using var b = TestBackend.Tagging("b");
        await using var x = TestBackend.Tagging("x");
        await using var y = TestBackend.Tagging("y");
        var (port1, port2) = (FreePort.Get(), FreePort.Get());
        var hashed = Routes.Backend("hashed", 1, a, b) with { Policy = new BackendPolicy { LoadBalancer = LoadBalancerAlgorithm.ConsistentHashSourceIP } };
        var turns = Routes.Backend("turns", 1, x, y);
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Listener(port1, hashed), Routes.Listener(port2, turns)));

        var one = IPAddress.Parse("127.40.0.1");
        var sticky = await EndpointsOfAsync(port1, [.. Enumerable.Repeat(one, 20)]);
        var inTurn = await EndpointsOfAsync(port2, [.. Enumerable.Repeat(one, 20)], parallel: 1);

        Assert.Single(sticky.Distinct());
        Assert.All(Enumerable.Range(1, inTurn.Length - 1), i => Assert.NotEqual(inTurn[i - 1], inTurn[i]));
        Assert.Equal(10, inTurn.Count(static t => t == "x"));
    }

    /// <summary>Connects from each of <paramref name="sources"/> in turn (a few at a time) and reads the endpoint's tag.</summary>
    internal static async Task<string[]> EndpointsOfAsync(int port, IPAddress[] sources, int parallel = 8)
    {
        var tags = new string[sources.Length];
        using var deadline = Guard.Deadline(60);
        await Parallel.ForEachAsync(
            Enumerable.Range(0, sources.Length),
            new ParallelOptions { MaxDegreeOfParallelism = parallel, CancellationToken = deadline.Token },
            async (i, token) =>
            {
                using var socket = await TestClient.ConnectFromAsync(sources[i], port, token);
                tags[i] = System.Text.Encoding.ASCII.GetString((await socket.ReadToEndAsync(token)).Data);
            });
        return tags;
    }

    /// <summary>Connects from 127.0.0.1, sends a PROXY v1 header with <paramref name="source"/>, and reads the endpoint's tag.</summary>
    private static async Task<string> EndpointForAsync(int port, string source)
    {
        using var deadline = Guard.Deadline();
        using var socket = await TestClient.ConnectAsync(port, deadline.Token);
        await socket.SendAllAsync(System.Text.Encoding.ASCII.GetBytes($"PROXY TCP4 {source} 127.0.0.1 40000 {port}\r\n"), deadline.Token);
        return System.Text.Encoding.ASCII.GetString((await socket.ReadToEndAsync(deadline.Token)).Data);
    }

    private static async Task OpenAsync(int port, int count, ConcurrentBag<(Socket Socket, byte Tag)> into)
    {
        using var deadline = Guard.Deadline(60);
        await Parallel.ForEachAsync(
            Enumerable.Range(0, count),
            new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = deadline.Token },
            async (_, token) =>
            {
                var socket = await TestClient.ConnectAsync(port, token);
                var tag = new byte[1];
                await socket.ReceiveExactlyAsync(tag, token);
                into.Add((socket, tag[0]));
            });
    }

    private static Dictionary<byte, int> Tally(IEnumerable<(Socket Socket, byte Tag)> clients) =>
        clients.GroupBy(static c => c.Tag).ToDictionary(static g => g.Key, static g => g.Count());

    private static string Describe(Dictionary<byte, int> counts) =>
        string.Join(", ", counts.OrderBy(static p => p.Key).Select(static p => $"{(char)p.Key}={p.Value}"));

    /// <summary>A backend that sends its tag and holds each connection until the client closes or <see cref="FinishAll"/>.</summary>
    private sealed class HoldingBackend : IAsyncDisposable
    {
        private CancellationTokenSource _finish = new();

        public HoldingBackend(byte tag)
        {
            Server = TestBackend.Start(async (_, socket, cancellationToken) =>
            {
                var finish = Volatile.Read(ref _finish);
                await socket.SendAllAsync(new[] { tag }, cancellationToken);
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, finish.Token);
                try
                {
                    await socket.ReceiveAsync(new byte[1], SocketFlags.None, linked.Token);
                }
                catch (OperationCanceledException) when (finish.IsCancellationRequested)
                {
                    // Finished: close.
                }

                socket.Shutdown(SocketShutdown.Both);
            });
        }

        public TestBackend Server { get; }

        /// <summary>Closes every connection held now; connections after this are held again.</summary>
        public void FinishAll()
        {
            using var finishing = Interlocked.Exchange(ref _finish, new CancellationTokenSource());
            finishing.Cancel();
        }

        public async ValueTask DisposeAsync()
        {
            await Server.DisposeAsync();
            _finish.Dispose();
        }
    }
}
