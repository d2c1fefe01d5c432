using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using System.Threading.Tasks.Sources;
using FsmGateway.Resources;
using FsmGateway.Routing;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Transport.Health;

/// <summary>
/// Runs every active health probe of the proxy on one schedule: a priority queue of due times and one timer armed for
/// the earliest, not a timer or delay loop per endpoint. Each probed endpoint has one long-lived probe loop (allocated
/// once) that waits for its turn, probes, records the outcome and puts itself back in the queue; so a probe round
/// allocates little beyond the socket, and two probes of one endpoint never overlap.
/// </summary>
/// <remarks>
/// The first probe of an endpoint runs at a random point within its first interval, and every later one after the
/// interval less a random 0-10 %, counted from the previous probe's start (or its end, when it ran longer than that):
/// endpoints, and replicas of the gateway, spread out instead of probing in lock-step, and a dead endpoint is still
/// found within <c>interval × unhealthyThreshold</c> plus one timeout. Due times lie on a grid of a tenth of the
/// interval (10-100 ms), so probes due within one step start in one timer callback. Nothing here blocks: the timer
/// callback takes a short lock to dequeue, and probes are non-blocking connects (<see cref="ConnectProbeBatch"/>, on
/// Linux, for a plain TCP check) or asynchronous socket and HTTP calls.
/// </remarks>
internal sealed class ActiveHealthProber : IAsyncDisposable
{
    private static readonly LingerOption ResetOnClose = new(enable: true, seconds: 0);

    /// <summary>The finest timer resolution: probes of a check with an interval under 100 ms.</summary>
    private static readonly TimeSpan FinestGranularity = TimeSpan.FromMilliseconds(10);

    /// <summary>The coarsest timer resolution: probes of a check with an interval of 1 s or more (at most 10 timer callbacks a second).</summary>
    private static readonly TimeSpan CoarsestGranularity = TimeSpan.FromMilliseconds(100);

    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Proxy.ProxyMetrics _metrics;
    private readonly PriorityQueue<ActiveHealthState, long> _queue = new();
    private readonly Lock _lock = new();
    private readonly Lock _firing = new();
    private readonly List<ActiveHealthState> _due = [];
    private readonly ConcurrentDictionary<ActiveHealthState, Task> _loops = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly ITimer _timer;
    private readonly Lazy<HttpMessageInvoker> _http;
    private readonly ConnectProbeBatch? _batch = ConnectProbeBatch.IsSupported ? new ConnectProbeBatch() : null;
    private long _armedFor = long.MaxValue;
    private int _firingThread;
    private int _pending;
    private bool _disposed;

    public ActiveHealthProber(TimeProvider time, ILogger logger, Proxy.ProxyMetrics metrics)
    {
        _time = time;
        _logger = logger;
        _metrics = metrics;
        _timer = time.CreateTimer(static s => ((ActiveHealthProber)s!).Fire(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _http = new Lazy<HttpMessageInvoker>(static () => new HttpMessageInvoker(
            new SocketsHttpHandler
            {
                UseProxy = false,
                AllowAutoRedirect = false,
                UseCookies = false,
                AutomaticDecompression = DecompressionMethods.None,
                // Kept alive between probes, as Envoy's HTTP checker does: a probe every second must not leave a
                // TIME_WAIT socket behind each time. A dead endpoint's pooled connection fails and the next connect is refused.
                PooledConnectionIdleTimeout = TimeSpan.FromSeconds(90),
                MaxResponseHeadersLength = 64,
            },
            disposeHandler: true));
    }

    /// <summary>Endpoints (per check) with a probe loop now.</summary>
    public int Count => _loops.Count;

    /// <summary>The states with a probe loop now.</summary>
    public IEnumerable<ActiveHealthState> States => _loops.Keys;

    /// <summary>
    /// No probe is due, woken or running now: every loop waits for a time still to come (for tests on a fake clock,
    /// which advance it and then wait for this).
    /// </summary>
    public bool IsIdle
    {
        get
        {
            lock (_lock)
            {
                // A batched connect in flight waits for the next timer tick, a time still to come.
                return Volatile.Read(ref _pending) == (_batch?.Connecting ?? 0) && (!_queue.TryPeek(out _, out var due) || due > _time.GetTimestamp());
            }
        }
    }

    /// <summary>Starts probing <paramref name="state"/>: its first probe at a random point within its interval.</summary>
    public void Add(ActiveHealthState state)
    {
        lock (_lock)
        {
            if (_disposed || state.IsRetired || state.Scheduled)
            {
                return;
            }

            state.Scheduled = true;
            var probe = state.Probe = new HealthProbe(state, this);
            _loops[state] = probe.Loop;
            Enqueue(state, _time.GetTimestamp() + Ticks(state.Check.Interval * Random.Shared.NextDouble()));
        }
    }

    public async ValueTask DisposeAsync()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _queue.Clear();
        }

        await _timer.DisposeAsync().ConfigureAwait(false);
        await _stopping.CancelAsync().ConfigureAwait(false);
        lock (_firing)
        {
            _batch?.Dispose(); // batched connects in flight are closed; their loops see the stop and end
        }

        foreach (var state in _loops.Keys)
        {
            state.Retire();
        }

        await Task.WhenAll(_loops.Values).ConfigureAwait(false);
        if (_http.IsValueCreated)
        {
            _http.Value.Dispose();
        }

        _stopping.Dispose();
    }

    private long Ticks(TimeSpan span) => (long)(span.TotalSeconds * _time.TimestampFrequency);

    /// <summary>
    /// How finely the probes of <paramref name="check"/> are placed in time: a tenth of its interval, between 10 and
    /// 100 ms. Due times are rounded up to it, so probes due within one step start in one timer callback: each callback
    /// wakes a thread-pool thread, and that (not the probe) was most of the CPU a probe cost when every 10 ms had one
    /// (benchmarks/README.md, "Active health probing").
    /// </summary>
    private static TimeSpan GranularityOf(ActiveHealthCheck check) =>
        TimeSpan.FromTicks(Math.Clamp(check.Interval.Ticks / 10, FinestGranularity.Ticks, CoarsestGranularity.Ticks));

    /// <summary>
    /// Queues <paramref name="state"/> at <paramref name="due"/> rounded up to its granularity, or down when rounding up
    /// would pass <paramref name="latest"/> (and the step before is still to come); re-arms the timer when that is the
    /// earliest. Under <see cref="_lock"/>.
    /// </summary>
    private void Enqueue(ActiveHealthState state, long due, long latest = long.MaxValue)
    {
        var granularity = Ticks(GranularityOf(state.Check));
        if (granularity > 0)
        {
            var rounded = ((due + granularity - 1) / granularity) * granularity;
            due = rounded > latest && rounded - granularity >= _time.GetTimestamp() ? rounded - granularity : rounded;
        }

        state.DueAt = due;
        _queue.Enqueue(state, due);
        if (due < _armedFor)
        {
            Arm(due);
        }
    }

    private void Arm(long due)
    {
        if (due == _armedFor)
        {
            return;
        }

        _armedFor = due;
        var delay = TimeSpan.FromSeconds(Math.Max(0, due - _time.GetTimestamp()) / (double)_time.TimestampFrequency);
        _timer.Change(delay, Timeout.InfiniteTimeSpan);
    }

    /// <summary>The timer fired: see <see cref="FireLocked"/>.</summary>
    private void Fire()
    {
        lock (_firing)
        {
            _firingThread = Environment.CurrentManagedThreadId;
            try
            {
                FireLocked();
            }
            finally
            {
                _firingThread = 0;
            }
        }
    }

    /// <summary>
    /// A batched connect started <paramref name="pollEvery"/> ticks ago wants polling: the timer fires for it by then.
    /// Nothing to do when the timer's own callback started it, as it polls and re-arms before it returns.
    /// </summary>
    private void PollSoon(long pollEvery)
    {
        if (Volatile.Read(ref _firingThread) != Environment.CurrentManagedThreadId)
        {
            ArmForPoll(pollEvery);
        }
    }

    /// <summary>Arms the timer to fire within <paramref name="pollEvery"/> ticks from now, unless it fires sooner already.</summary>
    private void ArmForPoll(long pollEvery)
    {
        lock (_lock)
        {
            var at = _time.GetTimestamp() + pollEvery;
            if (!_disposed && at < _armedFor)
            {
                Arm(at);
            }
        }
    }

    /// <summary>The timer fired: every state due now is woken (its loop runs the probe inline), and batched connects polled. Under <see cref="_firing"/>.</summary>
    private void FireLocked()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            var now = _time.GetTimestamp();
            _armedFor = long.MaxValue;
            while (_queue.TryPeek(out var state, out var due) && due <= now)
            {
                _queue.Dequeue();
                if (!state.IsRetired)
                {
                    _due.Add(state);
                    state.Woken = true;
                    Interlocked.Increment(ref _pending);
                }
            }

            if (_queue.TryPeek(out _, out var next))
            {
                Arm(next);
            }
        }

        foreach (var state in _due)
        {
            state.Probe?.Wake();
        }

        _due.Clear();
        if (_batch is { } batch)
        {
            // The connects just started: near endpoints have answered already. What is still connecting is polled
            // again at the next step of its check's grid.
            batch.Poll(_time.GetTimestamp());
            if (batch.Connecting > 0)
            {
                ArmForPoll(batch.PollEvery);
            }
        }
    }

    /// <summary>A probe of <paramref name="state"/> that started at <paramref name="started"/> has ended: its next one is queued.</summary>
    private void Reschedule(ActiveHealthState state, long started)
    {
        var interval = state.Check.Interval;

        // Interval less 0-10 %, on the check's grid but never later than the interval (the detection bound holds),
        // never in lock-step; about 5 % more probes than one per interval, not more.
        var next = started + Ticks(interval * (1 - (0.1 * Random.Shared.NextDouble())));
        lock (_lock)
        {
            if (!_disposed && !state.IsRetired)
            {
                Enqueue(state, Math.Max(next, _time.GetTimestamp()), latest: started + Ticks(interval));
            }
        }
    }

    private void Recorded(ActiveHealthState state, string? error)
    {
        switch (state.Record(_time.GetTimestamp(), error))
        {
            case false:
                HealthLog.EndpointDown(_logger, state.Endpoint.Address, state.Endpoint.Key.Backend.ToString(), state.ConsecutiveFailures, Protocol(state.Check), error!);
                _metrics.HealthTransition(state.DownTags);
                break;
            case true:
                HealthLog.EndpointUp(_logger, state.Endpoint.Address, state.Endpoint.Key.Backend.ToString(), state.ConsecutiveSuccesses, Protocol(state.Check));
                _metrics.HealthTransition(state.UpTags);
                break;
        }
    }

    private static string Protocol(ActiveHealthCheck check) => check.Protocol == HealthProbeProtocol.Http ? "HTTP" : "TCP";

    /// <summary>
    /// One endpoint's probe loop and the resources it reuses: a wake-up signal (no allocation per wait), a timeout
    /// source reset after each probe.
    /// </summary>
    internal sealed class HealthProbe : IValueTaskSource
    {
        private readonly ActiveHealthState _state;
        private readonly ActiveHealthProber _prober;
        // Continuations run inline: the timer's callback starts each due probe itself (up to its first pending socket
        // operation, which never blocks) instead of handing each one to the thread pool.
        private ManualResetValueTaskSourceCore<bool> _signal = new() { RunContinuationsAsynchronously = false };
        private int _signalled;
        private readonly ConnectProbeBatch.Waiter? _batched;
        private readonly string _timedOut;
        private CancellationTokenSource _timeout;
        private CancellationTokenRegistration _onStop;

        public HealthProbe(ActiveHealthState state, ActiveHealthProber prober)
        {
            _state = state;
            _prober = prober;
            _batched = prober._batch is not null && ConnectProbeBatch.Handles(state) ? new ConnectProbeBatch.Waiter() : null;
            _timedOut = $"timed out after {Format(state.Check.Timeout)}";
            (_timeout, _onStop) = NewTimeout();
            Loop = LoopAsync();
        }

        public Task Loop { get; }

        /// <summary>Lets the loop run its next probe (or see that it is retired). At most once per wait.</summary>
        public void Wake()
        {
            if (Interlocked.Exchange(ref _signalled, 1) == 0)
            {
                _signal.SetResult(true);
            }
        }

        void IValueTaskSource.GetResult(short token)
        {
            _signal.GetResult(token);
            _signal.Reset();
            Volatile.Write(ref _signalled, 0);
        }

        ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _signal.GetStatus(token);

        void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _signal.OnCompleted(continuation, state, token, flags);

        private (CancellationTokenSource, CancellationTokenRegistration) NewTimeout()
        {
            var timeout = new CancellationTokenSource(Timeout.InfiniteTimeSpan, _prober._time);
            return (timeout, _prober._stopping.Token.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), timeout));
        }

        private async Task LoopAsync()
        {
            // The loop starts on the thread pool, never on the caller of ApplyAsync.
            await Task.Yield();
            try
            {
                while (true)
                {
                    // No context: the wake-up runs the probe on the scheduler's thread, inline, wherever the loop began.
                    await new ValueTask(this, _signal.Version).ConfigureAwait(false);
                    if (_state.IsRetired)
                    {
                        return;
                    }

                    if (!_state.Woken)
                    {
                        continue; // only the scheduler's wake-up runs a probe
                    }

                    var started = _prober._time.GetTimestamp();
                    string? error;
                    if (_batched is not null && ConnectProbeBatch.IsSupported)
                    {
                        // A plain connect: the batch does it, its deadline checked at the timer's ticks (no timer of its own).
                        var check = _state.Check;
                        var pollEvery = _prober.Ticks(GranularityOf(check));
                        var connected = _prober._batch!.Connect((IPEndPoint)_state.EndPoint, started + _prober.Ticks(check.Timeout), pollEvery, _timedOut, _batched);
                        if (!connected.IsCompleted)
                        {
                            _prober.PollSoon(pollEvery);
                        }

                        error = await connected.ConfigureAwait(false);
                    }
                    else
                    {
                        _timeout.CancelAfter(_state.Check.Timeout);
                        try
                        {
                            error = _state.Check.Protocol == HealthProbeProtocol.Http
                                ? await HttpAsync(_timeout.Token).ConfigureAwait(false)
                                : await TcpAsync(_timeout.Token).ConfigureAwait(false);
                        }
                        catch (OperationCanceledException) when (_timeout.IsCancellationRequested)
                        {
                            error = _prober._stopping.IsCancellationRequested ? null : _timedOut;
                        }
                        catch (Exception e) when (e is not OperationCanceledException)
                        {
                            // Refused, reset, unreachable, a malformed answer: the probe failed, and /status says why.
                            error = Describe(e);
                        }
                    }

                    if (_prober._stopping.IsCancellationRequested || _state.IsRetired)
                    {
                        return;
                    }

                    if (!_timeout.TryReset())
                    {
                        _onStop.Dispose();
                        _timeout.Dispose();
                        (_timeout, _onStop) = NewTimeout();
                    }

                    _prober.Recorded(_state, error);
                    _prober.Reschedule(_state, started);
                    Done();
                }
            }
            catch (Exception e)
            {
                // A bug, not an endpoint's failure: say so once; the endpoint keeps its last health.
                HealthLog.ProbeLoopFailed(_prober._logger, _state.Endpoint.Address, _state.Endpoint.Key.Backend.ToString(), ErrorText.Of(e));
            }
            finally
            {
                Done();
                _onStop.Dispose();
                _timeout.Dispose();
                _prober._loops.TryRemove(_state, out _);
            }
        }

        /// <summary>The probe the scheduler woke this loop for is over (recorded and rescheduled, or dropped).</summary>
        private void Done()
        {
            lock (_prober._lock)
            {
                if (_state.Woken)
                {
                    _state.Woken = false;
                    Interlocked.Decrement(ref _prober._pending);
                }
            }
        }

        /// <summary>A TCP connect, then the payload sent and the reply's prefix compared, if the check has them; closed with a reset.</summary>
        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
        private async ValueTask<string?> TcpAsync(CancellationToken cancellationToken)
        {
            var check = _state.Check;
            using var socket = _state.EndPoint is IPEndPoint ip
                ? new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp)
                : new Socket(SocketType.Stream, ProtocolType.Tcp);

            // Closed with RST as HAProxy closes its checks: 1,000 probes a second must not pile up TIME_WAIT sockets.
            socket.LingerState = ResetOnClose;
            await socket.ConnectAsync(_state.EndPoint, cancellationToken).ConfigureAwait(false);
            if (!check.TcpSend.IsEmpty)
            {
                var send = AsMemory(check.TcpSend);
                while (!send.IsEmpty)
                {
                    var sent = await socket.SendAsync(send, SocketFlags.None, cancellationToken).ConfigureAwait(false);
                    send = send[sent..];
                }
            }

            var expected = check.TcpReceive;
            var buffer = _state.ReceiveBuffer;
            var received = 0;
            while (received < buffer.Length)
            {
                var read = await socket.ReceiveAsync(buffer.AsMemory(received), SocketFlags.None, cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    return $"the endpoint closed the connection after {received} of the {buffer.Length} expected byte(s)";
                }

                for (var i = received; i < received + read; i++)
                {
                    if (buffer[i] != expected[i])
                    {
                        return $"the reply does not start with the expected {buffer.Length} byte(s) (differs at byte {i})";
                    }
                }

                received += read;
            }

            return null;
        }

        /// <summary>An HTTP/1.1 GET of the check's path; passes when one of its matches holds (status 200 with none).</summary>
        private async ValueTask<string?> HttpAsync(CancellationToken cancellationToken)
        {
            var check = _state.Check;
            using var request = new HttpRequestMessage(HttpMethod.Get, _state.HttpUri)
            {
                Version = HttpVersion.Version11,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            };
            request.Headers.TryAddWithoutValidation("User-Agent", "fsm-gateway-health-check");
            using var response = await _prober._http.Value.SendAsync(request, cancellationToken).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            if (check.HttpMatches.IsEmpty)
            {
                return status == 200 ? null : $"HTTP status {status} (expected 200)";
            }

            string? body = null;
            if (check.HttpMatches.Any(static m => m.Body is not null))
            {
                body = await ReadBodyAsync(response, cancellationToken).ConfigureAwait(false);
            }

            foreach (var match in check.HttpMatches)
            {
                if (Holds(match, status, body, response))
                {
                    return null;
                }
            }

            return check.HttpMatches.Length == 1
                ? $"HTTP status {status}: {Mismatch(check.HttpMatches[0], status, body, response)}"
                : $"HTTP status {status}: none of the {check.HttpMatches.Length} matches holds";
        }

        private static async Task<string> ReadBodyAsync(HttpResponseMessage response, CancellationToken cancellationToken)
        {
            // Only the first 64 KiB are searched: a health endpoint's answer is short, and a probe must stay cheap.
            const int Limit = 64 * 1024;
            var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                var buffer = new byte[Limit];
                var length = 0;
                int read;
                while (length < Limit && (read = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken).ConfigureAwait(false)) > 0)
                {
                    length += read;
                }

                return Encoding.UTF8.GetString(buffer, 0, length);
            }
        }

        private static bool Holds(HttpProbeMatch match, int status, string? body, HttpResponseMessage response) =>
            Mismatch(match, status, body, response) is null;

        /// <summary>What of <paramref name="match"/> does not hold, or null when all of it does.</summary>
        private static string? Mismatch(HttpProbeMatch match, int status, string? body, HttpResponseMessage response)
        {
            if (!match.StatusCodes.IsEmpty && !match.StatusCodes.Contains(status))
            {
                return $"the status is not one of {string.Join(", ", match.StatusCodes)}";
            }

            if (match.Body is { } text && !(body ?? string.Empty).Contains(text, StringComparison.Ordinal))
            {
                return $"the body does not contain '{LogText.Escape(text)}'";
            }

            foreach (var header in match.Headers)
            {
                if (!HasHeader(response, header.Name, header.Value))
                {
                    return $"no header {LogText.Escape(header.Name)}: {LogText.Escape(header.Value)}";
                }
            }

            return null;
        }

        private static bool HasHeader(HttpResponseMessage response, string name, string value) =>
            (response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values))
            && values.Any(v => string.Equals(v.Trim(), value, StringComparison.Ordinal));

        private static ReadOnlyMemory<byte> AsMemory(EquatableArray<byte> bytes) =>
            System.Runtime.InteropServices.ImmutableCollectionsMarshal.AsArray(bytes.Items) ?? [];

        private static string Describe(Exception e) => e switch
        {
            SocketException s => s.SocketErrorCode switch
            {
                SocketError.ConnectionRefused => "connection refused",
                SocketError.ConnectionReset => "connection reset",
                SocketError.HostUnreachable or SocketError.NetworkUnreachable => "unreachable",
                _ => LogText.Escape(s.Message),
            },
            HttpRequestException { InnerException: SocketException inner } => Describe(inner),
            _ => ErrorText.Of(e),
        };

        private static string Format(TimeSpan span) =>
            span.TotalSeconds >= 1 && span.Milliseconds == 0 ? $"{span.TotalSeconds.ToString(CultureInfo.InvariantCulture)}s" : $"{span.TotalMilliseconds.ToString(CultureInfo.InvariantCulture)}ms";
    }
}
