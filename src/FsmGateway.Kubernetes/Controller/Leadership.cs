using System.Diagnostics.Metrics;
using System.Net;
using FsmGateway.Kubernetes.Api;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FsmGateway.Kubernetes.Controller;

/// <summary>
/// Whether this replica leads, decided through a <c>coordination.k8s.io</c> Lease as client-go's leader election does
/// it, or always true when leader election is off. Every <see cref="KubernetesControllerOptions.RetryPeriod"/> the
/// candidate reads the Lease and takes it when it is free or its holder has not renewed it for its lease duration (by
/// our clock, from when we saw it change); the leader renews it. A failed renewal is retried until
/// <see cref="KubernetesControllerOptions.RenewDeadline"/> has passed since the last good one, and only then does the
/// leader stop leading (at once if another replica holds the Lease). Nothing ends the loop but shutdown: an API server
/// that is away is retried for as long as the process lives. (KubernetesClient's <c>LeaderElector</c> stops leading
/// at the first failed renewal and lets a connection error escape, which stopped the host.)
/// </summary>
internal sealed partial class Leadership(
    IKubernetes client,
    IOptions<KubernetesControllerOptions> options,
    ApiServerReachability reachability,
    TimeProvider time,
    ILogger<Leadership> logger,
    IMeterFactory? meters = null) : BackgroundService
{
    private readonly KubernetesControllerOptions _options = options.Value;
    private readonly Lock _gate = new();
    private volatile bool _isLeader = !options.Value.LeaderElection;
    private CancellationTokenSource? _term = options.Value.LeaderElection ? null : new CancellationTokenSource();
    private LeaseRecord? _observed;
    private DateTimeOffset _observedAt;
    private string? _reportedLeader;
    private bool _failing;

    public bool IsLeader => _isLeader;

    /// <summary>
    /// The current term: a token cancelled the moment leadership is lost, to pass to every write of a pass so that a
    /// replica that stopped leading stops writing at once, mid-pass. False when not leading.
    /// </summary>
    public bool TryGetTerm(out CancellationToken term)
    {
        lock (_gate)
        {
            term = _term?.Token ?? CancellationToken.None;
            return _isLeader && _term is not null;
        }
    }

    /// <summary>Raised with the new value whenever leadership is gained or lost.</summary>
    public event Action<bool>? Changed;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        meters?.Create(ApiServerReachability.MeterName).CreateObservableGauge(
            "fsmgateway.controller.leader", () => _isLeader ? 1 : 0, "{boolean}", "1 while this controller replica leads (writes status and provisions), else 0.");
        if (!_options.LeaderElection)
        {
            return;
        }

        LogCandidate(logger, _options.Identity, _options.LeaseNamespace, _options.LeaseName);
        var renewedAt = DateTimeOffset.MinValue;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var now = time.GetUtcNow();
                if (_isLeader && now - renewedAt >= _options.RenewDeadline)
                {
                    LogRenewDeadlinePassed(logger, _options.Identity, _options.RenewDeadline.TotalSeconds, _options.LeaseNamespace, _options.LeaseName);
                    Set(false);
                }

                // An attempt that hangs (a blackholed API server) is cut off: a leader's at its renew deadline.
                var limit = _isLeader ? renewedAt + _options.RenewDeadline - now : _options.RenewDeadline;
                var held = await AttemptAsync(limit, stoppingToken).ConfigureAwait(false);
                now = time.GetUtcNow();
                if (held == true)
                {
                    renewedAt = now;
                    Set(true);
                }
                else if (held == false && _isLeader)
                {
                    LogTakenOver(logger, _options.Identity, LogText.Escape(_observed?.Holder ?? "another replica"));
                    Set(false);
                }

                // The leader renews every retry period; a candidate tries with jitter (client-go's factor 1.2), so
                // replicas do not poll in step. A leader that failed checks its deadline when it comes.
                var delay = _isLeader
                    ? _options.RetryPeriod
                    : _options.RetryPeriod * (1 + (Random.Shared.NextDouble() * 1.2));
                if (_isLeader && held is null && renewedAt + _options.RenewDeadline - now is var left && left < delay)
                {
                    delay = left > TimeSpan.Zero ? left : TimeSpan.Zero;
                }

                await Task.Delay(delay, time, stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            var led = _isLeader;
            Set(false);
            if (led)
            {
                await ReleaseAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>One try: true when we hold the Lease now, false when another replica does, null when that is not known (the API server could not be asked, or a write raced another).</summary>
    private async Task<bool?> AttemptAsync(TimeSpan limit, CancellationToken stoppingToken)
    {
        using var timeout = new CancellationTokenSource(limit > TimeSpan.Zero ? limit : TimeSpan.FromMilliseconds(1), time);
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, timeout.Token);
        try
        {
            var held = await TryAcquireOrRenewAsync(attempt.Token).ConfigureAwait(false);
            if (_failing)
            {
                _failing = false;
                LogLeaseReachable(logger, _options.LeaseNamespace, _options.LeaseName);
            }

            return held;
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            var error = timeout.IsCancellationRequested && e is OperationCanceledException
                ? $"no answer within {limit.TotalSeconds:F1} s"
                : ErrorText.Of(e);
            // A silence is evidence only when the attempt had time to be answered: near the renew deadline an attempt
            // may get a few milliseconds, and cutting it off says nothing about the API server.
            if (timeout.IsCancellationRequested && limit >= _options.RetryPeriod)
            {
                reachability.Failed(error);
            }

            // Once per outage at Warning; each retry at Debug, with the stack.
            if (!_failing)
            {
                _failing = true;
                if (_isLeader)
                {
                    LogRenewFailed(logger, _options.LeaseNamespace, _options.LeaseName, error, _options.RenewDeadline.TotalSeconds);
                }
                else
                {
                    LogAcquireFailed(logger, _options.LeaseNamespace, _options.LeaseName, error);
                }
            }

            LogAttemptFailed(logger, e, _options.LeaseNamespace, _options.LeaseName);
            return null;
        }
    }

    /// <summary>
    /// Reads the Lease; creates it when missing; takes it when it is free or expired; renews it when ours. A write
    /// carries the resourceVersion read, so of two replicas racing for it one gets 409: null, to look again at the
    /// next try. True when we hold it now, false when another replica does.
    /// </summary>
    private async Task<bool?> TryAcquireOrRenewAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var leases = client.CoordinationV1;
        var durationSeconds = (int)Math.Ceiling(_options.LeaseDuration.TotalSeconds);
        V1Lease? lease;
        try
        {
            lease = await leases.ReadNamespacedLeaseAsync(_options.LeaseName, _options.LeaseNamespace, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            lease = null;
        }

        if (lease is null)
        {
            var created = new V1Lease
            {
                Metadata = new V1ObjectMeta { Name = _options.LeaseName, NamespaceProperty = _options.LeaseNamespace },
                Spec = new V1LeaseSpec
                {
                    HolderIdentity = _options.Identity,
                    LeaseDurationSeconds = durationSeconds,
                    AcquireTime = now.UtcDateTime,
                    RenewTime = now.UtcDateTime,
                    LeaseTransitions = 0,
                },
            };
            try
            {
                await leases.CreateNamespacedLeaseAsync(created, _options.LeaseNamespace, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
            {
                return null;
            }

            Observe(LeaseRecord.Of(created.Spec), now);
            return true;
        }

        var spec = lease.Spec ?? new V1LeaseSpec();
        Observe(LeaseRecord.Of(spec), now);
        var ours = spec.HolderIdentity == _options.Identity;
        var lasts = spec.LeaseDurationSeconds is > 0 and var seconds ? TimeSpan.FromSeconds(seconds) : _options.LeaseDuration;
        if (!ours && !string.IsNullOrEmpty(spec.HolderIdentity) && _observedAt + lasts > now)
        {
            return false;
        }

        if (!ours)
        {
            spec.AcquireTime = now.UtcDateTime;
            spec.LeaseTransitions = (spec.LeaseTransitions ?? 0) + 1;
        }

        spec.HolderIdentity = _options.Identity;
        spec.LeaseDurationSeconds = durationSeconds;
        spec.RenewTime = now.UtcDateTime;
        lease.Spec = spec;
        try
        {
            await leases.ReplaceNamespacedLeaseAsync(lease, _options.LeaseName, _options.LeaseNamespace, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
        {
            // Written by someone else since we read it: look again at the next try.
            return null;
        }

        Observe(LeaseRecord.Of(spec), now);
        return true;
    }

    /// <summary>Notes the Lease as read; its holder's time runs from when we first saw this record (our clock, not theirs).</summary>
    private void Observe(LeaseRecord record, DateTimeOffset now)
    {
        if (record != _observed)
        {
            _observed = record;
            _observedAt = now;
        }

        if (record.Holder != _reportedLeader)
        {
            _reportedLeader = record.Holder;
            LogNewLeader(logger, record.Holder is { Length: > 0 } holder ? LogText.Escape(holder) : "(none: released)", _options.LeaseNamespace, _options.LeaseName);
        }
    }

    /// <summary>
    /// Hands the Lease back on shutdown (holder cleared, as client-go's ReleaseOnCancel does), so another replica
    /// takes over at its next try instead of waiting out the lease duration.
    /// </summary>
    private async Task ReleaseAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5), time);
        try
        {
            var lease = await client.CoordinationV1.ReadNamespacedLeaseAsync(_options.LeaseName, _options.LeaseNamespace, cancellationToken: timeout.Token).ConfigureAwait(false);
            if (lease.Spec?.HolderIdentity != _options.Identity)
            {
                return;
            }

            // Empty, not null: an empty holder is a released Lease, to client-go and to KubernetesClient's elector alike.
            lease.Spec.HolderIdentity = string.Empty;
            lease.Spec.LeaseDurationSeconds = 1;
            await client.CoordinationV1.ReplaceNamespacedLeaseAsync(lease, _options.LeaseName, _options.LeaseNamespace, cancellationToken: timeout.Token).ConfigureAwait(false);
            LogReleased(logger, _options.Identity, _options.LeaseNamespace, _options.LeaseName);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Another replica takes over once the lease expires.
            LogReleaseFailed(logger, _options.LeaseNamespace, _options.LeaseName, ErrorText.Of(e));
        }
    }

    private void Set(bool isLeader)
    {
        CancellationTokenSource? ended = null;
        lock (_gate)
        {
            if (_isLeader == isLeader)
            {
                return;
            }

            _isLeader = isLeader;
            if (isLeader)
            {
                _term = new CancellationTokenSource();
            }
            else
            {
                ended = _term;
                _term = null;
            }
        }

        // Outside the lock: cancelling runs the term's callbacks (aborting the pass's requests), which must not run
        // while IsLeading's callers wait on the gate.
        if (ended is not null)
        {
            ended.Cancel();
            ended.Dispose();
        }

        if (isLeader)
        {
            LogLeading(logger, _options.Identity);
        }
        else
        {
            LogNotLeading(logger, _options.Identity);
        }

        try
        {
            Changed?.Invoke(isLeader);
        }
        catch (Exception e)
        {
            // A subscriber's fault is not the election's: the loop goes on, and leadership stays what the Lease says.
            LogChangedHandlerFailed(logger, ErrorText.Of(e));
            LogChangedHandlerFailedDetail(logger, e);
        }
    }

    /// <summary>What of a Lease tells whether its holder is alive: any change restarts its lease duration.</summary>
    private readonly record struct LeaseRecord(string? Holder, DateTime? RenewTime, DateTime? AcquireTime, int? Transitions, int? DurationSeconds)
    {
        public static LeaseRecord Of(V1LeaseSpec spec) =>
            new(spec.HolderIdentity, spec.RenewTime, spec.AcquireTime, spec.LeaseTransitions, spec.LeaseDurationSeconds);
    }

    [LoggerMessage(1, LogLevel.Information, "{Identity} is a candidate for leader through Lease {Namespace}/{Name}")]
    private static partial void LogCandidate(ILogger logger, string identity, string @namespace, string name);

    [LoggerMessage(2, LogLevel.Information, "{Identity} leads: it writes status and provisions Gateways")]
    private static partial void LogLeading(ILogger logger, string identity);

    [LoggerMessage(3, LogLevel.Warning, "{Identity} no longer leads: it stops writing")]
    private static partial void LogNotLeading(ILogger logger, string identity);

    [LoggerMessage(4, LogLevel.Information, "Leader is {Leader} (Lease {Namespace}/{Name})")]
    private static partial void LogNewLeader(ILogger logger, string leader, string @namespace, string name);

    [LoggerMessage(5, LogLevel.Warning, "Lease {Namespace}/{Name} could not be read or written: {Error}; retrying (check the API server, and the RBAC Role for leases and its resourceNames)")]
    private static partial void LogAcquireFailed(ILogger logger, string @namespace, string name, string error);

    [LoggerMessage(6, LogLevel.Information, "{Identity} released Lease {Namespace}/{Name} on shutdown")]
    private static partial void LogReleased(ILogger logger, string identity, string @namespace, string name);

    [LoggerMessage(7, LogLevel.Warning, "Could not release Lease {Namespace}/{Name} on shutdown ({Error}); another replica takes over when it expires")]
    private static partial void LogReleaseFailed(ILogger logger, string @namespace, string name, string error);

    [LoggerMessage(8, LogLevel.Warning, "Lease {Namespace}/{Name} could not be renewed: {Error}; still leading, retrying until the renew deadline ({Seconds} s after the last renewal)")]
    private static partial void LogRenewFailed(ILogger logger, string @namespace, string name, string error, double seconds);

    [LoggerMessage(9, LogLevel.Debug, "Lease {Namespace}/{Name}: attempt failed")]
    private static partial void LogAttemptFailed(ILogger logger, Exception exception, string @namespace, string name);

    [LoggerMessage(10, LogLevel.Information, "Lease {Namespace}/{Name} can be read and written again")]
    private static partial void LogLeaseReachable(ILogger logger, string @namespace, string name);

    [LoggerMessage(11, LogLevel.Warning, "{Identity} could not renew Lease {Namespace}/{Name} for the renew deadline ({Seconds} s); stepping down so that another replica can lead")]
    private static partial void LogRenewDeadlinePassed(ILogger logger, string identity, double seconds, string @namespace, string name);

    [LoggerMessage(12, LogLevel.Warning, "{Identity} lost Lease: {Holder} holds it now")]
    private static partial void LogTakenOver(ILogger logger, string identity, string holder);

    [LoggerMessage(13, LogLevel.Error, "A subscriber to leadership changes failed ({Error}); the election goes on")]
    private static partial void LogChangedHandlerFailed(ILogger logger, string error);

    [LoggerMessage(14, LogLevel.Debug, "A subscriber to leadership changes failed")]
    private static partial void LogChangedHandlerFailedDetail(ILogger logger, Exception exception);
}
