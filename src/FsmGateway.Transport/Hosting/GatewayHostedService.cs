using System.Diagnostics.Metrics;
using System.Reactive.Concurrency;
using System.Threading.Channels;
using FsmGateway.Configuration;
using FsmGateway.Resources;
using FsmGateway.Routing;
using FsmGateway.Status;
using FsmGateway.Transport.Proxy;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FsmGateway.Transport.Hosting;

/// <summary>
/// The pipeline: sources → snapshots (merged, reduced, synced, debounced) → compile → apply to the proxy → statuses.
/// Compiles only the latest snapshot when several queue up. On stop, the proxy stops accepting and drains. A
/// <see cref="GatewayMode.Controller"/> binds nothing and builds no proxy at all.
/// </summary>
internal sealed partial class GatewayHostedService(
    IEnumerable<IConfigSource> sources,
    IServiceProvider services,
    IEnumerable<IStatusSink> sinks,
    GatewayRuntimeState state,
    IOptions<FsmGatewayOptions> options,
    IOptions<GatewayControllerOptions> controller,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    ILogger<GatewayHostedService> logger,
    IEnumerable<IListenerBindingsSource> bindingSources,
    IEnumerable<IProvisionedDataPlanesSource> dataPlaneSources,
    IMeterFactory? meterFactory = null) : BackgroundService
{
    private readonly FsmGatewayOptions _options = options.Value;

    /// <summary>The proxy that binds and serves; none in a controller, which serves no traffic.</summary>
    private readonly GatewayProxy? _proxy = options.Value.Mode == GatewayMode.Controller ? null : services.GetRequiredService<GatewayProxy>();
    private readonly ConfigMetrics _metrics = new(meterFactory);

    /// <summary>
    /// The compilers of the first pass (nothing bound yet) and of the pass with what was bound (a controller's only
    /// pass): each recomputes only the listeners an EndpointSlice change reaches when nothing else changed.
    /// </summary>
    private readonly IncrementalRouteCompiler _unboundCompiler = new();
    private readonly IncrementalRouteCompiler _compiler = new();

    /// <summary>The revision last applied, so that re-applying it (to retry binds) does not count as a new revision.</summary>
    private long? _appliedRevision;
    /// <summary>Stands for "nothing applied yet", so the first apply always logs whether it serves.</summary>
    private const string NotYetApplied = "\0";

    private HashSet<Diagnostic> _previousDiagnostics = [];

    private string? _notServing = NotYetApplied;

    /// <summary>
    /// For a process that serves no traffic, what data planes elsewhere reported binding (a controller's config-stream
    /// reports); null when no such source is registered, and statuses are then computed as if every listener were bound.
    /// </summary>
    private readonly IListenerBindingsSource? _bindingSource = bindingSources.FirstOrDefault();
    private ListenerBindings? _reported;

    /// <summary>What a provisioning controller found of its data planes (a compiler input); null until it says, and when it provisions nothing.</summary>
    private readonly IProvisionedDataPlanesSource? _dataPlaneSource = dataPlaneSources.FirstOrDefault();
    private ProvisionedDataPlanes? _provisioned;

    /// <summary>Runs the pipeline; should it ever end but by a stop, the liveness probe fails so the process is restarted.</summary>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await RunPipelineAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
        {
            PipelineEnded(ErrorText.Of(e), e);
        }
    }

    private async Task RunPipelineAsync(CancellationToken stoppingToken)
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

        // The newest snapshot, written to the channel again when data planes report new bind outcomes so that it is
        // compiled again with them. One lock orders both writers, so a re-written snapshot never displaces a newer one.
        var newest = new object();
        ConfigSnapshot? latest = null;
        using var reports = _proxy is not null || _bindingSource is null
            ? null
            : _bindingSource.Bindings.Subscribe(bindings =>
            {
                lock (newest)
                {
                    Volatile.Write(ref _reported, bindings);
                    if (latest is not null)
                    {
                        snapshots.Writer.TryWrite(latest);
                    }
                }
            });
        using var provisioned = _proxy is not null || _dataPlaneSource is null
            ? null
            : _dataPlaneSource.DataPlanes.Subscribe(dataPlanes =>
            {
                lock (newest)
                {
                    Volatile.Write(ref _provisioned, dataPlanes);
                    if (latest is not null)
                    {
                        snapshots.Writer.TryWrite(latest);
                    }
                }
            });
        using var subscription = ConfigPipeline
            .Snapshots(sourceList, _options.Debounce, _options.MaxDelay, _options.Scheduler ?? TaskPoolScheduler.Default, OnSourceFault)
            .Subscribe(
                snapshot =>
                {
                    lock (newest)
                    {
                        latest = snapshot;
                        snapshots.Writer.TryWrite(snapshot);
                    }
                },
                error =>
                {
                    PipelineEnded(ErrorText.Of(error), error);
                    snapshots.Writer.TryComplete(error);
                },
                () =>
                {
                    PipelineEnded("the snapshot stream completed", exception: null);
                    snapshots.Writer.TryComplete();
                });

        var compilerOptions = new CompilerOptions
        {
            ControllerName = controller.Value.ControllerName,
            ImplicitGatewayClassName = _options.ImplicitGatewayClassName,
            GatewaysHaveOwnAddresses = _options.Mode != GatewayMode.Standalone,

            // A controller serves no traffic (its data planes compile their own Gateways): its table need not list the
            // cluster's endpoints, and its compiles read one per Service instead of all of them.
            ListEndpoints = _proxy is not null,
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
            catch (Exception) when (stoppingToken.IsCancellationRequested)
            {
                // The host is stopping, or failed to start and is disposing what this apply uses: no config failure.
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Whatever went wrong with this config, what is serving keeps serving; the next change is tried afresh.
                _metrics.ApplyFailed();
                LogApplyFailed(logger, current.Revision, e.GetType().Name, e.Message);
                LogApplyFailedTrace(logger, e);
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        // Readiness goes false first, so a load balancer stops sending before the listeners close.
        state.Stopping();
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        if (_proxy is not null)
        {
            LogDraining(logger, _proxy.ActiveConnections);
            await _proxy.StopAsync(cancellationToken).ConfigureAwait(false);
        }

        LogStopped(logger);
    }

    /// <summary>Compiles, applies, compiles again with what was really bound, and publishes. Returns whether a port failed to bind.</summary>
    private async Task<bool> ApplyAsync(ConfigSnapshot snapshot, CompilerOptions compilerOptions, bool first, CancellationToken stoppingToken)
    {
        ListenerBindings bindings;
        CompilationResult result;
        // The compiler is pure; its time is measured here, once per revision (both passes when serving).
        var compiling = time.GetTimestamp();
        if (_proxy is not null)
        {
            result = _unboundCompiler.Compile(snapshot, compilerOptions, ListenerBindings.Pending);
            var compileTime = time.GetElapsedTime(compiling);
            bindings = await _proxy.ApplyAsync(Served(result.Table), stoppingToken).ConfigureAwait(false);
            compiling = time.GetTimestamp();
            result = _compiler.Compile(snapshot, compilerOptions, bindings);
            _metrics.Compiled(compileTime + time.GetElapsedTime(compiling));
        }
        else
        {
            bindings = _bindingSource is null ? ListenerBindings.AssumeAllBound : Volatile.Read(ref _reported) ?? ListenerBindings.Pending;
            result = _compiler.Compile(snapshot, compilerOptions, bindings, Volatile.Read(ref _provisioned));
            _metrics.Compiled(time.GetElapsedTime(compiling));
        }

        _metrics.Applied(snapshot, result, newRevision: _appliedRevision != snapshot.Revision, time.GetUtcNow());
        _appliedRevision = snapshot.Revision;

        // Ready means serving: a gateway with no listener bound is not ready (else a load balancer would send
        // connections to a process that refuses them), and says why; a good config later makes it ready.
        var notServing = WhyNotServing(snapshot, result, bindings);
        state.Applied(snapshot, result, bindings, notServing);
        LogNewDiagnostics(result);
        foreach (var sink in sinks)
        {
            try
            {
                await sink.PublishAsync(result.Statuses, stoppingToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogSinkFailed(logger, sink.GetType().Name, e.GetType().Name, e.Message);
                LogSinkFailedTrace(logger, e);
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

        }

        if (notServing != _notServing)
        {
            if (notServing is null)
            {
                LogReady(logger, _proxy is not null ? Served(result.Table).Listeners.Count(l => bindings.For(l.Port).State == BindState.Bound) : 0, snapshot.Revision);
            }
            else
            {
                LogNotServing(logger, LogText.Escape(notServing, LogText.MaxMessageLength), snapshot.Revision);
            }

            _notServing = notServing;
        }

        return failed.Count > 0;
    }

    /// <summary>
    /// Null when this process serves what it should: it binds nothing by design (a controller), or a listener is bound.
    /// Otherwise why nothing is served, in the operator's terms: no Gateway, a Gateway not accepted (and why), no valid
    /// listener, or no listener that could be bound.
    /// </summary>
    private string? WhyNotServing(ConfigSnapshot snapshot, CompilationResult result, ListenerBindings bindings)
    {
        if (_proxy is null)
        {
            return null;
        }

        var served = Served(result.Table).Listeners;
        if (served.Any(l => bindings.For(l.Port).State == BindState.Bound))
        {
            return null;
        }

        if (served.Length > 0)
        {
            var failures = served.Select(l => l.Port).Distinct().Order()
                .Select(port => $"port {port}: {bindings.For(port).Message ?? "not bound yet"}");
            return $"no listener could be bound ({string.Join("; ", failures)})";
        }

        var gateways = snapshot.OfType<Gateway>().Where(g => _options.ServedGateway is not { } only || g.Key == only).ToList();
        if (gateways.Count == 0)
        {
            return _options.ServedGateway is { } missing
                ? $"{missing} is not in the config"
                : "the config holds no Gateway";
        }

        return "no listener to serve: " + string.Join("; ", gateways.Select(g => WhyNothingServed(g, result.Statuses)));
    }

    private static string WhyNothingServed(Gateway gateway, StatusSet statuses)
    {
        if (!statuses.Gateways.TryGetValue(gateway.Key, out var status))
        {
            return $"{gateway.Key} is not ours (gatewayClassName '{gateway.GatewayClassName}')";
        }

        var accepted = status.Conditions.FirstOrDefault(static c => c.Type == ConditionTypes.Accepted);
        if (accepted is not null && accepted.Status != ConditionStatus.True)
        {
            return $"{gateway.Key} is not accepted: {accepted.Reason} ({accepted.Message})";
        }

        var listeners = status.Listeners
            .Select(static l => (l.Name, Problem: l.Conditions.FirstOrDefault(static c => c.Type == ConditionTypes.Accepted && c.Status != ConditionStatus.True)))
            .Where(static l => l.Problem is not null)
            .Select(static l => $"listener {l.Name}: {l.Problem!.Reason} ({l.Problem.Message})")
            .ToList();
        return listeners.Count > 0
            ? $"{gateway.Key} has no valid listener ({string.Join("; ", listeners)})"
            : $"{gateway.Key} has no listener";
    }

    private void OnSourceFault(ConfigSourceFault fault)
    {
        if (fault.RetryAfter is { } retry)
        {
            LogSourceFaulted(logger, LogText.Escape(fault.Source), fault.Exception.GetType().Name, LogText.Escape(fault.Exception.Message, LogText.MaxMessageLength), retry);
        }
        else
        {
            LogEventSkipped(logger, LogText.Escape(fault.Source), fault.Exception.GetType().Name, LogText.Escape(fault.Exception.Message, LogText.MaxMessageLength));
        }

        LogFaultTrace(logger, fault.Exception);
    }

    private void PipelineEnded(string reason, Exception? exception)
    {
        state.PipelineEnded(reason);
        LogPipelineBroken(logger, LogText.Escape(reason, LogText.MaxMessageLength));
        if (exception is not null)
        {
            LogFaultTrace(logger, exception);
        }
    }

    /// <summary>The part of <paramref name="table"/> this process binds: every listener, or a data plane's Gateway's (<see cref="FsmGatewayOptions.ServedGateway"/>).</summary>
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
            var subject = LogText.Escape(diagnostic.Object?.ToString() ?? "config");
            if (diagnostic.Severity == DiagnosticSeverity.Warning)
            {
                LogDiagnosticWarning(logger, subject, LogText.Escape(diagnostic.Message, LogText.MaxMessageLength));
            }
            else
            {
                LogDiagnostic(logger, subject, LogText.Escape(diagnostic.Message, LogText.MaxMessageLength));
            }
        }

        _previousDiagnostics = current;
    }

    [LoggerMessage(10, LogLevel.Error, "Applying config revision {Revision} failed ({ExceptionType}: {ExceptionMessage}); what was serving keeps serving")]
    private static partial void LogApplyFailed(ILogger logger, long revision, string exceptionType, string exceptionMessage);

    [LoggerMessage(12, LogLevel.Debug, "Applying config failed")]
    private static partial void LogApplyFailedTrace(ILogger logger, Exception exception);

    [LoggerMessage(11, LogLevel.Error, "Status sink {Sink} failed ({ExceptionType}: {ExceptionMessage})")]
    private static partial void LogSinkFailed(ILogger logger, string sink, string exceptionType, string exceptionMessage);

    [LoggerMessage(13, LogLevel.Debug, "Status sink failed")]
    private static partial void LogSinkFailedTrace(ILogger logger, Exception exception);

    [LoggerMessage(14, LogLevel.Error, "Config source {Source} failed ({ExceptionType}: {ExceptionMessage}); keeping its last objects, subscribing again in {RetryAfter}")]
    private static partial void LogSourceFaulted(ILogger logger, string source, string exceptionType, string exceptionMessage, TimeSpan retryAfter);

    [LoggerMessage(15, LogLevel.Error, "A change from config source {Source} could not be applied and was skipped ({ExceptionType}: {ExceptionMessage})")]
    private static partial void LogEventSkipped(ILogger logger, string source, string exceptionType, string exceptionMessage);

    [LoggerMessage(16, LogLevel.Debug, "The config pipeline's fault, with its trace")]
    private static partial void LogFaultTrace(ILogger logger, Exception exception);

    [LoggerMessage(17, LogLevel.Warning, "Not ready, serving nothing: {Reason} (config revision {Revision}); waiting for config with a listener that can be bound")]
    private static partial void LogNotServing(ILogger logger, string reason, long revision);

    private sealed class StopRequestedException : Exception;

    [LoggerMessage(9, LogLevel.Warning, "No config source is registered, so there is nothing to serve; add one (LoadFromMemory, LoadFromManifests, AddConfigSource)")]
    private static partial void LogNoSources(ILogger logger);

    [LoggerMessage(1, LogLevel.Information, "Waiting for every config source to sync: {Sources}")]
    private static partial void LogWaitingForSources(ILogger logger, string sources);

    [LoggerMessage(2, LogLevel.Critical, "The config pipeline ended ({Reason}); what is serving keeps serving, but no further config will be applied, so /healthz now fails")]
    private static partial void LogPipelineBroken(ILogger logger, string reason);

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
