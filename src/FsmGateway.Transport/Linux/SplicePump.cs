using System.Buffers;
using FsmGateway.Transport.Relay;
using PumpEnd = FsmGateway.Transport.Relay.TcpRelay.PumpEnd;

namespace FsmGateway.Transport.Linux;

/// <summary>
/// One direction of the relay between two <see cref="LinuxConnection"/>s, zero-copy while bulk data flows (HAProxy's
/// <c>splice-auto</c>): it copies through a pooled buffer as <see cref="TcpRelay"/> does until a read fills the buffer,
/// then moves bytes socket → pipe → socket with <c>splice(2)</c> until a splice brings less than a buffer's worth, and
/// copies again. Waits for data with a zero-byte receive and for room with an ordinary send, so readiness always comes
/// from .NET's epoll and no thread blocks. Ends, counts, half-closes and fails exactly as the copy pump does.
/// </summary>
internal static class SplicePump
{
    /// <summary>Copies and splices until end of stream or an error, and reports which to <see cref="RelayCounters.PumpEnded"/>. Never throws.</summary>
    public static async Task<PumpEnd> RunAsync(LinuxConnection from, LinuxConnection to, RelayCounters counters, bool upload, int bufferSize)
    {
        var sending = false;
        var splicing = false;
        SplicePipe? pipe = null;

        // As the copy pump: the client's first bytes are usually there already, and are taken with one receive.
        var tryFirst = upload;
        var end = PumpEnd.ReceiveFailed;
        Exception? unforeseen = null;
        try
        {
            // A splice must find both sockets non-blocking, whichever direction runs first.
            from.EnsureNonBlocking();
            to.EnsureNonBlocking();
            while (true)
            {
                if (!tryFirst)
                {
                    // Wait for data without a buffer or a pipe.
                    await from.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None).ConfigureAwait(false);
                }

                if (!splicing)
                {
                    var rented = ArrayPool<byte>.Shared.Rent(bufferSize);
                    int received;
                    try
                    {
                        var buffer = rented.AsMemory(0, bufferSize);
                        if (tryFirst)
                        {
                            tryFirst = false;
                            received = from.TryReceive(buffer.Span);
                            if (received < 0)
                            {
                                continue; // nothing yet: the buffer goes back, and the wait is without it
                            }
                        }
                        else
                        {
                            received = await from.ReceiveAsync(buffer, CancellationToken.None).ConfigureAwait(false);
                        }

                        if (received == 0)
                        {
                            return end = End(to, counters, upload);
                        }

                        counters.Transferred(upload, received);
                        sending = true;
                        await to.SendAsync(buffer[..received], CancellationToken.None).ConfigureAwait(false);
                        sending = false;
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(rented);
                    }

                    if (received < bufferSize)
                    {
                        continue; // an interactive exchange: copied
                    }

                    splicing = true; // a read filled the buffer: bulk data, more is waiting
                }

                pipe = RentPipe();
                if (pipe is null)
                {
                    splicing = false; // no pipe to be had (out of file descriptors): copy
                    continue;
                }

                while (true)
                {
                    var moved = pipe.Fill(from.Handle);
                    if (moved < 0)
                    {
                        break; // nothing more for now: wait, still splicing
                    }

                    if (moved == 0)
                    {
                        return end = End(to, counters, upload);
                    }

                    counters.Transferred(upload, moved);
                    from.Transport.Spliced(moved);
                    sending = true;
                    await pipe.DrainAsync(to).ConfigureAwait(false);
                    sending = false;
                    if (moved < bufferSize)
                    {
                        splicing = false; // the bulk is over: small exchanges are copied
                        break;
                    }
                }

                SplicePipe.Pool.Return(pipe);
                pipe = null;
            }
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or ObjectDisposedException or IOException or OperationCanceledException)
        {
            counters.RecordEnd(upload);
            return end = sending ? PumpEnd.SendFailed : PumpEnd.ReceiveFailed;
        }
        catch (Exception e)
        {
            unforeseen = e; // a bug: the relay fails with it
            return end;
        }
        finally
        {
            if (pipe is not null)
            {
                SplicePipe.Pool.Return(pipe); // closed unless empty
            }

            // Last, once the pipe is back: this may complete the relay, and the connection is released then.
            counters.PumpEnded(upload, end, unforeseen);
        }
    }

    private static PumpEnd End(LinuxConnection to, RelayCounters counters, bool upload)
    {
        // Recorded before the FIN is passed on, which may end the other direction. When the other direction has ended
        // already, both sockets are closed next and the close sends the FIN: no half-close first (as TcpRelay).
        if (counters.RecordEnd(upload))
        {
            to.CompleteSend();
        }

        return PumpEnd.EndOfStream;
    }

    private static SplicePipe? RentPipe()
    {
        try
        {
            return SplicePipe.Pool.Get();
        }
        catch (IOException)
        {
            return null;
        }
    }
}
