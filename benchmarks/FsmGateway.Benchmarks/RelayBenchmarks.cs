using System.Runtime.CompilerServices;
using BenchmarkDotNet.Attributes;
using FsmGateway.Transport.Relay;

namespace FsmGateway.Benchmarks;

/// <summary>
/// The relay loop (<see cref="TcpRelay"/>) over in-memory connections: what the copy loop itself costs, without the
/// kernel. Bulk: 64 MiB client → upstream in 16 KiB writes, then the half-closes both ways. PingPong: 100-byte
/// request and 100-byte reply through an open relay, per round trip.
/// </summary>
[MemoryDiagnoser]
public class RelayBenchmarks
{
    public const int BulkBytes = 64 * 1024 * 1024;
    private const int ChunkBytes = 16 * 1024;
    private const int RelayBufferBytes = 16 * 1024;
    private const int RoundTrips = 1_000;
    private const int MessageBytes = 100;

    private readonly byte[] _chunk = new byte[ChunkBytes];
    private readonly byte[] _sink = new byte[64 * 1024];
    private readonly byte[] _message = new byte[MessageBytes];
    private readonly byte[] _reply = new byte[MessageBytes];
    private InMemoryDuplex _pingClient = null!;
    private InMemoryDuplex _pingServer = null!;
    private Task _pingRelay = null!;

    [GlobalSetup(Target = nameof(PingPong100B))]
    public void SetupPingPong()
    {
        var (clientRelaySide, client) = InMemoryDuplex.CreatePair();
        var (upstreamRelaySide, server) = InMemoryDuplex.CreatePair();
        _pingClient = client;
        _pingServer = server;
        _pingRelay = TcpRelay.RunAsync(clientRelaySide, upstreamRelaySide, new NullCounters(), RelayBufferBytes).AsTask();
    }

    [GlobalCleanup(Target = nameof(PingPong100B))]
    public void CleanupPingPong()
    {
        _pingClient.CompleteSend();
        _pingServer.CompleteSend();
        _pingRelay.GetAwaiter().GetResult();
    }

    /// <summary>64 MiB one way through a fresh relay, then both half-closes. MB/s = 67.1 / mean in ms × 1000.</summary>
    [Benchmark]
    public async Task Bulk64MiB()
    {
        var (clientRelaySide, client) = InMemoryDuplex.CreatePair();
        var (upstreamRelaySide, server) = InMemoryDuplex.CreatePair();
        var relay = TcpRelay.RunAsync(clientRelaySide, upstreamRelaySide, new NullCounters(), RelayBufferBytes);
        var drain = DrainAsync(server);
        for (var sent = 0; sent < BulkBytes; sent += ChunkBytes)
        {
            await client.SendAsync(_chunk, CancellationToken.None).ConfigureAwait(false);
        }

        client.CompleteSend();
        var received = await drain.ConfigureAwait(false);
        server.CompleteSend();
        while (await client.ReceiveAsync(_reply, CancellationToken.None).ConfigureAwait(false) > 0)
        {
        }

        await relay.ConfigureAwait(false);
        if (received != BulkBytes)
        {
            throw new InvalidOperationException($"received {received} of {BulkBytes} bytes");
        }
    }

    /// <summary>One 100-byte request and its 100-byte reply through an open relay (per round trip).</summary>
    [Benchmark(OperationsPerInvoke = RoundTrips)]
    public async Task PingPong100B()
    {
        for (var i = 0; i < RoundTrips; i++)
        {
            await _pingClient.SendAsync(_message, CancellationToken.None).ConfigureAwait(false);
            await ReadExactlyAsync(_pingServer, _reply).ConfigureAwait(false);
            await _pingServer.SendAsync(_reply, CancellationToken.None).ConfigureAwait(false);
            await ReadExactlyAsync(_pingClient, _reply).ConfigureAwait(false);
        }
    }

    private async Task<long> DrainAsync(InMemoryDuplex from)
    {
        long total = 0;
        int n;
        while ((n = await from.ReceiveAsync(_sink, CancellationToken.None).ConfigureAwait(false)) > 0)
        {
            total += n;
        }

        return total;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private static async ValueTask ReadExactlyAsync(InMemoryDuplex from, byte[] into)
    {
        var read = 0;
        while (read < into.Length)
        {
            var n = await from.ReceiveAsync(into.AsMemory(read), CancellationToken.None).ConfigureAwait(false);
            if (n == 0)
            {
                throw new InvalidOperationException("the relay ended the stream early");
            }

            read += n;
        }
    }

    private sealed class NullCounters : RelayCounters
    {
        public override void Transferred(bool upload, int bytes)
        {
        }
    }
}
