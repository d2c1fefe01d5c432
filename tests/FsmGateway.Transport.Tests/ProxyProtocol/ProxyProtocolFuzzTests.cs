using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Sockets;
using FsmGateway.Routing;
using FsmGateway.Transport.Proxy;
using FsmGateway.Transport.ProxyProtocol;
using FsmGateway.Transport.Tests.TestSupport;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Transport.Tests.ProxyProtocol;

/// <summary>
/// Mutated PROXY protocol headers (truncated, oversized, wrong family, wrong length fields, flipped bits, random bytes)
/// against a real listener that accepts the PROXY protocol: each is refused with a clean close and counted as
/// <c>refused_proxy_protocol</c>, or, where the mutation is still a valid header, relayed with exactly the bytes behind
/// it; no exception is logged and the listener serves on. Then valid headers with a payload in the same segment: the
/// backend receives exactly the payload, never a byte of the header nor one lost. Deterministic (fixed seed);
/// <c>FSM_PROXY_PROTOCOL_FUZZ</c> sets the number of mutations (default 1,200).
/// </summary>
public sealed class ProxyProtocolFuzzTests
{
    private const int Concurrency = 16;

    [Fact(Timeout = 5 * Guard.TestTimeout)]
    public async Task MutatedHeaders_AgainstTheListener_EachRefusedAndCountedOrRelayedExactly()
    {
        var mutations = int.TryParse(Environment.GetEnvironmentVariable("FSM_PROXY_PROTOCOL_FUZZ"), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 1_200;
        var random = new Random(20261130);
        var cases = Enumerable.Range(0, mutations)
            .Select(i => ProxyProtocolMutations.Mutate(random, ProxyProtocolCodecTests.RandomValidHeader(random), i % ProxyProtocolMutations.Kinds.Length))
            .ToList();

        // The oracle is the parser on the whole input: complete means relayed with the rest as payload, else refused.
        var expectedPayloads = new List<string>();
        var expectedRefused = 0;
        foreach (var bytes in cases)
        {
            var verdict = ProxyProtocolParser.Parse(bytes);
            if (verdict.Status == ProxyProtocolParseStatus.Complete)
            {
                expectedPayloads.Add(Convert.ToHexString(bytes, verdict.Length, bytes.Length - verdict.Length));
            }
            else
            {
                expectedRefused++;
            }
        }

        Assert.True(expectedRefused >= 1_000 * mutations / 1_200, $"only {expectedRefused} of {mutations} mutations are invalid");

        var logger = new RecordingLogger();
        await using var backend = ProxyProtocolBackend.Recording();
        var port = FreePort.Get();
        using var closed = new ClosedCounter(port);
        var listener = Routes.Listener(port, Routes.Backend("svc", 1, backend.Endpoint)) with
        {
            Client = new ClientPolicy { ProxyProtocol = new ClientProxyProtocol(false) },
        };
        await using var proxy = GatewayProxy.CreateDefault(new ProxyOptions(), null, logger);
        await proxy.ApplyAsync(Routes.Table(listener), CancellationToken.None);

        var refusedSeen = 0;
        await Parallel.ForEachAsync(cases, new ParallelOptions { MaxDegreeOfParallelism = Concurrency }, async (bytes, _) =>
        {
            using var client = await TestClient.ConnectAsync(port, CancellationToken.None);
            using var deadline = Guard.Deadline(30);
            try
            {
                await client.SendAllAsync(bytes, deadline.Token);
                client.Shutdown(SocketShutdown.Send);
            }
            catch (SocketException)
            {
                // Refused before every byte was sent: the gateway closed first.
            }

            if ((await client.ReadToEndAsync(30)).ClosedWithoutData)
            {
                Interlocked.Increment(ref refusedSeen);
            }
        });

        Assert.True(await Guard.Eventually(() => Total(closed) == mutations, 30), $"closed: {Format(closed.Snapshot())}");
        var byReason = closed.Snapshot();
        Assert.Equal(expectedRefused, byReason.GetValueOrDefault("refused_proxy_protocol"));
        Assert.Equal(mutations - expectedRefused, byReason.GetValueOrDefault("client_closed"));
        Assert.True(await Guard.Eventually(() => backend.Connections.Count == expectedPayloads.Count));
        Assert.Equal(expectedPayloads.Order(StringComparer.Ordinal), backend.Connections.Select(static c => Convert.ToHexString(c.Payload)).Order(StringComparer.Ordinal));
        Assert.True(refusedSeen >= expectedRefused, $"{refusedSeen} clients saw a close without data, {expectedRefused} expected");
        Assert.DoesNotContain(logger.Entries, static e => e.Exception is not null || e.Level >= LogLevel.Warning);

        // Still serving.
        using var after = await TestClient.ConnectAsync(port, CancellationToken.None);
        using var afterDeadline = Guard.Deadline(15);
        await after.SendAllAsync(ProxyProtocolWriter.ToArray(ProxyProtocolVersion.V1, null, null), afterDeadline.Token);
        await after.AssertEchoesAsync("still serving");
    }

    [Fact(Timeout = 2 * Guard.TestTimeout)]
    public async Task ValidHeaderAndPayloadInOneSegment_BackendReceivesExactlyThePayload()
    {
        var random = new Random(42);
        await using var backend = ProxyProtocolBackend.Recording();
        var port = FreePort.Get();
        var listener = Routes.Listener(port, Routes.Backend("svc", 1, backend.Endpoint)) with
        {
            Client = new ClientPolicy { ProxyProtocol = new ClientProxyProtocol(false) },
        };
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(listener));

        var payloads = new ConcurrentBag<string>();
        await Parallel.ForEachAsync(Enumerable.Range(0, 300).Select(_ => (Header: ProxyProtocolCodecTests.RandomValidHeader(random), Payload: RandomPayload(random))).ToList(), new ParallelOptions { MaxDegreeOfParallelism = Concurrency }, async (item, _) =>
        {
            payloads.Add(Convert.ToHexString(item.Payload));
            using var client = await TestClient.ConnectAsync(port, CancellationToken.None);
            using var deadline = Guard.Deadline(30);
            await client.SendAllAsync(item.Header.Concat(item.Payload).ToArray(), deadline.Token); // one send: one segment on loopback
            client.Shutdown(SocketShutdown.Send);
            Assert.Equal(item.Payload, (await client.ReadToEndAsync(30)).Data);
        });

        Assert.True(await Guard.Eventually(() => backend.Connections.Count == payloads.Count));
        Assert.Equal(payloads.Order(StringComparer.Ordinal), backend.Connections.Select(static c => Convert.ToHexString(c.Payload)).Order(StringComparer.Ordinal));
    }

    private static byte[] RandomPayload(Random random)
    {
        // Payloads that begin like a header too: the second "header" must reach the backend as payload.
        var payload = new byte[random.Next(1, 2_000)];
        random.NextBytes(payload);
        if (payload.Length >= 32 && random.Next(4) == 0)
        {
            "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"u8.CopyTo(payload);
        }

        return payload;
    }

    private static int Total(ClosedCounter closed) => closed.Snapshot().Values.Sum();

    private static string Format(IReadOnlyDictionary<string, int> counts) => string.Join(", ", counts.Select(static p => $"{p.Key}={p.Value}"));

    private sealed class RecordingLogger : ILogger<GatewayProxy>
    {
        private readonly ConcurrentQueue<(LogLevel Level, string Message, Exception? Exception)> _entries = new();

        public IReadOnlyList<(LogLevel Level, string Message, Exception? Exception)> Entries => [.. _entries];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _entries.Enqueue((logLevel, formatter(state, exception), exception));
    }
}
