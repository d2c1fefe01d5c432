using System.Collections.Immutable;
using System.Net;
using System.Reactive.Subjects;
using System.Text;
using FsmGateway.Kubernetes.Api;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FsmGateway.Kubernetes.Controller;

/// <summary>
/// <see cref="IReplicaReportExchange"/> through one Lease per replica in the leader-election namespace, labelled
/// <see cref="ReportsLabel"/>: <c>spec.holderIdentity</c> is the replica, the reports are its
/// <see cref="ReportsAnnotation"/>. API traffic per replica is bounded whatever the data planes do: a write when the
/// reports changed, at most one per <see cref="WriteInterval"/>; a renewal every third of the lease duration; one
/// list of the report Leases per retry period. Another replica's reports count while its Lease changes at least once
/// per its lease duration, by our clock from when we saw it change (as leader election judges the leader's Lease,
/// immune to clock skew); a Lease expired for two lease durations is deleted.
/// <para>
/// The Lease is renewed whatever the reports are: reports larger than <see cref="MaxReportsBytes"/> (the API server
/// allows 256 KiB of annotations per object), or that the API server rejects, are not written; the Lease is renewed
/// with the reports last written instead (a warning says so), so other replicas keep counting this replica's data
/// planes as they were, rather than all of them expiring at once. A failed attempt is retried after the retry
/// period, never at once.
/// </para>
/// </summary>
internal sealed partial class ReplicaReportLeases(
    IKubernetes client,
    IOptions<KubernetesControllerOptions> options,
    TimeProvider time,
    ILogger<ReplicaReportLeases> logger) : BackgroundService, IReplicaReportExchange
{
    /// <summary>The label of every report Lease (value <c>true</c>).</summary>
    public const string ReportsLabel = "gateway.fsm-gateway.io/data-plane-reports";

    /// <summary>The annotation holding a replica's reports.</summary>
    public const string ReportsAnnotation = "gateway.fsm-gateway.io/data-plane-reports";

    /// <summary>The shortest time between two writes of changed reports: churn of many data planes costs one write per interval.</summary>
    public static readonly TimeSpan WriteInterval = TimeSpan.FromSeconds(1);

    /// <summary>The largest reports written (UTF-8 bytes), below the API server's 256 KiB for all of an object's annotations.</summary>
    public const int MaxReportsBytes = 200 * 1024;

    private readonly KubernetesControllerOptions _options = options.Value;
    private readonly BehaviorSubject<IReadOnlyDictionary<string, string>> _others = new(ImmutableSortedDictionary<string, string>.Empty);
    private readonly SemaphoreSlim _changed = new(0, 1);
    private readonly Dictionary<string, (string Version, DateTimeOffset SeenAt)> _seen = new(StringComparer.Ordinal);
    private volatile string? _reports;

    public IObservable<IReadOnlyDictionary<string, string>> Others => _others;

    /// <summary>The name of the Lease of the replica named <paramref name="identity"/>.</summary>
    public static string LeaseNameOf(string identity)
    {
        var name = new StringBuilder("fsm-gateway-reports-");
        foreach (var c in identity.ToLowerInvariant())
        {
            name.Append(char.IsAsciiLetterOrDigit(c) || c is '-' or '.' ? c : '-');
        }

        return name.Length > 253 ? name.ToString(0, 253).TrimEnd('-', '.') : name.ToString().TrimEnd('-', '.');
    }

    public void Publish(string reports)
    {
        _reports = reports;
        if (_changed.CurrentCount == 0)
        {
            try
            {
                _changed.Release();
            }
            catch (SemaphoreFullException)
            {
                // Already signalled.
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // One replica (no leader election) has nobody to share with; a process that serves no config stream never
        // publishes, and then costs the API server nothing.
        if (!_options.LeaderElection)
        {
            return;
        }

        try
        {
            await _changed.WaitAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        var name = LeaseNameOf(_options.Identity);
        var renewEvery = _options.LeaseDuration / 3;
        var readEvery = _options.RetryPeriod;
        var writeInterval = WriteInterval < readEvery ? WriteInterval : readEvery;
        V1Lease? own = null;
        string? written = null;
        string? refused = null;
        var writtenAt = DateTimeOffset.MinValue;
        var readAt = DateTimeOffset.MinValue;
        var retryAt = DateTimeOffset.MinValue;
        var failing = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var now = time.GetUtcNow();
                var reports = _reports;
                var changed = reports is not null && reports != written && reports != refused;
                if (reports is not null && ((changed && now - writtenAt >= writeInterval) || now - writtenAt >= renewEvery))
                {
                    // What to write: changed reports that fit, else the ones last written (a renewal).
                    var content = written ?? string.Empty;
                    if (changed && Encoding.UTF8.GetByteCount(reports) is var bytes && bytes > MaxReportsBytes)
                    {
                        if (refused is null)
                        {
                            LogTooLarge(logger, bytes, MaxReportsBytes);
                        }

                        refused = reports;
                    }
                    else if (changed)
                    {
                        content = reports;
                    }

                    try
                    {
                        own = await WriteAsync(own, name, content, stoppingToken).ConfigureAwait(false);
                        (written, writtenAt) = (content, time.GetUtcNow());
                        if (content == reports)
                        {
                            refused = null;
                        }
                    }
                    catch (HttpOperationException e) when (content != (written ?? string.Empty) && e.Response.StatusCode is HttpStatusCode.UnprocessableEntity or HttpStatusCode.RequestEntityTooLarge or HttpStatusCode.BadRequest)
                    {
                        // The API server refuses these reports (too large for it, say): they are not tried again until
                        // they change, and the Lease keeps being renewed with the last ones (at once if its renewal
                        // is due: the wait below is then none).
                        if (refused is null)
                        {
                            LogRefused(logger, (int)e.Response.StatusCode, ErrorText.Of(e));
                        }

                        refused = reports;
                    }
                }

                if (now - readAt >= readEvery)
                {
                    await ReadOthersAsync(stoppingToken).ConfigureAwait(false);
                    readAt = now;
                }

                if (failing)
                {
                    failing = false;
                    LogRecovered(logger, _options.LeaseNamespace);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                // The API server away: the others' reports are kept (their expiry runs on our clock at the next read),
                // ours are written at the next attempt, a retry period from now (not at once: no request storm).
                own = null;
                retryAt = time.GetUtcNow() + readEvery;
                if (!failing)
                {
                    failing = true;
                    LogFailed(logger, _options.LeaseNamespace, ErrorText.Of(e));
                }

                LogFailureDetail(logger, e);
            }

            // Until the next read, the next renewal, or a change (written no sooner than the write interval after the last).
            var next = Min(readAt + readEvery, writtenAt + renewEvery);
            if (_reports is { } pending && pending != written && pending != refused)
            {
                next = Min(next, writtenAt + writeInterval);
            }

            next = next > retryAt ? next : retryAt;

            var wait = next - time.GetUtcNow();
            if (wait > TimeSpan.Zero)
            {
                using var timeout = new CancellationTokenSource(wait, time);
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, timeout.Token);
                try
                {
                    await _changed.WaitAsync(linked.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
                {
                }
            }
        }
    }

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    private async Task<V1Lease> WriteAsync(V1Lease? own, string name, string reports, CancellationToken cancellationToken)
    {
        var leases = client.CoordinationV1;
        var ns = _options.LeaseNamespace;
        var now = time.GetUtcNow().UtcDateTime;
        if (own is not null)
        {
            Fill(own, reports, now);
            try
            {
                return await leases.ReplaceNamespacedLeaseAsync(own, name, ns, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (HttpOperationException e) when (e.Response.StatusCode is HttpStatusCode.Conflict or HttpStatusCode.NotFound)
            {
                // Someone else wrote or deleted it (a replica that took us for dead): read it again below.
            }
        }

        V1Lease? current;
        try
        {
            current = await leases.ReadNamespacedLeaseAsync(name, ns, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            current = null;
        }

        if (current is null)
        {
            var created = new V1Lease
            {
                Metadata = new V1ObjectMeta
                {
                    Name = name,
                    NamespaceProperty = ns,
                    Labels = new Dictionary<string, string> { [ReportsLabel] = "true", [DataPlaneManifests.ManagedByLabel] = DataPlaneManifests.ManagedByValue },
                },
                Spec = new V1LeaseSpec(),
            };
            Fill(created, reports, now);
            return await leases.CreateNamespacedLeaseAsync(created, ns, cancellationToken: cancellationToken).ConfigureAwait(false);
        }

        Fill(current, reports, now);
        return await leases.ReplaceNamespacedLeaseAsync(current, name, ns, cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    private void Fill(V1Lease lease, string reports, DateTime now)
    {
        lease.Metadata.Annotations ??= new Dictionary<string, string>();
        lease.Metadata.Annotations[ReportsAnnotation] = reports;
        lease.Spec ??= new V1LeaseSpec();
        lease.Spec.HolderIdentity = _options.Identity;
        lease.Spec.LeaseDurationSeconds = (int)Math.Ceiling(_options.LeaseDuration.TotalSeconds);
        lease.Spec.RenewTime = now;
        lease.Spec.AcquireTime ??= now;
    }

    private async Task ReadOthersAsync(CancellationToken cancellationToken)
    {
        var list = await client.CoordinationV1.ListNamespacedLeaseAsync(_options.LeaseNamespace, labelSelector: $"{ReportsLabel}=true", cancellationToken: cancellationToken).ConfigureAwait(false);
        var now = time.GetUtcNow();
        var alive = ImmutableSortedDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
        var present = new HashSet<string>(StringComparer.Ordinal);
        foreach (var lease in list.Items)
        {
            var name = lease.Metadata.Name;
            var holder = lease.Spec?.HolderIdentity;
            if (holder is null || holder == _options.Identity)
            {
                continue;
            }

            present.Add(name);
            var version = lease.Metadata.ResourceVersion ?? string.Empty;
            if (!_seen.TryGetValue(name, out var seen) || seen.Version != version)
            {
                _seen[name] = seen = (version, now);
            }

            var lasts = lease.Spec?.LeaseDurationSeconds is > 0 and var seconds ? TimeSpan.FromSeconds(seconds) : _options.LeaseDuration;
            if (now - seen.SeenAt < lasts)
            {
                alive[holder] = lease.Metadata.Annotations?.TryGetValue(ReportsAnnotation, out var reports) == true ? reports : string.Empty;
            }
            else if (now - seen.SeenAt >= 2 * lasts)
            {
                await DeleteExpiredAsync(name, holder, version, cancellationToken).ConfigureAwait(false);
            }
        }

        foreach (var gone in _seen.Keys.Where(k => !present.Contains(k)).ToList())
        {
            _seen.Remove(gone);
        }

        var others = alive.ToImmutable();
        var previous = _others.Value;
        if (others.Count != previous.Count || others.Any(p => !previous.TryGetValue(p.Key, out var before) || before != p.Value))
        {
            foreach (var holder in previous.Keys.Where(k => !others.ContainsKey(k)))
            {
                LogExpired(logger, LogText.Escape(holder));
            }

            _others.OnNext(others);
        }
    }

    private async Task DeleteExpiredAsync(string name, string holder, string version, CancellationToken cancellationToken)
    {
        try
        {
            await client.CoordinationV1.DeleteNamespacedLeaseAsync(
                name,
                _options.LeaseNamespace,
                new V1DeleteOptions { Preconditions = new V1Preconditions { ResourceVersion = version } },
                cancellationToken: cancellationToken).ConfigureAwait(false);
            _seen.Remove(name);
            LogDeleted(logger, LogText.Escape(holder), _options.LeaseNamespace, name);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode is HttpStatusCode.Conflict or HttpStatusCode.NotFound)
        {
            // Renewed meanwhile (its replica lives after all) or already deleted.
        }
    }

    public override void Dispose()
    {
        _changed.Dispose();
        _others.Dispose();
        base.Dispose();
    }

    [LoggerMessage(1, LogLevel.Warning, "Sharing data-plane reports through the Leases in namespace {Namespace} failed: {Error}; retrying")]
    private static partial void LogFailed(ILogger logger, string @namespace, string error);

    [LoggerMessage(2, LogLevel.Debug, "Sharing data-plane reports failed; in full")]
    private static partial void LogFailureDetail(ILogger logger, Exception exception);

    [LoggerMessage(3, LogLevel.Information, "Sharing data-plane reports through the Leases in namespace {Namespace} works again")]
    private static partial void LogRecovered(ILogger logger, string @namespace);

    [LoggerMessage(4, LogLevel.Information, "Controller replica {Replica} has not renewed its data-plane reports for its lease duration; they no longer count")]
    private static partial void LogExpired(ILogger logger, string replica);

    [LoggerMessage(6, LogLevel.Warning, "This replica's data-plane reports are {Bytes} bytes, over the {Limit} its report Lease holds; its Lease is renewed with the reports last written until they shrink")]
    private static partial void LogTooLarge(ILogger logger, int bytes, int limit);

    [LoggerMessage(7, LogLevel.Warning, "The API server refused this replica's data-plane reports ({Status}: {Error}); its Lease is renewed with the reports last written until they change")]
    private static partial void LogRefused(ILogger logger, int status, string error);

    [LoggerMessage(5, LogLevel.Information, "Deleted the expired data-plane reports of controller replica {Replica} (Lease {Namespace}/{Name})")]
    private static partial void LogDeleted(ILogger logger, string replica, string @namespace, string name);
}
