using System.Net;

namespace FsmGateway.Transport.Connections;

/// <summary>
/// One byte stream in each direction: an accepted client connection or an upstream one. Shaped after Kestrel's
/// connection abstractions, but with explicit half-close, which an L4 proxy needs.
/// </summary>
public interface IDuplexConnection : IAsyncDisposable
{
    /// <summary>The local end, when known.</summary>
    EndPoint? LocalEndPoint { get; }

    /// <summary>The remote end, when known.</summary>
    EndPoint? RemoteEndPoint { get; }

    /// <summary>
    /// Receives into <paramref name="buffer"/>. Returns 0 at end of stream (the peer half-closed). With an empty
    /// buffer it waits until data is available or the stream has ended, without holding a buffer, then returns 0.
    /// </summary>
    /// <param name="buffer">Where to put the bytes.</param>
    /// <param name="cancellationToken">Cancels the receive.</param>
    /// <returns>The number of bytes received.</returns>
    ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken);

    /// <summary>Sends all of <paramref name="data"/>.</summary>
    /// <param name="data">The bytes.</param>
    /// <param name="cancellationToken">Cancels the send.</param>
    /// <returns>A task that completes when the bytes are handed to the transport.</returns>
    ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    /// <summary>Half-closes: no more bytes will be sent (TCP FIN); receiving goes on.</summary>
    void CompleteSend();

    /// <summary>Ends the connection at once, discarding unsent data (TCP RST where the transport has one).</summary>
    void Abort();
}
