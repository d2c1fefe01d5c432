using System.Reactive.Concurrency;
using System.Threading.Channels;
using FsmGateway.Configuration;
using FsmGateway.Routing;
using FsmGateway.Status;
using FsmGateway.Transport.Proxy;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FsmGateway.Transport.Hosting;

/// <summary>
/// The pipeline: sources → snapshots (merged, reduced, synced, debounced) → compile → apply to the proxy → statuses.
/// Compiles only the latest snapshot when several queue up. On stop, the proxy stops accepting and drains.
/// </summary>
internal sealed partial class GatewayHostedService(
    IEnumerable<IConfigSource> sources,
    GatewayProxy proxy,
    IEnumerable<IStatusSink> sinks,
    GatewayRuntimeState state,
    IOptions<FsmGatewayOptions> options,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    ILogger<GatewayHostedService> logger) : BackgroundService
{
    private readonly FsmGatewayOptions _options = options.Value;
    private HashSet<Diagnostic> _previousDiagnostics = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var snapshots = Channel.CreateBounded<ConfigSnapshot>(new BoundedChannelOptions(1)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
        });
        var sourceList = sources.ToList();
        if (sourceList.Count == 0)
        {
            LogNoSources(logger);
            return;
        }

        LogWaitingForSources(logger, string.Join(", ", sourceList.Select(static s => s.Name)));
        using var subscription = ConfigPipeline
            .Snapshots(sourceList, _options.Debounce, _options.MaxDelay, _options.Scheduler ?? TaskPoolScheduler.Default)
            .Subscribe(
                snapshot => snapshots.Writer.TryWrite(snapshot),
                error =>
                {
                    LogPipelineBroken(logger, error);
                    snapshots.Writer.TryComplete(error);
                });

        var compilerOptions = new CompilerOptions
        {
            ControllerName = _options.ControllerName,
            ImplicitGatewayClassName = _options.ImplicitGatewayClassName,
            GatewaysHaveOwnAddresses = _options.GatewaysHaveOwnAddresses,
        };
        ConfigSnapshot? current = null;
        var retryBinds = false;
        Task<bool>? pendingWait = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            // One wait on the channel at a time, kept across bind retries, so retries never pile up waiters.
            pendingWait ??= WaitForSnapshotAsync(snapshots.Reader, stoppingToken);
            if (retryBinds && current is not null)
            {
                await Task.WhenAny(pendingWait, Task.Delay(_options.BindRetryInterval, time, stoppingToken)).ConfigureAwait(false);
            }
            else
            {
                await pendingWait.ConfigureAwait(false);
            }

            stoppingToken.ThrowIfCancellationRequested();
            if (pendingWait.IsCompleted)
            {
                pendingWait = null;
            }

            var next = snapshots.Reader.TryRead(out var snapshot) ? snapshot : null;
            if (next is null && current is null)
            {
                continue;
            }

            var first = current is null;
            current = next ?? current!;
            try
            {
                retryBinds = await ApplyAsync(current, compilerOptions, first, stoppingToken).ConfigureAwait(false);
            }
            catch (StopRequestedException)
            {
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Whatever went wrong with this config, what is serving keeps serving; the next change is tried afresh.
                LogApplyFailed(logger, e, current.Revision);
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        // Readiness goes false first, so a load balancer stops sending before the listeners close.
        state.Stopping();
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        LogDraining(logger, proxy.ActiveConnections);
        await proxy.StopAsync(cancellationToken).ConfigureAwait(false);
        LogStopped(logger);
    }

    /// <summary>Compiles, applies, compiles again with what was really bound, and publishes. Returns whether a port failed to bind.</summary>
    private async Task<bool> ApplyAsync(ConfigSnapshot snapshot, CompilerOptions compilerOptions, bool first, CancellationToken stoppingToken)
    {
        ListenerBindings bindings;
        CompilationResult result;
        if (_options.ServeTraffic)
        {
            result = RouteCompiler.Compile(snapshot, compilerOptions, ListenerBindings.Pending);
            bindings = await proxy.ApplyAsync(Served(result.Table), stoppingToken).ConfigureAwait(false);
            result = RouteCompiler.Compile(snapshot, compilerOptions, bindings);
        }
        else
        {
            bindings = ListenerBindings.AssumeAllBound;
            result = RouteCompiler.Compile(snapshot, compilerOptions, bindings);
        }

        // The data plane of one Gateway is ready only once it serves something of it (else a load balancer would send
        // connections to a pod that refuses them).
        var serving = _options.ServedGateway is null || !_options.ServeTraffic || bindings.ByPort.Values.Any(static b => b.State == BindState.Bound);
        state.Applied(result, serving);
        LogNewDiagnostics(result);
        foreach (var sink in sinks)
        {
            try
            {
                await sink.PublishAsync(result.Statuses, stoppingToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogSinkFailed(logger, e, sink.GetType().Name);
            }
        }

        var failed = bindings.ByPort.Where(static p => p.Value.State == BindState.Failed).ToList();
        if (first)
        {
            if (failed.Count > 0 && failed.Count == bindings.ByPort.Count)
            {
                var failures = string.Join("; ", failed.Select(static f => $"port {f.Key}: {f.Value.Message}"));
                LogNothingBound(logger, failures);
                if (_options.StopWhenNothingBinds)
                {
                    state.Failed(failures);
                    lifetime.StopApplication();
                    throw new StopRequestedException();
                }
            }

            LogReady(logger, _options.ServeTraffic ? Served(result.Table).Listeners.Length : 0, snapshot.Revision);
        }

        return failed.Count > 0;
    }

    /// <summary>The part of <paramref name="table"/> this process binds: every listener, or those of <see cref="FsmGatewayOptions.ServedGateway"/>.</summary>
    private RoutingTable Served(RoutingTable table) => _options.ServedGateway is { } gateway
        ? new RoutingTable([.. table.Listeners.Where(l => l.Gateway == gateway)])
        : table;

    /// <summary>True when a snapshot may be read; false, after logging, when the pipeline has ended (keep serving what is served).</summary>
    private async Task<bool> WaitForSnapshotAsync(ChannelReader<ConfigSnapshot> reader, CancellationToken cancellationToken)
    {
        try
        {
            if (await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                return true;
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Already logged where the pipeline broke.
        }

        // No more config will come; keep serving until stopped.
        await Task.Delay(Timeout.InfiniteTimeSpan, time, cancellationToken).ConfigureAwait(false);
        return false;
    }

    private void LogNewDiagnostics(CompilationResult result)
    {
        var current = result.Diagnostics.ToHashSet();
        foreach (var diagnostic in result.Diagnostics.Where(d => !_previousDiagnostics.Contains(d)))
        {
            var subject = diagnostic.Object?.ToString() ?? "config";
            if (diagnostic.Severity == DiagnosticSeverity.Warning)
            {
                LogDiagnosticWarning(logger, subject, diagnostic.Message);
            }
            else
            {
                LogDiagnostic(logger, subject, diagnostic.Message);
            }
        }

        _previousDiagnostics = current;
    }

    [LoggerMessage(10, LogLevel.Error, "Applying config revision {Revision} failed; what was serving keeps serving")]
    private static partial void LogApplyFailed(ILogger logger, Exception exception, long revision);

    [LoggerMessage(11, LogLevel.Error, "Status sink {Sink} failed")]
    private static partial void LogSinkFailed(ILogger logger, Exception exception, string sink);

    private sealed class StopRequestedException : Exception;

    [LoggerMessage(9, LogLevel.Warning, "No config source is registered, so there is nothing to serve; add one (LoadFromMemory, LoadFromManifests, AddConfigSource)")]
    private static partial void LogNoSources(ILogger logger);

    [LoggerMessage(1, LogLevel.Information, "Waiting for every config source to sync: {Sources}")]
    private static partial void LogWaitingForSources(ILogger logger, string sources);

    [LoggerMessage(2, LogLevel.Critical, "The config pipeline broke; what is serving keeps serving, but no further config will be applied")]
    private static partial void LogPipelineBroken(ILogger logger, Exception exception);

    [LoggerMessage(3, LogLevel.Critical, "No listener could be bound, so nothing is served: {Failures}. Free the port(s) or change the Gateway's listeners.")]
    private static partial void LogNothingBound(ILogger logger, string failures);

    [LoggerMessage(4, LogLevel.Information, "Gateway ready: {Listeners} listener(s) serving, config revision {Revision}")]
    private static partial void LogReady(ILogger logger, int listeners, long revision);

    [LoggerMessage(5, LogLevel.Information, "Stopping: no new connections; draining {Count} open connection(s)")]
    private static partial void LogDraining(ILogger logger, int count);

    [LoggerMessage(6, LogLevel.Information, "Stopped")]
    private static partial void LogStopped(ILogger logger);

    [LoggerMessage(7, LogLevel.Information, "{Subject}: {Message}")]
    private static partial void LogDiagnostic(ILogger logger, string subject, string message);

    [LoggerMessage(8, LogLevel.Warning, "{Subject}: {Message}")]
    private static partial void LogDiagnosticWarning(ILogger logger, string subject, string message);
}
