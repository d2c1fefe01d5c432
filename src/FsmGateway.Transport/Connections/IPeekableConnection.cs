namespace FsmGateway.Transport.Connections;

/// <summary>
/// A connection that can look at received bytes without consuming them (a socket's <c>MSG_PEEK</c>): the PROXY
/// protocol reader then sees a whole header in one call and consumes exactly its length. Connections without it are
/// read a few bytes at a time instead (never past the header either).
/// </summary>
internal interface IPeekableConnection
{
    /// <summary>Copies the bytes received so far (at least one; 0 at end of stream) into <paramref name="buffer"/>, leaving them to be received.</summary>
    /// <param name="buffer">Where to copy them.</param>
    /// <param name="cancellationToken">Cancels the wait for the first byte.</param>
    /// <returns>The number of bytes copied.</returns>
    ValueTask<int> PeekAsync(Memory<byte> buffer, CancellationToken cancellationToken);
}

/// <summary>
/// A connection that can receive without waiting: the relay's first read of a direction tries it with a buffer before
/// it waits without one, so bytes already there cost one receive instead of a zero-byte wait and a receive.
/// </summary>
internal interface INonBlockingReceive
{
    /// <summary>Receives what is there now into <paramref name="buffer"/>, without waiting.</summary>
    /// <param name="buffer">Where to put the bytes.</param>
    /// <returns>The number of bytes received, 0 at end of stream, or -1 when nothing is there yet.</returns>
    /// <exception cref="System.Net.Sockets.SocketException">The connection failed.</exception>
    int TryReceive(Span<byte> buffer);
}
