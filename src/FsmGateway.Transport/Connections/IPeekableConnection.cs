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
