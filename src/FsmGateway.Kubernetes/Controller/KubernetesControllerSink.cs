using System.Threading.Channels;
using FsmGateway.Resources;
using FsmGateway.Status;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Kubernetes.Controller;

/// <summary>
/// The controller's side effects for each compiled status set, done by the leader only and off the config pipeline:
/// provision the data plane of each accepted Gateway (when an image is configured), then write statuses with the
/// addresses the provisioned Services report. Only the latest status set is worked on; a failure is retried with
/// back-off; gaining leadership re-checks everything against the cluster.
/// </summary>
internal sealed partial class KubernetesControllerSink(
    Leadership leadership,
    KubernetesStatusWriter writer,
    GatewayProvisioner? provisioner,
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
        try
        {
            var retry = MinRetry;
            while (await _work.Reader.WaitToReadAsync(stoppingToken).ConfigureAwait(false))
            {
                _work.Reader.TryRead(out _);
                if (!leadership.IsLeader || Volatile.Read(ref _latest) is not { } statuses)
                {
                    continue;
                }

                if (_compareAgain)
                {
                    _compareAgain = false;
                    writer.Reset();
                }

                try
                {
                    var addresses = provisioner is null
                        ? new Dictionary<ResourceKey, EquatableArray<GatewayAddress>>()
                        : await provisioner.ReconcileAsync(statuses, stoppingToken).ConfigureAwait(false);
                    await writer.WriteAsync(statuses, addresses, stoppingToken).ConfigureAwait(false);
                    retry = MinRetry;
                }
                catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
                {
                    LogFailed(logger, e, retry.TotalMilliseconds);
                    writer.Reset();
                    await Task.Delay(retry, time, stoppingToken).ConfigureAwait(false);
                    retry = retry * 2 < MaxRetry ? retry * 2 : MaxRetry;
                    _work.Writer.TryWrite(true);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            leadership.Changed -= OnLeadershipChanged;
        }
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

    [LoggerMessage(1, LogLevel.Warning, "Writing status or provisioning failed; retrying in {DelayMs:F0} ms")]
    private static partial void LogFailed(ILogger logger, Exception exception, double delayMs);
}
