using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime;
using FsmGateway.Transport.Tests.TestSupport;

namespace FsmGateway.Transport.Tests;

/// <summary>Many connections: thousands open at once, and no file descriptor left behind after many in a row.</summary>
public sealed class LoadTests
{
    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Connect_2000HeldOpenAtOnce_EveryOneRoundTrips()
    {
        // 2,000 clients + 2,000 proxied + 2,000 upstream + 2,000 backend sockets, all in this process: 8,000 file
        // descriptors. The limit here is `ulimit -n`; the test says so plainly rather than failing obscurely.
        const int Count = 2_000;
        var limit = OpenFileLimit();
        Assert.True(limit is null || limit >= 4 * Count + 500, $"this test needs about {4 * Count + 500} file descriptors but `ulimit -n` is {limit}; raise it to run the test");

        await using var echo = TestBackend.Echo();
        var port = FreePort.Get();
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, echo))));
        var clients = new ConcurrentBag<Socket>();
        try
        {
            using var deadline = Guard.Deadline(30);
            var options = new ParallelOptions { MaxDegreeOfParallelism = 64, CancellationToken = deadline.Token };

            // Open them all, each proving its path once; none is closed before all are open.
            await Parallel.ForEachAsync(Enumerable.Range(0, Count), options, async (i, cancellationToken) =>
            {
                var client = await TestClient.ConnectAsync(port, cancellationToken);
                clients.Add(client);
                var payload = BitConverter.GetBytes(i);
                Assert.Equal(payload, await client.RoundTripAsync(payload, cancellationToken));
            });

            Assert.Equal(Count, proxy.ActiveConnections);
            Assert.Equal(Count, echo.Open);

            // With all of them open, each one round-trips again.
            var served = 0;
            await Parallel.ForEachAsync(clients, options, async (client, cancellationToken) =>
            {
                var payload = new byte[100];
                Random.Shared.NextBytes(payload);
                Assert.Equal(payload, await client.RoundTripAsync(payload, cancellationToken));
                Interlocked.Increment(ref served);
            });
            Assert.Equal(Count, served);
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }

        Assert.True(await Guard.Eventually(() => proxy.ActiveConnections == 0), $"{proxy.ActiveConnections} connection(s) still open after the clients closed");
    }

    [ProcFdFact(Timeout = Guard.TestTimeout)]
    public async Task Connect_10000InSequence_FileDescriptorsReturnToBaseline()
    {
        const int Count = 10_000;
        await using var echo = TestBackend.Echo();
        var port = FreePort.Get();
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, echo))));
        using var deadline = Guard.Deadline(45);
        var payload = "x"u8.ToArray();

        async Task OneConnectionAsync()
        {
            using var client = await TestClient.ConnectAsync(port, deadline.Token);
            await client.RoundTripAsync(payload, deadline.Token);
            client.Shutdown(SocketShutdown.Send);
            var rest = await client.ReadToEndAsync(deadline.Token);
            Assert.False(rest.Reset);
        }

        // Warm up first: thread pool threads, epoll registrations and pooled buffers are not leaks.
        for (var i = 0; i < 200; i++)
        {
            await OneConnectionAsync();
        }

        Assert.True(await Guard.Eventually(() => proxy.ActiveConnections == 0 && echo.Open == 0), "warm-up connections did not close");
        var baseline = ProcFdFactAttribute.Count();

        for (var i = 0; i < Count; i++)
        {
            await OneConnectionAsync();
        }

        Assert.True(await Guard.Eventually(() => proxy.ActiveConnections == 0 && echo.Open == 0), $"{proxy.ActiveConnections} proxied and {echo.Open} backend connection(s) still open");
        var after = 0;
        Assert.True(
            await Guard.Eventually(() => (after = ProcFdFactAttribute.Count()) <= baseline + 20),
            $"{after} file descriptors open after {Count} connections, {baseline} before");
    }

    [ProcFdFact(Timeout = Guard.TestTimeout)]
    public async Task Connect_500InSequenceWithGcPaused_ClosesSocketsItselfRatherThanLeavingThemToFinalizers()
    {
        // A socket the proxy forgets to dispose is still closed eventually, by its finalizer after a garbage
        // collection, which thousands of connections trigger often enough to hide the leak. With collections paused
        // nothing is finalized, so every descriptor that is not closed explicitly stays visible.
        const int Count = 500;
        await using var echo = TestBackend.Echo();
        var port = FreePort.Get();
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, echo))));
        using var deadline = Guard.Deadline(45);
        var payload = "x"u8.ToArray();
        var buffer = new byte[16];

        async Task OneConnectionAsync()
        {
            using var client = await TestClient.ConnectAsync(port, deadline.Token);
            await client.RoundTripAsync(payload, deadline.Token);
            client.Shutdown(SocketShutdown.Send);
            Assert.Equal(0, await client.ReceiveAsync(buffer, SocketFlags.None, deadline.Token));
        }

        for (var i = 0; i < 200; i++)
        {
            await OneConnectionAsync();
        }

        Assert.True(await Guard.Eventually(() => proxy.ActiveConnections == 0 && echo.Open == 0), "warm-up connections did not close");
        var baseline = ProcFdFactAttribute.Count();
        Assert.True(GC.TryStartNoGCRegion(160L << 20), "could not pause garbage collection");
        try
        {
            for (var i = 0; i < Count; i++)
            {
                await OneConnectionAsync();
            }

            Assert.True(await Guard.Eventually(() => proxy.ActiveConnections == 0 && echo.Open == 0), $"{proxy.ActiveConnections} proxied and {echo.Open} backend connection(s) still open");
            var after = 0;
            var closed = await Guard.Eventually(() => (after = ProcFdFactAttribute.Count()) <= baseline + 20, seconds: 5);
            Assert.True(GCSettings.LatencyMode == GCLatencyMode.NoGCRegion, "a garbage collection ran after all (more was allocated than the paused budget), so the check proves nothing; raise the budget");
            Assert.True(closed, $"{after} file descriptors open after {Count} connections, {baseline} before: sockets were left for finalizers to close");
        }
        finally
        {
            if (GCSettings.LatencyMode == GCLatencyMode.NoGCRegion)
            {
                GC.EndNoGCRegion();
            }
        }
    }

    private static long? OpenFileLimit()
    {
        try
        {
            var line = File.ReadLines("/proc/self/limits").FirstOrDefault(static l => l.StartsWith("Max open files", StringComparison.Ordinal));
            var soft = line?.Split(' ', StringSplitOptions.RemoveEmptyEntries)[3];
            return soft is null || soft == "unlimited" ? null : long.Parse(soft, System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return null;
        }
    }
}
