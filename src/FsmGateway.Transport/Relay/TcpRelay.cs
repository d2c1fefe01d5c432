using System.Buffers;
using FsmGateway.Transport.Connections;
using FsmGateway.Transport.Proxy;

namespace FsmGateway.Transport.Relay;

/// <summary>
/// Copies bytes both ways between a client and its upstream until both directions have ended. Each direction waits
/// with a zero-byte receive, so an idle connection holds no buffer; a buffer is rented from the shared pool only while
/// bytes flow. End of stream on one side is passed on as a half-close (FIN) to the other, and the other direction runs
/// on until it ends too. A reset or error on either side aborts both.
/// </summary>
internal static class TcpRelay
{
    /// <summary>Relays until both directions have ended.</summary>
    /// <returns>
    /// How the relay ended: a failure on either side (<see cref="TerminationReason.ClientReset"/>,
    /// <see cref="TerminationReason.BackendReset"/>) wins over a clean end; with none, the side whose end of stream came
    /// first (<see cref="TerminationReason.ClientClosed"/>, <see cref="TerminationReason.BackendClosed"/>).
    /// </returns>
    public static async Task<TerminationReason> RunAsync(IDuplexConnection client, IDuplexConnection upstream, RelayCounters counters, int bufferSize)
    {
        var upload = PumpAsync(client, upstream, counters, upload: true, bufferSize);
        var download = PumpAsync(upstream, client, counters, upload: false, bufferSize);

        // Whichever direction fails first aborts both connections, which ends the other pump promptly. A failure
        // after the other direction ended cleanly (a reset after a half-close) aborts both too: a graceful close would
        // make a cut-off stream look complete.
        var first = await Task.WhenAny(upload, download).ConfigureAwait(false);
        var firstEnd = await first.ConfigureAwait(false);
        var second = first == upload ? download : upload;
        if (firstEnd != PumpEnd.EndOfStream)
        {
            client.Abort();
            upstream.Abort();
        }

        var secondEnd = await second.ConfigureAwait(false); // after an abort, it fails too: not a second reason
        if (firstEnd == PumpEnd.EndOfStream && secondEnd != PumpEnd.EndOfStream)
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

        // Which direction ended first is what the pumps recorded as they saw it, not the order of the tasks: both may
        // have completed before WhenAny looked, and it then picks the first argument.
        var (uploadEnd, downloadEnd) = first == upload ? (firstEnd, secondEnd) : (secondEnd, firstEnd);
        var uploadFirst = counters.UploadEndedFirst;
        return (uploadEnd, downloadEnd) switch
        {
            (PumpEnd.EndOfStream, PumpEnd.EndOfStream) => Reason(PumpEnd.EndOfStream, upload: uploadFirst),
            (not PumpEnd.EndOfStream, not PumpEnd.EndOfStream) => uploadFirst ? Reason(uploadEnd, upload: true) : Reason(downloadEnd, upload: false),
            (not PumpEnd.EndOfStream, _) => Reason(uploadEnd, upload: true),
            _ => Reason(downloadEnd, upload: false),
        };
    }

    /// <summary>Which side a pump's end is about: the upload pump receives from the client and sends to the backend.</summary>
    private static TerminationReason Reason(PumpEnd end, bool upload) => end switch
    {
        PumpEnd.EndOfStream => upload ? TerminationReason.ClientClosed : TerminationReason.BackendClosed,
        PumpEnd.ReceiveFailed => upload ? TerminationReason.ClientReset : TerminationReason.BackendReset,
        _ => upload ? TerminationReason.BackendReset : TerminationReason.ClientReset,
    };

    /// <summary>Copies until end of stream or an error, and says which. Never throws.</summary>
    private static async Task<PumpEnd> PumpAsync(IDuplexConnection from, IDuplexConnection to, RelayCounters counters, bool upload, int bufferSize)
    {
        var sending = false;
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
                            counters.RecordEnd(upload); // before the FIN is passed on, which may end the other direction
                            sending = true;
                            to.CompleteSend();
                            return PumpEnd.EndOfStream;
                        }

                        counters.Transferred(upload, received);
                        sending = true;
                        await to.SendAsync(buffer.AsMemory(0, received), CancellationToken.None).ConfigureAwait(false);
                        sending = false;
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
            counters.RecordEnd(upload);
            return sending ? PumpEnd.SendFailed : PumpEnd.ReceiveFailed;
        }
    }

    private enum PumpEnd
    {
        EndOfStream,
        ReceiveFailed,
        SendFailed,
    }
}

/// <summary>Where the relay reports bytes and activity, and which direction ended first: the proxy's per-connection state.</summary>
internal abstract class RelayCounters
{
    private int _firstEnded;

    /// <summary>Whether the client-to-backend direction ended (end of stream or failure) before the other.</summary>
    public bool UploadEndedFirst => Volatile.Read(ref _firstEnded) == 1;

    public abstract void Transferred(bool upload, int bytes);

    /// <summary>Records that a direction has ended; the first call wins, and calls <see cref="Ended"/>.</summary>
    public void RecordEnd(bool upload)
    {
        if (Interlocked.CompareExchange(ref _firstEnded, upload ? 1 : 2, 0) == 0)
        {
            Ended();
        }
    }

    /// <summary>The first direction has ended: the connection is half-closed (or about to be aborted) from now.</summary>
    protected virtual void Ended()
    {
    }
}
