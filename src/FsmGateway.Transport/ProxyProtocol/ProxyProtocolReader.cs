using System.Buffers;
using FsmGateway.Transport.Connections;

namespace FsmGateway.Transport.ProxyProtocol;

/// <summary>The outcome of reading a PROXY protocol header from a client connection.</summary>
/// <param name="Header">The header, or <see langword="null"/> when the connection had none (optional mode) or an invalid one.</param>
/// <param name="Prefix">
/// Bytes received that turned out not to be a header (optional mode, no header): the first bytes of the payload, to be
/// sent upstream before anything else. Empty otherwise.
/// </param>
/// <param name="Error">Why the connection is refused, or <see langword="null"/>.</param>
internal readonly record struct ProxyProtocolReadResult(ProxyProtocolHeader? Header, ReadOnlyMemory<byte> Prefix, string? Error)
{
    /// <summary>Whether the connection may go on.</summary>
    public bool Accepted => Error is null;
}

/// <summary>
/// Reads a PROXY protocol header off a client connection without receiving a byte of the payload behind it. A socket
/// (<see cref="IPeekableConnection"/>) is peeked first: a header that arrived whole is parsed there and exactly its
/// length received, two system calls. Otherwise, and for a header still arriving, each receive asks for at most the
/// bytes the header can still take (<see cref="ProxyProtocolParser"/>): a v1 header then takes a few receives, a v2
/// header two or three. Either way the payload stays in the socket for the relay.
/// </summary>
internal static class ProxyProtocolReader
{
    /// <summary>Reads the header.</summary>
    /// <param name="connection">The accepted client connection.</param>
    /// <param name="optional">Whether a connection without a header is accepted (its first bytes are then the <see cref="ProxyProtocolReadResult.Prefix"/>).</param>
    /// <param name="cancellationToken">The inspection deadline.</param>
    /// <returns>The header, or why the connection is refused.</returns>
    /// <exception cref="OperationCanceledException">The deadline passed.</exception>
    public static async ValueTask<ProxyProtocolReadResult> ReadAsync(IDuplexConnection connection, bool optional, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(ProxyProtocolHeader.MaxLength);
        try
        {
            var received = 0;
            var wanted = ProxyProtocolHeader.V1MinLength; // no header is shorter: this first receive cannot overshoot
            if (connection is IPeekableConnection peekable)
            {
                // One look at what has arrived: a whole header (the usual case, one segment) is consumed in one receive.
                var peeked = await peekable.PeekAsync(buffer.AsMemory(0, ProxyProtocolHeader.MaxLength), cancellationToken).ConfigureAwait(false);
                var result = peeked == 0 ? default : ProxyProtocolParser.Parse(buffer.AsSpan(0, peeked));
                switch (peeked == 0 ? (ProxyProtocolParseStatus?)null : result.Status)
                {
                    case null:
                        return Ended(0, optional);
                    case ProxyProtocolParseStatus.Complete:
                        await ConsumeAsync(connection, buffer, result.Length, cancellationToken).ConfigureAwait(false);
                        return new ProxyProtocolReadResult(result.Header, ReadOnlyMemory<byte>.Empty, null);
                    case ProxyProtocolParseStatus.Invalid:
                        return new ProxyProtocolReadResult(null, ReadOnlyMemory<byte>.Empty, result.Error);
                    case ProxyProtocolParseStatus.NoHeader:
                        // Nothing consumed: with an optional header the relay receives these bytes itself.
                        return optional
                            ? new ProxyProtocolReadResult(null, ReadOnlyMemory<byte>.Empty, null)
                            : new ProxyProtocolReadResult(null, ReadOnlyMemory<byte>.Empty, "no PROXY protocol header");
                    default:
                        // Part of a header: every byte seen belongs to it. Consume them, then read the rest exactly.
                        await ConsumeAsync(connection, buffer, peeked, cancellationToken).ConfigureAwait(false);
                        received = peeked;
                        wanted = result.Needed;
                        break;
                }
            }

            while (true)
            {
                var count = await connection.ReceiveAsync(buffer.AsMemory(received, wanted), cancellationToken).ConfigureAwait(false);
                if (count == 0)
                {
                    return Ended(received, optional);
                }

                received += count;
                var result = ProxyProtocolParser.Parse(buffer.AsSpan(0, received));
                switch (result.Status)
                {
                    case ProxyProtocolParseStatus.Complete:
                        return new ProxyProtocolReadResult(result.Header, ReadOnlyMemory<byte>.Empty, null);
                    case ProxyProtocolParseStatus.Invalid:
                        return new ProxyProtocolReadResult(null, ReadOnlyMemory<byte>.Empty, result.Error);
                    case ProxyProtocolParseStatus.NoHeader:
                        return optional
                            ? new ProxyProtocolReadResult(null, buffer.AsSpan(0, received).ToArray(), null)
                            : new ProxyProtocolReadResult(null, ReadOnlyMemory<byte>.Empty, "no PROXY protocol header");
                    default:
                        wanted = Math.Min(result.Needed, buffer.Length - received);
                        break;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static ProxyProtocolReadResult Ended(int received, bool optional) =>
        received == 0 && optional
            ? new ProxyProtocolReadResult(null, ReadOnlyMemory<byte>.Empty, null)
            : new ProxyProtocolReadResult(null, ReadOnlyMemory<byte>.Empty, received == 0 ? "closed before sending a PROXY protocol header" : $"closed after {received} bytes of a PROXY protocol header");

    /// <summary>Receives exactly <paramref name="count"/> bytes that a peek has shown are there.</summary>
    private static async ValueTask ConsumeAsync(IDuplexConnection connection, byte[] buffer, int count, CancellationToken cancellationToken)
    {
        var consumed = 0;
        while (consumed < count)
        {
            var received = await connection.ReceiveAsync(buffer.AsMemory(consumed, count - consumed), cancellationToken).ConfigureAwait(false);
            if (received == 0)
            {
                throw new IOException("the connection ended while its PROXY protocol header was consumed");
            }

            consumed += received;
        }
    }
}
