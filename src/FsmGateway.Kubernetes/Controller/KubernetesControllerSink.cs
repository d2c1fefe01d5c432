using System.Threading.Channels;
using FsmGateway.Kubernetes.Api;
using FsmGateway.Resources;
using FsmGateway.Status;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Kubernetes.Controller;

/// <summary>
/// The controller's side effects for each compiled status set, done by the leader only and off the config pipeline:
/// provision the data plane of each accepted Gateway (when an image is configured), then write statuses with what
/// provisioning found (addresses; Programmed only once the data plane is available and addressed). Only the latest
/// status set is worked on. Every call of a pass carries the leadership term, so a replica that stops leading stops
/// writing at once. A failed object is retried with back-off; a periodic resync compares everything with the cluster
/// again (repairing status someone else overwrote), as gaining leadership does. When provisioning, an informer on the
/// provisioned Deployments and Services (<see cref="OwnedObjectsWatch"/>) starts a pass as soon as one of them changes
/// in a way that matters to its Gateway's status (a replica becomes available, the load balancer assigns an address),
/// is edited by someone else, or is deleted, and as soon as a ConfigMap a Gateway's parametersRef names changes.
/// </summary>
internal sealed partial class KubernetesControllerSink(
    Leadership leadership,
    KubernetesStatusWriter writer,
    GatewayProvisioner? provisioner,
    OwnedObjectsWatch? ownedObjects,
    TimeSpan resyncPeriod,
    ApiServerReachability reachability,
    TimeProvider time,
    ILogger<KubernetesControllerSink> logger) : BackgroundService, IStatusSink
{
    private static readonly TimeSpan MinRetry = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan MaxRetry = TimeSpan.FromSeconds(30);

    private readonly Channel<bool> _work = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
    private StatusSet? _latest;
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
        var resync = ResyncAsync(stoppingToken);
        var owned = ownedObjects?.RunAsync(OnOwnedObjectChanged, name => provisioner?.IsParameters(name) == true, OnParametersChanged, stoppingToken) ?? Task.CompletedTask;
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
            await resync.ConfigureAwait(false);
            await owned.ConfigureAwait(false);
        }
    }

    private async Task<bool> PassAsync(StatusSet statuses, bool fullCheck, CancellationToken cancellationToken)
    {
        var complete = true;
        var addresses = new Dictionary<ResourceKey, EquatableArray<GatewayAddress>>();
        if (provisioner is not null)
        {
            (var provisioned, complete) = await provisioner.ReconcileAsync(statuses, fullCheck, cancellationToken).ConfigureAwait(false);
            statuses = WithDataPlane(statuses, provisioned);
            foreach (var (key, gateway) in provisioned)
            {
                addresses[key] = gateway.Addresses;
            }
        }

        return await writer.WriteAsync(statuses, addresses, cancellationToken).ConfigureAwait(false) && complete;
    }

    /// <summary>
    /// A provisioned Gateway is Programmed only once its data plane can serve: a Deployment with an available replica
    /// (else Pending) and a Service with an address (else AddressNotAssigned). A Gateway whose parametersRef cannot be
    /// used is not Accepted (InvalidParameters, with the object and field at fault); its data plane is left as it was,
    /// so Programmed still says whether that one serves (Invalid when there is none).
    /// </summary>
    internal static StatusSet WithDataPlane(StatusSet statuses, IReadOnlyDictionary<ResourceKey, ProvisionedGateway> provisioned)
    {
        var gateways = statuses.Gateways;
        foreach (var (key, status) in statuses.Gateways)
        {
            if (!provisioned.TryGetValue(key, out var dataPlane))
            {
                continue;
            }

            var conditions = status.Conditions;
            var changed = false;
            if (dataPlane.ParametersError is { } error)
            {
                changed = true;
                conditions = [.. conditions.Select(c => c.Type == ConditionTypes.Accepted
                    ? c with { Status = ConditionStatus.False, Reason = ConditionReasons.InvalidParameters, Message = $"{error}. The data plane is left as it was." }
                    : c)];
            }

            if (conditions.FirstOrDefault(c => c.Type == ConditionTypes.Programmed) is { Status: ConditionStatus.True } programmed)
            {
                Condition? instead = !dataPlane.Available
                    ? dataPlane.ParametersError is not null && dataPlane.Addresses.IsEmpty
                        ? programmed with { Status = ConditionStatus.False, Reason = ConditionReasons.Invalid, Message = $"No data plane is provisioned while the Gateway's parameters are invalid." }
                        : programmed with { Status = ConditionStatus.False, Reason = ConditionReasons.Pending, Message = $"Waiting for Deployment {dataPlane.Deployment} to have an available replica." }
                    : dataPlane.Addresses.IsEmpty
                        ? programmed with { Status = ConditionStatus.False, Reason = ConditionReasons.AddressNotAssigned, Message = $"Waiting for the load balancer to give Service {dataPlane.Deployment} an address." }
                        : null;
                if (instead is not null)
                {
                    changed = true;
                    conditions = [.. conditions.Select(c => c.Type == ConditionTypes.Programmed ? instead : c)];
                }
            }

            if (changed)
            {
                gateways = gateways.SetItem(key, status with { Conditions = conditions });
            }
        }

        return statuses with { Gateways = gateways };
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

    private void OnParametersChanged(string configMap)
    {
        LogParametersChanged(logger, configMap);
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

    [LoggerMessage(3, LogLevel.Warning, "Leadership was lost during a pass; its remaining writes were cancelled")]
    private static partial void LogLostLeadership(ILogger logger);
}
