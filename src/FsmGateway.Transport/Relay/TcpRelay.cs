using System.Buffers;
using FsmGateway.Transport.Connections;

namespace FsmGateway.Transport.Relay;

/// <summary>
/// Copies bytes both ways between a client and its upstream until both directions have ended. Each direction waits
/// with a zero-byte receive, so an idle connection holds no buffer; a buffer is rented from the shared pool only while
/// bytes flow. End of stream on one side is passed on as a half-close (FIN) to the other, and the other direction runs
/// on until it ends too. A reset or error on either side aborts both.
/// </summary>
internal static class TcpRelay
{
    public static async Task RunAsync(IDuplexConnection client, IDuplexConnection upstream, RelayCounters counters, int bufferSize)
    {
        var upload = PumpAsync(client, upstream, counters, upload: true, bufferSize);
        var download = PumpAsync(upstream, client, counters, upload: false, bufferSize);

        // Whichever direction fails first aborts both connections, which ends the other pump promptly. A failure
        // after the other direction ended cleanly (a reset after a half-close) aborts both too: a graceful close would
        // make a cut-off stream look complete.
        var first = await Task.WhenAny(upload, download).ConfigureAwait(false);
        var firstOk = await first.ConfigureAwait(false);
        if (!firstOk)
        {
            client.Abort();
            upstream.Abort();
        }

        var second = first == upload ? download : upload;
        if (!await second.ConfigureAwait(false) && firstOk)
        {
            if (second == upload)
            {
                // The client already has the whole reply and its FIN; a reset now would discard reply bytes still in
                // its socket's send buffer. End the upstream only; the client is closed gracefully.
                upstream.Abort();
            }
            else
            {
                client.Abort();
                upstream.Abort();
            }
        }
    }

    /// <summary>Copies until end of stream (returns true) or an error (returns false). Never throws.</summary>
    private static async Task<bool> PumpAsync(IDuplexConnection from, IDuplexConnection to, RelayCounters counters, bool upload, int bufferSize)
    {
        try
        {
            while (true)
            {
                // Wait for data without a buffer.
                await from.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None).ConfigureAwait(false);

                var buffer = ArrayPool<byte>.Shared.Rent(bufferSize);
                try
                {
                    int received;
                    do
                    {
                        received = await from.ReceiveAsync(buffer, CancellationToken.None).ConfigureAwait(false);
                        if (received == 0)
                        {
                            to.CompleteSend();
                            return true;
                        }

                        counters.Transferred(upload, received);
                        await to.SendAsync(buffer.AsMemory(0, received), CancellationToken.None).ConfigureAwait(false);
                    }
                    while (received == buffer.Length); // a full buffer means more is likely waiting: keep the buffer while busy
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or ObjectDisposedException or IOException or OperationCanceledException)
        {
            return false;
        }
    }
}

/// <summary>Where the relay reports bytes and activity: the proxy's per-connection state.</summary>
internal abstract class RelayCounters
{
    public abstract void Transferred(bool upload, int bytes);
}
