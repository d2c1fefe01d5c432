using System.Buffers;
using System.Net;
using System.Net.Sockets;
using FsmGateway.Routing;
using FsmGateway.Transport.Connections;

namespace FsmGateway.Transport.ProxyProtocol;

/// <summary>
/// The PROXY protocol on the connection path: reading a client's header (ClientTrafficPolicy <c>proxyProtocol</c>), and writing one first on an upstream connection (BackendTrafficPolicy
/// <c>proxyProtocol.version</c>).
/// </summary>
internal static class ProxyProtocolStage
{
    /// <summary>Reads the client's header; every failure (malformed, missing, reset, aborted) is a result with a reason.</summary>
    /// <param name="client">The accepted client connection.</param>
    /// <param name="optional">Whether a connection without a header is accepted.</param>
    /// <returns>The header, the prefix of a connection without one (optional mode), or why the connection is refused.</returns>
    /// <remarks>No timeout here: the connection registry's heartbeat aborts a connection whose header is late, which fails the receive.</remarks>
    public static async ValueTask<ProxyProtocolReadResult> AcceptAsync(IDuplexConnection client, bool optional)
    {
        try
        {
            return await ProxyProtocolReader.ReadAsync(client, optional, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            // A reset while the header arrives, or the connection aborted (inspection timeout, drain, stop).
            return Refused($"receiving the PROXY protocol header failed: {e.Message}");
        }
    }

    /// <summary>Sends the header, then <paramref name="prefix"/> (bytes already received from the client), in one send.</summary>
    /// <param name="upstream">The new upstream connection.</param>
    /// <param name="version">The header's version, or <see langword="null"/> for none.</param>
    /// <param name="source">The client's address and port (the accepted header's source when there was one).</param>
    /// <param name="destination">The address and port the client connected to.</param>
    /// <param name="prefix">Client bytes to send first after the header; empty for none.</param>
    /// <param name="cancellationToken">Cancels the send.</param>
    /// <returns>A task that completes when the bytes are handed to the transport.</returns>
    public static async ValueTask SendAsync(IDuplexConnection upstream, ProxyProtocolVersion? version, EndPoint? source, EndPoint? destination, ReadOnlyMemory<byte> prefix, CancellationToken cancellationToken)
    {
        if (version is null && prefix.IsEmpty)
        {
            return;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(ProxyProtocolWriter.MaxLength + prefix.Length);
        try
        {
            var length = version is { } v ? ProxyProtocolWriter.Write(v, source, destination, buffer) : 0;
            prefix.Span.CopyTo(buffer.AsSpan(length));
            await upstream.SendAsync(buffer.AsMemory(0, length + prefix.Length), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static ProxyProtocolReadResult Refused(string error) => new(null, ReadOnlyMemory<byte>.Empty, error);
}
