using System.Collections.Immutable;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using System.Threading.Channels;
using FsmGateway.Kubernetes.Api;
using FsmGateway.Resources;
using FsmGateway.Status;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Kubernetes.Controller;

/// <summary>
/// The controller's side effects for each compiled status set, done by the leader only and off the config pipeline:
/// provision the data plane of each accepted Gateway (when an image is configured), then write the statuses. What
/// provisioning finds (Deployment availability, the Service's addresses, unusable parameters) is a compiler input
/// (<see cref="IProvisionedDataPlanesSource"/>): when it changes, the statuses in hand are not written; the pipeline
/// compiles again with it and the next pass writes those, so status is decided by the compiler alone. Only the latest
/// status set is worked on. Every call of a pass carries the leadership term, so a replica that stops leading stops
/// writing at once. A failed object is retried with back-off; a periodic resync compares everything with the cluster
/// again (repairing status someone else overwrote), as gaining leadership does. When provisioning, an informer on the
/// provisioned Deployments and Services (<see cref="OwnedObjectsWatch"/>) starts a pass as soon as one of them changes
/// in a way that matters to its Gateway's status (a replica becomes available, the load balancer assigns an address),
/// is edited by someone else, or is deleted, and as soon as a ConfigMap a Gateway's parametersRef names changes, or a
/// Gateway namespace's CA ConfigMap is edited or deleted (the pass writes it back).
/// A change of the config stream's CA bundle (a rotation, <see cref="ControlPlane.StreamAuthority"/>) starts a pass
/// too, which writes it to every Gateway namespace's ConfigMap. The first pass also removes the data-plane RBAC earlier versions left (<see cref="LegacyDataPlaneRbac"/>).
/// </summary>
internal sealed partial class KubernetesControllerSink(
    Leadership leadership,
    KubernetesStatusWriter writer,
    GatewayProvisioner? provisioner,
    OwnedObjectsWatch? ownedObjects,
    TimeSpan resyncPeriod,
    ApiServerReachability reachability,
    TimeProvider time,
    ILogger<KubernetesControllerSink> logger,
    LegacyDataPlaneRbac? legacyRbac = null,
    ControlPlane.StreamAuthority? authority = null) : BackgroundService, IStatusSink, IProvisionedDataPlanesSource
{
    private static readonly TimeSpan MinRetry = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan MaxRetry = TimeSpan.FromSeconds(30);

    private readonly Channel<bool> _work = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
    private readonly BehaviorSubject<ProvisionedDataPlanes> _dataPlanes = new(ProvisionedDataPlanes.None);
    private StatusSet? _latest;

    /// <summary>What provisioning found; nothing at all when this controller provisions nothing (then no Gateway has an address).</summary>
    public IObservable<ProvisionedDataPlanes> DataPlanes => provisioner is null ? Observable.Never<ProvisionedDataPlanes>() : _dataPlanes;
    private volatile bool _compareAgain;

    public ValueTask PublishAsync(StatusSet statuses, CancellationToken cancellationToken)
    {
        Volatile.Write(ref _latest, statuses);
        _work.Writer.TryWrite(true);
        return ValueTask.CompletedTask;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        leadership.Changed += OnLeadershipChanged;
        if (authority is not null)
        {
            authority.TrustChanged += OnTrustChanged;
        }

        var resync = ResyncAsync(stoppingToken);
        var owned = ownedObjects?.RunAsync(OnOwnedObjectChanged, IsWatchedConfigMap, OnConfigMapChanged, stoppingToken) ?? Task.CompletedTask;
        try
        {
            var retry = new Backoff(MinRetry, MaxRetry);
            while (await _work.Reader.WaitToReadAsync(stoppingToken).ConfigureAwait(false))
            {
                _work.Reader.TryRead(out _);
                if (!leadership.TryGetTerm(out var term) || Volatile.Read(ref _latest) is not { } statuses)
                {
                    continue;
                }

                var fullCheck = _compareAgain;
                if (fullCheck)
                {
                    _compareAgain = false;
                    writer.Reset();
                }

                using var pass = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, term);
                bool complete;
                try
                {
                    complete = await PassAsync(statuses, fullCheck, pass.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (term.IsCancellationRequested && !stoppingToken.IsCancellationRequested)
                {
                    LogLostLeadership(logger);
                    continue;
                }
                catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
                {
                    // Whatever failed (an API server away, a bug), the loop goes on: the next pass compares everything again.
                    LogFailed(logger, ErrorText.Of(e));
                    LogFailureDetail(logger, e);
                    complete = false;
                }

                if (complete)
                {
                    retry.Reset();
                    continue;
                }

                var delay = retry.Next();
                LogRetrying(logger, delay.TotalMilliseconds);
                await reachability.DelayAsync(delay, stoppingToken).ConfigureAwait(false);
                _compareAgain = true;
                _work.Writer.TryWrite(true);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            leadership.Changed -= OnLeadershipChanged;
            if (authority is not null)
            {
                authority.TrustChanged -= OnTrustChanged;
            }

            await resync.ConfigureAwait(false);
            await owned.ConfigureAwait(false);
        }
    }

    private async Task<bool> PassAsync(StatusSet statuses, bool fullCheck, CancellationToken cancellationToken)
    {
        // Once per process, by the leader: what earlier versions granted data planes goes (it never fails the pass).
        if (legacyRbac is not null)
        {
            await legacyRbac.RunOnceAsync(cancellationToken).ConfigureAwait(false);
        }

        if (provisioner is null)
        {
            return await writer.WriteAsync(statuses, cancellationToken).ConfigureAwait(false);
        }

        var (provisioned, complete) = await provisioner.ReconcileAsync(statuses, fullCheck, cancellationToken).ConfigureAwait(false);
        var found = ImmutableSortedDictionary.CreateRange(provisioned);
        if (!complete)
        {
            // A Gateway whose data plane could not be read this pass keeps what was last found, rather than flapping to
            // "not provisioned"; the retry finds it again.
            var previous = _dataPlanes.Value.ByGateway;
            found = found.SetItems(previous.Where(p => statuses.Gateways.ContainsKey(p.Key) && !found.ContainsKey(p.Key)));
        }

        var observed = new ProvisionedDataPlanes(found);
        if (!observed.Equals(_dataPlanes.Value))
        {
            // The statuses in hand were compiled without this; the compile it starts brings the statuses to write.
            _dataPlanes.OnNext(observed);
            return complete;
        }

        return await writer.WriteAsync(statuses, cancellationToken).ConfigureAwait(false) && complete;
    }

    private async Task ResyncAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await Task.Delay(resyncPeriod, time, stoppingToken).ConfigureAwait(false);
                _compareAgain = true;
                _work.Writer.TryWrite(true);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private void OnOwnedObjectChanged(string gateway)
    {
        LogOwnedObjectChanged(logger, gateway);
        _work.Writer.TryWrite(true);
    }

    private bool IsWatchedConfigMap(string configMap) =>
        provisioner is not null && (provisioner.IsParameters(configMap) || provisioner.IsAuthorityConfigMap(configMap));

    private void OnConfigMapChanged(string configMap)
    {
        if (provisioner?.IsAuthorityConfigMap(configMap) == true)
        {
            // Deleted or edited by someone (our own applies change nothing once it is ours): the pass writes it back.
            LogAuthorityConfigMapChanged(logger, configMap);
        }
        else
        {
            LogParametersChanged(logger, configMap);
        }

        _work.Writer.TryWrite(true);
    }

    private void OnTrustChanged()
    {
        // A CA rotation changed the bundle data planes trust: the provisioner writes it to every ConfigMap.
        _work.Writer.TryWrite(true);
    }

    private void OnLeadershipChanged(bool isLeader)
    {
        if (isLeader)
        {
            // What the previous leader wrote is unknown: compare everything with the cluster again.
            _compareAgain = true;
            _work.Writer.TryWrite(true);
        }
    }

    [LoggerMessage(1, LogLevel.Warning, "Writing status or provisioning failed: {Error}")]
    private static partial void LogFailed(ILogger logger, string error);

    [LoggerMessage(4, LogLevel.Debug, "Writing status or provisioning failed; in full")]
    private static partial void LogFailureDetail(ILogger logger, Exception exception);

    [LoggerMessage(2, LogLevel.Information, "Some statuses or data planes are not written yet; retrying in {DelayMs:F0} ms")]
    private static partial void LogRetrying(ILogger logger, double delayMs);

    [LoggerMessage(5, LogLevel.Debug, "The data plane of Gateway {Gateway} changed; bringing its status up to date")]
    private static partial void LogOwnedObjectChanged(ILogger logger, string gateway);

    [LoggerMessage(6, LogLevel.Debug, "ConfigMap {ConfigMap}, named by a Gateway's parametersRef, changed; provisioning again")]
    private static partial void LogParametersChanged(ILogger logger, string configMap);

    [LoggerMessage(7, LogLevel.Debug, "ConfigMap {ConfigMap}, the config stream's CA for the data planes, changed or went away; provisioning again")]
    private static partial void LogAuthorityConfigMapChanged(ILogger logger, string configMap);

    [LoggerMessage(3, LogLevel.Warning, "Leadership was lost during a pass; its remaining writes were cancelled")]
    private static partial void LogLostLeadership(ILogger logger);
}
