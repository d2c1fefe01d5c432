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
            SingleReader = false,
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
        };
        ConfigSnapshot? current = null;
        var retryBinds = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            var next = await NextSnapshotAsync(snapshots.Reader, retryBinds, stoppingToken).ConfigureAwait(false);
            if (next is null && current is null)
            {
                continue;
            }

            var first = current is null;
            current = next ?? current!;
            var result = RouteCompiler.Compile(current, compilerOptions, ListenerBindings.Pending);
            var bindings = await proxy.ApplyAsync(result.Table, stoppingToken).ConfigureAwait(false);
            result = RouteCompiler.Compile(current, compilerOptions, bindings);
            state.Applied(result);
            LogNewDiagnostics(result);
            foreach (var sink in sinks)
            {
                await sink.PublishAsync(result.Statuses, stoppingToken).ConfigureAwait(false);
            }

            var failed = bindings.ByPort.Where(static p => p.Value.State == BindState.Failed).ToList();
            retryBinds = failed.Count > 0;
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
                        return;
                    }
                }

                LogReady(logger, result.Table.Listeners.Length, current.Revision);
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        LogDraining(logger, proxy.ActiveConnections);
        await proxy.StopAsync(cancellationToken).ConfigureAwait(false);
        LogStopped(logger);
    }

    /// <summary>The next snapshot; null when the bind-retry interval passed first (re-apply the current one).</summary>
    private async Task<ConfigSnapshot?> NextSnapshotAsync(ChannelReader<ConfigSnapshot> reader, bool retryBinds, CancellationToken cancellationToken)
    {
        var wait = reader.WaitToReadAsync(cancellationToken).AsTask();
        if (retryBinds)
        {
            try
            {
                await wait.WaitAsync(_options.BindRetryInterval, time, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                return null;
            }
        }

        if (!await wait.ConfigureAwait(false))
        {
            // The pipeline completed: nothing more will come.
            await Task.Delay(Timeout.InfiniteTimeSpan, time, cancellationToken).ConfigureAwait(false);
        }

        return reader.TryRead(out var snapshot) ? snapshot : null;
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

    [LoggerMessage(9, LogLevel.Warning, "No config source is registered, so there is nothing to serve; add one (LoadFromMemory, LoadFromManifests, AddConfigSource)")]
    private static partial void LogNoSources(ILogger logger);

    [LoggerMessage(1, LogLevel.Information, "Waiting for every config source to sync: {Sources}")]
    private static partial void LogWaitingForSources(ILogger logger, string sources);

    [LoggerMessage(2, LogLevel.Critical, "The config pipeline broke; no further config will be applied")]
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
