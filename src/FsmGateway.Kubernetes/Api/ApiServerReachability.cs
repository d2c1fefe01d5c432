using System.Diagnostics.Metrics;
using System.Net;

namespace FsmGateway.Kubernetes.Api;

/// <summary>
/// Whether the API server answers, as seen by every request the gateway's client makes (a delegating handler reports
/// each outcome): a connection that cannot be made, or 502/503/504, makes it unreachable until the next answer.
/// The controller's readiness follows it; the data plane's does not (it keeps serving its last config). Measured on the
/// meter <c>FsmGateway.Kubernetes</c>: <c>fsmgateway.kubernetes.api_server.reachable</c> (1 or 0) and
/// <c>fsmgateway.kubernetes.api_server.failures</c> (requests that got no answer).
/// </summary>
internal sealed class ApiServerReachability
{
    /// <summary>The meter of the Kubernetes package's instruments.</summary>
    public const string MeterName = "FsmGateway.Kubernetes";

    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private DateTimeOffset? _failingSince;
    private string? _lastFailure;
    private long _failures;
    private TaskCompletionSource _recovered = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ApiServerReachability(TimeProvider time, IMeterFactory? meters = null)
    {
        _time = time;
        if (meters?.Create(MeterName) is { } meter)
        {
            meter.CreateObservableGauge("fsmgateway.kubernetes.api_server.reachable", () => Outage is null ? 1 : 0, "{boolean}", "1 while the Kubernetes API server answers, 0 while requests get no answer (connection failure, 502/503/504).");
            meter.CreateObservableCounter("fsmgateway.kubernetes.api_server.failures", () => Interlocked.Read(ref _failures), "{request}", "Requests to the Kubernetes API server that got no answer.");
        }
    }

    /// <summary>Null while the API server answers; else since when it has not, and the last failure.</summary>
    public (DateTimeOffset Since, string Failure)? Outage
    {
        get
        {
            lock (_gate)
            {
                return _failingSince is { } since ? (since, _lastFailure ?? "no answer") : null;
            }
        }
    }

    /// <summary>A request got an answer (any status but 502/503/504).</summary>
    public void Answered()
    {
        TaskCompletionSource recovered;
        lock (_gate)
        {
            if (_failingSince is null)
            {
                return;
            }

            _failingSince = null;
            _lastFailure = null;
            recovered = _recovered;
            _recovered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        recovered.TrySetResult();
    }

    /// <summary>
    /// Waits <paramref name="delay"/> (a retry's back-off), cut short when the API server answers again after not
    /// answering: whoever notices first (the Lease, any watch) wakes every loop that backs off, so that all catch up
    /// within moments of its return instead of at their next back-off, up to 30 s later.
    /// </summary>
    public async Task DelayAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        Task recovered;
        lock (_gate)
        {
            recovered = _recovered.Task;
        }

        using var timer = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        await Task.WhenAny(Task.Delay(delay, _time, timer.Token), recovered).ConfigureAwait(false);
        await timer.CancelAsync().ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
    }

    /// <summary>A request got no answer: <paramref name="failure"/> says why.</summary>
    public void Failed(string failure)
    {
        Interlocked.Increment(ref _failures);
        lock (_gate)
        {
            _failingSince ??= _time.GetUtcNow();
            _lastFailure = failure;
        }
    }

    /// <summary>Whether a status means the API server itself is not serving (a proxy or load balancer in front of it answered).</summary>
    public static bool IsUnavailable(HttpStatusCode status) =>
        status is HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout;
}
