using System.Buffers;
using System.Threading.Tasks.Sources;
using FsmGateway.Transport.Connections;
using FsmGateway.Transport.Linux;
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
    /// first (<see cref="TerminationReason.ClientClosed"/>, <see cref="TerminationReason.BackendClosed"/>). Completed
    /// by the direction that ends last, through <paramref name="counters"/> (no task of its own): await it once.
    /// </returns>
    /// <param name="client">The client connection.</param>
    /// <param name="upstream">The upstream connection.</param>
    /// <param name="counters">Where bytes and ends are reported; one relay at a time.</param>
    /// <param name="bufferSize">The most bytes held per direction.</param>
    /// <param name="uploadLimit">Caps the rate from the client to the backend, or <see langword="null"/>.</param>
    /// <param name="downloadLimit">Caps the rate from the backend to the client, or <see langword="null"/>.</param>
    public static ValueTask<TerminationReason> RunAsync(IDuplexConnection client, IDuplexConnection upstream, RelayCounters counters, int bufferSize, TokenBucket? uploadLimit = null, TokenBucket? downloadLimit = null)
    {
        var relay = counters.StartRelay(client, upstream);

        // Each direction reports its own end (RelayCounters.PumpEnded), which decides the aborts; the last one completes
        // the relay. No task waits on the two: an idle connection holds its two pumps and nothing else.
        _ = Pump(client, upstream, counters, upload: true, bufferSize, uploadLimit);
        _ = Pump(upstream, client, counters, upload: false, bufferSize, downloadLimit);
        return relay;
    }

    /// <summary>
    /// What to abort once a direction has ended with <paramref name="end"/>, given how the other one ended
    /// (<see langword="null"/>: it has not yet). Whichever direction fails first aborts both connections, which ends the
    /// other promptly. A failure after the other direction ended cleanly (a reset after a half-close) aborts both too,
    /// as a graceful close would make a cut-off stream look complete; except an upload failure then: the client already
    /// has the whole reply and its FIN, and a reset now would discard reply bytes still in its socket's send buffer, so
    /// only the upstream is ended and the client is closed gracefully.
    /// </summary>
    internal static (bool Client, bool Upstream) AbortsAfter(PumpEnd end, bool upload, PumpEnd? other) => (end, other) switch
    {
        (PumpEnd.EndOfStream, _) => (false, false),
        (_, null) => (true, true),
        (_, PumpEnd.EndOfStream) => (!upload, true),
        _ => (false, false), // the other failed first and aborted both already
    };

    /// <summary>The termination reason once both directions have ended: see <see cref="RunAsync"/>.</summary>
    internal static TerminationReason ReasonFor(PumpEnd uploadEnd, PumpEnd downloadEnd, bool uploadFirst) => (uploadEnd, downloadEnd) switch
    {
        (PumpEnd.EndOfStream, PumpEnd.EndOfStream) => Reason(PumpEnd.EndOfStream, upload: uploadFirst),
        (not PumpEnd.EndOfStream, not PumpEnd.EndOfStream) => uploadFirst ? Reason(uploadEnd, upload: true) : Reason(downloadEnd, upload: false),
        (not PumpEnd.EndOfStream, _) => Reason(uploadEnd, upload: true),
        _ => Reason(downloadEnd, upload: false),
    };

    /// <summary>Which side a pump's end is about: the upload pump receives from the client and sends to the backend.</summary>
    private static TerminationReason Reason(PumpEnd end, bool upload) => end switch
    {
        PumpEnd.EndOfStream => upload ? TerminationReason.ClientClosed : TerminationReason.BackendClosed,
        PumpEnd.ReceiveFailed => upload ? TerminationReason.ClientReset : TerminationReason.BackendReset,
        _ => upload ? TerminationReason.BackendReset : TerminationReason.ClientReset,
    };

    /// <summary>
    /// The splice pump between two connections of the Linux transport (zero-copy for bulk data), the copy pump
    /// otherwise; a rate limit meters each read, so a limited direction copies.
    /// </summary>
    private static Task<PumpEnd> Pump(IDuplexConnection from, IDuplexConnection to, RelayCounters counters, bool upload, int bufferSize, TokenBucket? limit) =>
        limit is null && from is LinuxConnection source && to is LinuxConnection target
            ? SplicePump.RunAsync(source, target, counters, upload, bufferSize)
            : PumpAsync(from, to, counters, upload, bufferSize, limit);

    /// <summary>
    /// Copies until end of stream or an error, and reports which to <see cref="RelayCounters.PumpEnded"/>. Never throws. Holds at most <paramref name="bufferSize"/>
    /// bytes; with a <paramref name="limit"/>, receives at most its burst at once and pauses after a send until the
    /// bucket has refilled, so the socket's receive buffer fills and TCP flow control slows the sender.
    /// </summary>
    private static async Task<PumpEnd> PumpAsync(IDuplexConnection from, IDuplexConnection to, RelayCounters counters, bool upload, int bufferSize, TokenBucket? limit)
    {
        var chunk = limit is null ? bufferSize : (int)Math.Min(bufferSize, limit.Burst);
        var sending = false;

        // The client's first bytes are usually there when the relay starts (they came while the upstream connected):
        // take them with one receive instead of a zero-byte wait and a receive. The upstream usually has not answered
        // yet, so its direction waits first.
        var tryFirst = upload ? from as INonBlockingReceive : null;
        var end = PumpEnd.ReceiveFailed;
        Exception? unforeseen = null;
        try
        {
            while (true)
            {
                if (tryFirst is null)
                {
                    // Wait for data without a buffer.
                    await from.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None).ConfigureAwait(false);
                }

                var rented = ArrayPool<byte>.Shared.Rent(chunk);
                var buffer = rented.AsMemory(0, chunk); // the pool may hand out more than asked: the limit is what is used
                try
                {
                    int received;
                    do
                    {
                        if (tryFirst is not null)
                        {
                            received = tryFirst.TryReceive(buffer.Span);
                            tryFirst = null;
                            if (received < 0)
                            {
                                break; // nothing yet: the buffer goes back, and the wait is without it
                            }
                        }
                        else
                        {
                            received = await from.ReceiveAsync(buffer, CancellationToken.None).ConfigureAwait(false);
                        }

                        if (received == 0)
                        {
                            // Recorded before the FIN is passed on, which may end the other direction. When the other
                            // direction has ended already, both sockets are closed next, and the close sends the FIN:
                            // no half-close first (one system call fewer per connection, as HAProxy does).
                            sending = true;
                            if (counters.RecordEnd(upload))
                            {
                                to.CompleteSend();
                            }

                            return end = PumpEnd.EndOfStream;
                        }

                        counters.Transferred(upload, received);
                        sending = true;
                        await to.SendAsync(buffer[..received], CancellationToken.None).ConfigureAwait(false);
                        sending = false;
                        if (limit?.Take(received) is { Ticks: > 0 } wait)
                        {
                            await Task.Delay(wait, limit.Time).ConfigureAwait(false);
                        }
                    }
                    while (received == buffer.Length); // a full buffer means more is likely waiting: keep the buffer while busy
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(rented);
                }
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
            // Last, once the buffer is back: this may complete the relay, and the connection is released then.
            counters.PumpEnded(upload, end, unforeseen);
        }
    }

    /// <summary>How a pump ended.</summary>
    internal enum PumpEnd
    {
        EndOfStream,
        ReceiveFailed,
        SendFailed,
    }
}

/// <summary>
/// Where the relay reports bytes and activity, which direction ended first, and each direction's end: the proxy's
/// per-connection state. It is also what <see cref="TcpRelay.RunAsync"/> returns to wait on (a reusable
/// <see cref="IValueTaskSource{TResult}"/>, completed by the direction that ends last), so a relay allocates no task of
/// its own. One relay at a time.
/// </summary>
internal abstract class RelayCounters : IValueTaskSource<TerminationReason>
{
    private const int NotEnded = -1;

    private ManualResetValueTaskSourceCore<TerminationReason> _relay;
    private IDuplexConnection? _client;
    private IDuplexConnection? _upstream;
    private Exception? _unforeseen;
    private int _firstEnded;
    private int _uploadEnd = NotEnded;
    private int _downloadEnd = NotEnded;
    private int _pumpsEnded;

    /// <summary>Whether the client-to-backend direction ended (end of stream or failure) before the other.</summary>
    public bool UploadEndedFirst => Volatile.Read(ref _firstEnded) == 1;

    public abstract void Transferred(bool upload, int bytes);

    /// <summary>Records that a direction has ended; the first call wins, and calls <see cref="Ended"/>.</summary>
    /// <returns>Whether this was the first direction to end (the other one is still running).</returns>
    public bool RecordEnd(bool upload)
    {
        if (Interlocked.CompareExchange(ref _firstEnded, upload ? 1 : 2, 0) == 0)
        {
            Ended();
            return true;
        }

        return false;
    }

    /// <summary>Takes the relay of <paramref name="client"/> and <paramref name="upstream"/>: what to wait on for its end.</summary>
    /// <exception cref="InvalidOperationException">A relay was started with these counters already.</exception>
    internal ValueTask<TerminationReason> StartRelay(IDuplexConnection client, IDuplexConnection upstream)
    {
        if (Interlocked.CompareExchange(ref _client, client, null) is not null)
        {
            throw new InvalidOperationException("these relay counters are in use by another relay");
        }

        _upstream = upstream;
        return new ValueTask<TerminationReason>(this, _relay.Version);
    }

    /// <summary>
    /// A direction has ended (<paramref name="unforeseen"/>: with an exception no pump expected, which fails the relay).
    /// Aborts what <see cref="TcpRelay.AbortsAfter"/> says; the second call completes the relay.
    /// </summary>
    internal void PumpEnded(bool upload, TcpRelay.PumpEnd end, Exception? unforeseen)
    {
        if (unforeseen is not null)
        {
            RecordEnd(upload);
            Interlocked.CompareExchange(ref _unforeseen, unforeseen, null);
        }

        Volatile.Write(ref upload ? ref _uploadEnd : ref _downloadEnd, (int)end);

        // The order of the two ends is the order of this increment (a full fence): the second reads the first's end
        // after it, and so sees it.
        var second = Interlocked.Increment(ref _pumpsEnded) == 2;
        TcpRelay.PumpEnd? other = second ? (TcpRelay.PumpEnd)Volatile.Read(ref upload ? ref _downloadEnd : ref _uploadEnd) : null;
        var (abortClient, abortUpstream) = TcpRelay.AbortsAfter(end, upload, other);
        if (abortClient)
        {
            _client!.Abort();
        }

        if (abortUpstream)
        {
            _upstream!.Abort();
        }

        if (!second)
        {
            return;
        }

        if (Volatile.Read(ref _unforeseen) is { } error)
        {
            _relay.SetException(error);
            return;
        }

        var uploadEnd = (TcpRelay.PumpEnd)Volatile.Read(ref _uploadEnd);
        var downloadEnd = (TcpRelay.PumpEnd)Volatile.Read(ref _downloadEnd);
        _relay.SetResult(TcpRelay.ReasonFor(uploadEnd, downloadEnd, UploadEndedFirst));
    }

    TerminationReason IValueTaskSource<TerminationReason>.GetResult(short token) => _relay.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<TerminationReason>.GetStatus(short token) => _relay.GetStatus(token);

    void IValueTaskSource<TerminationReason>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _relay.OnCompleted(continuation, state, token, flags);

    /// <summary>The first direction has ended: the connection is half-closed (or about to be aborted) from now.</summary>
    protected virtual void Ended()
    {
    }
}

/// <summary>
/// A per-connection, per-direction data-rate cap: a token bucket of <see cref="Routing.BandwidthLimit.Burst"/> bytes that
/// refills at <see cref="Routing.BandwidthLimit.BytesPerSecond"/>. Used by one pump only, so not thread-safe. Hand-written
/// rather than <c>System.Threading.RateLimiting</c>'s token bucket: that one replenishes on a timer per limiter, where
/// this one computes the refill from the clock when asked and costs no timer per connection.
/// </summary>
internal sealed class TokenBucket(Routing.BandwidthLimit limit, TimeProvider time)
{
    private double _tokens = limit.Burst;
    private long _refilledAt = time.GetTimestamp();

    public TimeProvider Time => time;

    /// <summary>The most bytes passed at once.</summary>
    public long Burst => limit.Burst;

    /// <summary>Takes <paramref name="bytes"/> (already passed) from the bucket.</summary>
    /// <returns>How long to wait until the bucket is no longer in debt (zero when it is not).</returns>
    public TimeSpan Take(int bytes)
    {
        var now = time.GetTimestamp();
        _tokens = Math.Min(limit.Burst, _tokens + (time.GetElapsedTime(_refilledAt, now).TotalSeconds * limit.BytesPerSecond));
        _refilledAt = now;
        _tokens -= bytes;
        return _tokens >= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(-_tokens / limit.BytesPerSecond);
    }
}
