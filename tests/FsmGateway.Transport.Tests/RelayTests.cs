using System.Diagnostics;
using System.Net.Sockets;
using System.Security.Cryptography;
using FsmGateway.Routing;
using FsmGateway.Transport.Proxy;
using FsmGateway.Transport.Tests.TestSupport;

namespace FsmGateway.Transport.Tests;

/// <summary>The bytes themselves: half-close, large transfers both ways, backpressure and resets.</summary>
public abstract class RelayTests : TransportTestBase
{
    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Relay_ClientHalfCloses_ReceivesWholeEchoThenEndOfStream()
    {
        await using var echo = TestBackend.Echo();
        await using var proxy = await StartAsync(echo);
        var payload = RandomBytes(1 << 20, seed: 4);

        using var deadline = Guard.Deadline();
        using var client = await TestClient.ConnectAsync(Port(proxy), deadline.Token);
        var reply = client.ReadToEndAsync(deadline.Token);
        await client.SendAllAsync(payload, deadline.Token);
        client.Shutdown(SocketShutdown.Send);
        var result = await reply;

        Assert.False(result.Reset, "the connection was reset instead of ending cleanly");
        Assert.Equal(payload.Length, result.Data.Length);
        Assert.Equal(SHA256.HashData(payload), SHA256.HashData(result.Data));
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Relay_BackendRepliesOnlyAfterClientHalfClose_ClientReceivesReplyThenEndOfStream()
    {
        // The backend answers only once it has seen the end of the request: the proxy must pass the client's FIN on
        // and keep the other direction open for the answer.
        await using var backend = TestBackend.Start(static async (self, socket, cancellationToken) =>
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[16 * 1024];
            int received;
            while ((received = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken)) > 0)
            {
                hash.AppendData(buffer, 0, received);
                self.CountReceived(received);
            }

            var digest = hash.GetHashAndReset();
            for (var i = 0; i < 64; i++)
            {
                await socket.SendAllAsync(digest, cancellationToken);
            }

            socket.Shutdown(SocketShutdown.Send);
        });
        await using var proxy = await StartAsync(backend);
        var request = RandomBytes(300_000, seed: 5);

        using var deadline = Guard.Deadline();
        using var client = await TestClient.ConnectAsync(Port(proxy), deadline.Token);
        await client.SendAllAsync(request, deadline.Token);
        client.Shutdown(SocketShutdown.Send);
        var result = await client.ReadToEndAsync(deadline.Token);

        Assert.False(result.Reset, "the connection was reset instead of ending cleanly");
        Assert.Equal(Enumerable.Repeat(SHA256.HashData(request), 64).SelectMany(static d => d), result.Data);
        Assert.Equal(request.Length, backend.BytesReceived);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Relay_256MiBEachWayAtOnce_ArrivesIntactBothWays()
    {
        const long Size = 256L << 20;
        var backendReceived = new TaskCompletionSource<(long Bytes, byte[] Hash)>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = TestBackend.Start(async (_, socket, cancellationToken) =>
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[256 * 1024];
            long total = 0;
            int received;
            while ((received = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken)) > 0)
            {
                hash.AppendData(buffer, 0, received);
                total += received;
                await socket.SendAllAsync(buffer.AsMemory(0, received), cancellationToken);
            }

            backendReceived.TrySetResult((total, hash.GetHashAndReset()));
            socket.Shutdown(SocketShutdown.Send);
        });
        await using var proxy = await StartAsync(backend);

        using var deadline = Guard.Deadline(45);
        using var client = await TestClient.ConnectAsync(Port(proxy), deadline.Token);
        var send = Task.Run(async () =>
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var random = new Random(256);
            var buffer = new byte[256 * 1024];
            for (long left = Size; left > 0;)
            {
                var chunk = buffer.AsMemory(0, (int)Math.Min(buffer.Length, left));
                random.NextBytes(chunk.Span);
                hash.AppendData(chunk.Span);
                await client.SendAllAsync(chunk, deadline.Token);
                left -= chunk.Length;
            }

            client.Shutdown(SocketShutdown.Send);
            return hash.GetHashAndReset();
        });
        var receive = Task.Run(async () =>
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[256 * 1024];
            long total = 0;
            int received;
            while ((received = await client.ReceiveAsync(buffer, SocketFlags.None, deadline.Token)) > 0)
            {
                hash.AppendData(buffer, 0, received);
                total += received;
            }

            return (Bytes: total, Hash: hash.GetHashAndReset());
        });

        var sent = await send.Within("sending 256 MiB", 45);
        var upstream = await backendReceived.Task.Within("the backend receiving 256 MiB", 45);
        var downstream = await receive.Within("receiving 256 MiB", 45);

        Assert.Equal(Size, upstream.Bytes);
        Assert.Equal(sent, upstream.Hash);
        Assert.Equal(Size, downstream.Bytes);
        Assert.Equal(sent, downstream.Hash);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Relay_SlowReaderFastBackend_BuffersBoundedThenDeliversEverything()
    {
        const int Size = 64 << 20;
        const int Chunk = 64 * 1024;
        long sentByBackend = 0;
        var backendDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = TestBackend.Start(async (_, socket, cancellationToken) =>
        {
            socket.SendBufferSize = Chunk;
            var buffer = Pattern(0, Chunk);
            for (var offset = 0; offset < Size; offset += Chunk)
            {
                await socket.SendAllAsync(buffer, cancellationToken);
                Interlocked.Add(ref sentByBackend, Chunk);
            }

            socket.Shutdown(SocketShutdown.Send);
            backendDone.TrySetResult();
        });
        await using var proxy = await StartAsync(backend);
        var baseline = GC.GetTotalMemory(forceFullCollection: true);

        using var deadline = Guard.Deadline(30);
        using var client = await TestClient.ConnectAsync(Port(proxy), deadline.Token, receiveBufferSize: Chunk);

        // Slow phase: a trickle of small reads for two seconds, while the backend pushes as fast as it can.
        var small = new byte[1024];
        long received = 0;
        var slow = Stopwatch.StartNew();
        while (slow.Elapsed < TimeSpan.FromSeconds(2))
        {
            received += await client.ReceiveAsync(small, SocketFlags.None, deadline.Token);
            await Task.Delay(20, deadline.Token);
        }

        var backlog = Interlocked.Read(ref sentByBackend);
        var growth = GC.GetTotalMemory(forceFullCollection: true) - baseline;

        // The backend is held back by TCP flow control through the proxy, not absorbed into the proxy's memory.
        Assert.False(backendDone.Task.IsCompleted, $"the backend sent all {Size >> 20} MiB to a client that had read {received} bytes");
        Assert.True(backlog < Size / 2, $"the backend got {backlog >> 20} MiB out while the client had read {received} bytes");
        Assert.True(growth < 16 << 20, $"managed memory grew by {growth >> 20} MiB while the client was slow");

        // Then read the rest fast: every byte arrives, in order.
        var buffer = new byte[Chunk];
        var expected = Pattern(0, Chunk);
        var position = received;
        int n;
        while ((n = await client.ReceiveAsync(buffer, SocketFlags.None, deadline.Token)) > 0)
        {
            for (var i = 0; i < n; i++)
            {
                if (buffer[i] != expected[(position + i) % Chunk])
                {
                    Assert.Fail($"byte {position + i} differs");
                }
            }

            position += n;
        }

        Assert.Equal(Size, position);
        await backendDone.Task.Within("the backend finishing");
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Relay_BackendResetsAfterClientHalfClosed_ClientSeesResetNotCleanEnd()
    {
        // A reply cut short by a backend reset must not look complete to the client: the reset is passed on, even
        // though the client→backend direction has already ended cleanly.
        await using var backend = TestBackend.Start(static async (_, socket, cancellationToken) =>
        {
            var buffer = new byte[1024];
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken) > 0)
            {
            }

            await socket.SendAllAsync(RandomBytes(1024, seed: 6), cancellationToken);
            await Task.Delay(100, cancellationToken);
            socket.LingerState = new LingerOption(enable: true, seconds: 0);
            socket.Close();
        });
        await using var proxy = await StartAsync(backend);

        using var deadline = Guard.Deadline();
        using var client = await TestClient.ConnectAsync(Port(proxy), deadline.Token);
        await client.SendAllAsync("request"u8.ToArray(), deadline.Token);
        client.Shutdown(SocketShutdown.Send);
        var result = await client.ReadToEndAsync(deadline.Token);

        Assert.True(result.Reset, $"the client saw a clean end of stream after {result.Data.Length} bytes, as if the reply were complete");
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Relay_ClientResets_BackendSeesReset()
    {
        var backendSaw = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = TestBackend.Start(async (_, socket, cancellationToken) =>
        {
            var buffer = new byte[1024];
            try
            {
                while (await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken) > 0)
                {
                    await socket.SendAllAsync(buffer.AsMemory(0, 1), cancellationToken);
                }

                backendSaw.TrySetResult("end of stream");
            }
            catch (SocketException e)
            {
                backendSaw.TrySetResult(e.SocketErrorCode.ToString());
            }
        });
        await using var proxy = await StartAsync(backend);

        using var deadline = Guard.Deadline();
        var client = await TestClient.ConnectAsync(Port(proxy), deadline.Token);
        await client.RoundTripAsync([1], deadline.Token);
        client.LingerState = new LingerOption(enable: true, seconds: 0);
        client.Close();

        Assert.Equal(nameof(SocketError.ConnectionReset), await backendSaw.Task.Within("the backend noticing the reset"));
    }

    private Task<GatewayProxy> StartAsync(TestBackend backend) =>
        StartProxyAsync(Routes.Table(Routes.Listener(FreePort.Get(), Routes.Backend("svc", 1, backend))));

    private static int Port(GatewayProxy proxy) => ((System.Net.IPEndPoint)Assert.Single(proxy.BoundEndPoints)).Port;

    private static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static byte[] Pattern(long start, int length) => [.. Enumerable.Range(0, length).Select(i => (byte)((start + i) * 7 % 251))];
}

/// <summary>The relay tests on the portable sockets transport.</summary>
public sealed class SocketsRelayTests : RelayTests
{
    protected override ProxyTransport Transport => ProxyTransport.Sockets;
}

/// <summary>The relay tests on the Linux transport (splice, accept4, listener shards).</summary>
public sealed class LinuxRelayTests : RelayTests
{
    protected override ProxyTransport Transport => ProxyTransport.Linux;
}
