using System.Net;

namespace FsmGateway.Kubernetes.Api;

/// <summary>
/// Whether the API server answers, as seen by every request the gateway's client makes (a delegating handler reports
/// each outcome): a connection that cannot be made, or 502/503/504, makes it unreachable until the next answer.
/// The controller's readiness follows it; the data plane's does not (it keeps serving its last config).
/// </summary>
internal sealed class ApiServerReachability(TimeProvider time)
{
    private readonly Lock _gate = new();
    private DateTimeOffset? _failingSince;
    private string? _lastFailure;
    private TaskCompletionSource _recovered = new(TaskCreationOptions.RunContinuationsAsynchronously);

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
        await Task.WhenAny(Task.Delay(delay, time, timer.Token), recovered).ConfigureAwait(false);
        await timer.CancelAsync().ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
    }

    /// <summary>A request got no answer: <paramref name="failure"/> says why.</summary>
    public void Failed(string failure)
    {
        lock (_gate)
        {
            _failingSince ??= time.GetUtcNow();
            _lastFailure = failure;
        }
    }

    /// <summary>Whether a status means the API server itself is not serving (a proxy or load balancer in front of it answered).</summary>
    public static bool IsUnavailable(HttpStatusCode status) =>
        status is HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout;
}
