using System.Net;
using BenchmarkDotNet.Attributes;
using FsmGateway.Routing;
using FsmGateway.Transport.ProxyProtocol;

namespace FsmGateway.Benchmarks;

/// <summary>
/// The PROXY protocol's per-connection work: writing a v1 or v2 header (what a backend with <c>proxyProtocol</c>
/// costs), parsing a whole one, and reading one off a connection the way the listener does (receive no more than the
/// header can still take: a v1 header takes several receives) over an in-memory connection.
/// </summary>
[MemoryDiagnoser]
public class ProxyProtocolBenchmarks
{
    private static readonly IPEndPoint Client = new(IPAddress.Parse("203.0.113.77"), 54321);
    private static readonly IPEndPoint Gateway = new(IPAddress.Parse("10.0.0.1"), 8080);
    private readonly byte[] _buffer = new byte[ProxyProtocolWriter.MaxLength];
    private byte[] _header = [];

    [Params(ProxyProtocolVersion.V1, ProxyProtocolVersion.V2)]
    public ProxyProtocolVersion Version { get; set; }

    [GlobalSetup]
    public void Setup() => _header = ProxyProtocolWriter.ToArray(Version, Client, Gateway);

    [Benchmark]
    public int Write() => ProxyProtocolWriter.Write(Version, Client, Gateway, _buffer);

    [Benchmark]
    public int Parse() => ProxyProtocolParser.Parse(_header).Length;

    /// <summary>The header followed by one payload byte, read off an in-memory connection as the listener reads it.</summary>
    [Benchmark]
    public async Task<int> ReadFromConnection()
    {
        var (listenerSide, clientSide) = InMemoryDuplex.CreatePair();
        await clientSide.SendAsync(_header, CancellationToken.None);
        await clientSide.SendAsync("x"u8.ToArray(), CancellationToken.None);
        var result = await ProxyProtocolReader.ReadAsync(listenerSide, optional: false, CancellationToken.None);
        return result.Header!.Source!.Port;
    }

    /// <summary>The harness alone: the same pipes and bytes, read in one receive without a parser (subtract it from <see cref="ReadFromConnection"/>).</summary>
    [Benchmark]
    public async Task<int> ReadFromConnectionHarnessOnly()
    {
        var (listenerSide, clientSide) = InMemoryDuplex.CreatePair();
        await clientSide.SendAsync(_header, CancellationToken.None);
        await clientSide.SendAsync("x"u8.ToArray(), CancellationToken.None);
        return await listenerSide.ReceiveAsync(_buffer.AsMemory(0, _header.Length), CancellationToken.None);
    }
}
