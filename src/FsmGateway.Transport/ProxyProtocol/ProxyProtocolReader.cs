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
/// Reads a PROXY protocol header off a client connection without receiving a byte of the payload behind it: each
/// receive asks for at most the bytes the header can still take (<see cref="ProxyProtocolParser"/>), so the payload
/// stays in the socket for the relay. A v1 header takes a few receives, a v2 header two or three.
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
            while (true)
            {
                var count = await connection.ReceiveAsync(buffer.AsMemory(received, wanted), cancellationToken).ConfigureAwait(false);
                if (count == 0)
                {
                    return received == 0 && optional
                        ? new ProxyProtocolReadResult(null, ReadOnlyMemory<byte>.Empty, null)
                        : new ProxyProtocolReadResult(null, ReadOnlyMemory<byte>.Empty, received == 0 ? "closed before sending a PROXY protocol header" : $"closed after {received} bytes of a PROXY protocol header");
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
}
