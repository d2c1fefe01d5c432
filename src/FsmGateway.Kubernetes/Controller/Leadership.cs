using k8s;
using k8s.LeaderElection;
using k8s.LeaderElection.ResourceLock;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FsmGateway.Kubernetes.Controller;

/// <summary>
/// Whether this replica leads, decided through a <c>coordination.k8s.io</c> Lease (KubernetesClient's
/// <see cref="LeaderElector"/>), or always true when leader election is off.
/// </summary>
internal sealed partial class Leadership(IKubernetes client, IOptions<KubernetesControllerOptions> options, ILogger<Leadership> logger) : BackgroundService
{
    private readonly KubernetesControllerOptions _options = options.Value;
    private readonly Lock _gate = new();
    private volatile bool _isLeader = !options.Value.LeaderElection;
    private CancellationTokenSource? _term = options.Value.LeaderElection ? null : new CancellationTokenSource();

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
        if (!_options.LeaderElection)
        {
            return;
        }

        var leaseLock = new LeaseLock(client, _options.LeaseNamespace, _options.LeaseName, _options.Identity);
        using var elector = new LeaderElector(new LeaderElectionConfig(leaseLock)
        {
            LeaseDuration = _options.LeaseDuration,
            RenewDeadline = _options.RenewDeadline,
            RetryPeriod = _options.RetryPeriod,
        });
        elector.OnStartedLeading += () => Set(true);
        elector.OnStoppedLeading += () => Set(false);
        elector.OnNewLeader += leader => LogNewLeader(logger, leader is { Length: > 0 } ? leader : "(none: released)", _options.LeaseNamespace, _options.LeaseName);
        elector.OnError += e => LogElectionError(logger, e);
        leaseLock.OnHttpError += e => LogLeaseHttpError(logger, e, _options.LeaseNamespace, _options.LeaseName);
        LogCandidate(logger, _options.Identity, _options.LeaseNamespace, _options.LeaseName);

        // Whether we led when asked to stop: the elector reports "stopped leading" on its way out, before it returns.
        var ledAtStop = false;
        using var atStop = stoppingToken.Register(() => ledAtStop = _isLeader);
        try
        {
            await elector.RunAndTryToHoldLeadershipForeverAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            Set(false);
            if (ledAtStop)
            {
                await ReleaseAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Hands the Lease back on shutdown (holder cleared, as client-go's ReleaseOnCancel does), so another replica
    /// takes over at its next try instead of waiting out the lease duration.
    /// </summary>
    private async Task ReleaseAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            var lease = await client.CoordinationV1.ReadNamespacedLeaseAsync(_options.LeaseName, _options.LeaseNamespace, cancellationToken: timeout.Token).ConfigureAwait(false);
            if (lease.Spec?.HolderIdentity != _options.Identity)
            {
                return;
            }

            // Empty, not null: KubernetesClient's elector takes a null holder for a missing Lease and tries to create it.
            lease.Spec.HolderIdentity = string.Empty;
            lease.Spec.LeaseDurationSeconds = 1;
            await client.CoordinationV1.ReplaceNamespacedLeaseAsync(lease, _options.LeaseName, _options.LeaseNamespace, cancellationToken: timeout.Token).ConfigureAwait(false);
            LogReleased(logger, _options.Identity, _options.LeaseNamespace, _options.LeaseName);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Another replica takes over once the lease expires.
            LogReleaseFailed(logger, e, _options.LeaseNamespace, _options.LeaseName);
        }
    }

    private void Set(bool isLeader)
    {
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
                _term?.Cancel();
                _term?.Dispose();
                _term = null;
            }
        }

        if (isLeader)
        {
            LogLeading(logger, _options.Identity);
        }
        else
        {
            LogNotLeading(logger, _options.Identity);
        }

        Changed?.Invoke(isLeader);
    }

    [LoggerMessage(1, LogLevel.Information, "{Identity} is a candidate for leader through Lease {Namespace}/{Name}")]
    private static partial void LogCandidate(ILogger logger, string identity, string @namespace, string name);

    [LoggerMessage(2, LogLevel.Information, "{Identity} leads: it writes status and provisions Gateways")]
    private static partial void LogLeading(ILogger logger, string identity);

    [LoggerMessage(3, LogLevel.Warning, "{Identity} no longer leads: it stops writing")]
    private static partial void LogNotLeading(ILogger logger, string identity);

    [LoggerMessage(4, LogLevel.Information, "Leader is {Leader} (Lease {Namespace}/{Name})")]
    private static partial void LogNewLeader(ILogger logger, string leader, string @namespace, string name);

    [LoggerMessage(6, LogLevel.Information, "{Identity} released Lease {Namespace}/{Name} on shutdown")]
    private static partial void LogReleased(ILogger logger, string identity, string @namespace, string name);

    [LoggerMessage(7, LogLevel.Warning, "Could not release Lease {Namespace}/{Name} on shutdown; another replica takes over when it expires")]
    private static partial void LogReleaseFailed(ILogger logger, Exception exception, string @namespace, string name);

    [LoggerMessage(8, LogLevel.Warning, "Lease {Namespace}/{Name} could not be read or written (check the RBAC Role for leases and its resourceNames); retrying")]
    private static partial void LogLeaseHttpError(ILogger logger, Exception exception, string @namespace, string name);

    [LoggerMessage(5, LogLevel.Warning, "Leader election failed to reach the Lease; retrying")]
    private static partial void LogElectionError(ILogger logger, Exception exception);
}
