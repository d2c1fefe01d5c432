using System.Net;
using System.Net.Http;
using System.Reactive.Linq;
using System.Threading.Channels;
using FsmGateway.Configuration;
using FsmGateway.Resources;
using FsmGateway.Routing;
using FsmGateway.Transport.ControlPlane.Protocol;
using Resource = FsmGateway.Resources.Resource;
using ResourceKey = FsmGateway.Resources.ResourceKey;
using ResourceKind = FsmGateway.Resources.ResourceKind;
using FsmGateway.Transport.Hosting;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FsmGateway.Transport.ControlPlane;

/// <summary>
/// The fourth kind of config source: a controller's config stream (ADR 0010). Subscribes for one Gateway, turns the
/// first full set into one <see cref="ConfigEvent.SourceReset"/> (so the gateway starts, and becomes ready, only once
/// it has its whole config) and later batches into upserts and deletes. Reports each apply's bind outcomes on the same
/// stream. When the stream ends or fails it says nothing to the pipeline (the last config keeps serving) and connects
/// again, to the next address, after a jittered back-off on <see cref="TimeProvider"/>; the full set a new stream starts
/// with arrives as a reset equal to what is held, so nothing is applied again and no connection is touched.
/// </summary>
internal sealed partial class ControllerStreamSource : IConfigSource
{
    /// <summary>The protocol version this side speaks; see config_stream.proto.</summary>
    public const uint ProtocolVersion = 1;

    private readonly ControllerStreamOptions _options;
    private readonly GatewayRuntimeState _state;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Func<double> _random;
    private readonly HttpMessageHandler? _handler;

    public ControllerStreamSource(IOptions<ControllerStreamOptions> options, GatewayRuntimeState state, TimeProvider time, ILogger<ControllerStreamSource> logger)
        : this(options.Value, state, time, logger, Random.Shared.NextDouble, handler: null)
    {
    }

    /// <summary>For tests: the jitter's random numbers and the HTTP handler may be given.</summary>
    internal ControllerStreamSource(ControllerStreamOptions options, GatewayRuntimeState state, TimeProvider time, ILogger logger, Func<double> random, HttpMessageHandler? handler)
    {
        _options = options;
        _state = state;
        _time = time;
        _logger = logger;
        _random = random;
        _handler = handler;
        Events = Observable.Create<ConfigEvent>((observer, cancellationToken) => RunAsync(observer, cancellationToken));
    }

    /// <summary>The source's name in the config pipeline.</summary>
    public const string SourceName = "controller";

    /// <inheritdoc />
    public string Name => SourceName;

    /// <inheritdoc />
    public IObservable<ConfigEvent> Events { get; }

    /// <summary>Streams that ended or failed so far (for tests and the log).</summary>
    internal int Disconnects { get; private set; }

    private async Task RunAsync(IObserver<ConfigEvent> observer, CancellationToken cancellationToken)
    {
        var backoff = new ReconnectBackoff(_options.MinReconnectDelay, _options.MaxReconnectDelay, _random);
        var next = 0;
        var gateway = _options.Gateway!.Value;
        using var output = new Output(observer);
        while (!cancellationToken.IsCancellationRequested)
        {
            var address = _options.Addresses[next++ % _options.Addresses.Count];
            string why;
            try
            {
                why = await SuperviseAsync(address, gateway, output, backoff, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }

            Disconnects++;
            var delay = backoff.Next();
            LogDisconnected(_logger, LogText.Escape(address.ToString()), LogText.Escape(why, LogText.MaxMessageLength), delay.TotalMilliseconds);
            await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Runs streams to <paramref name="address"/> until one ends other than by being replaced, and returns why it ended.
    /// While a stream runs, the token file is read every
    /// <see cref="ControllerStreamOptions.TokenFileCheckInterval"/>: when the kubelet has renewed it, a second stream is
    /// opened with the new token and, once it has synced, takes over from the first, which is closed (its requests
    /// completed, so the controller ends it cleanly): the data plane never goes without a stream, and the controller
    /// never has to end a stream whose token expired.
    /// </summary>
    private async Task<string> SuperviseAsync(Uri address, ResourceKey gateway, Output output, ReconnectBackoff backoff, CancellationToken cancellationToken)
    {
        var current = new Attempt(output.NextId());
        var running = StreamAsync(current, address, gateway, output, backoff, ReadToken, cancellationToken);
        _ = GiveUpUnlessSyncedAsync(current, running);
        if (_options.TokenFile is not { } tokenFile)
        {
            return await WhyEndedAsync(running, current, cancellationToken).ConfigureAwait(false);
        }

        string? refusedToken = null;
        using var watching = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        try
        {
            while (true)
            {
                var tick = Task.Delay(_options.TokenFileCheckInterval, _time, watching.Token);
                if (await Task.WhenAny(running, tick).ConfigureAwait(false) == running)
                {
                    return await WhyEndedAsync(running, current, cancellationToken).ConfigureAwait(false);
                }

                await tick.ConfigureAwait(false);
                if (ControllerTls.ReadToken(tokenFile).Token is not { } renewed || renewed == current.Token || renewed == refusedToken)
                {
                    continue; // unchanged, or unreadable mid-swap (read again next time), or already tried and refused
                }

                LogTokenRenewed(_logger, LogText.Escape(address.ToString()));
                var replacement = new Attempt(output.NextId());
                var replacing = StreamAsync(replacement, address, gateway, output, backoff, () => renewed, cancellationToken);
                using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(watching.Token))
                {
                    var timeout = Task.Delay(_options.SyncTimeout, _time, deadline.Token);
                    var first = await Task.WhenAny(replacement.Synced.Task, replacing, running, timeout).ConfigureAwait(false);
                    await deadline.CancelAsync().ConfigureAwait(false);
                    if (first == timeout && await output.TryRetireAsync(replacement, cancellationToken).ConfigureAwait(false))
                    {
                        // The new stream did not sync in time (a controller that accepts and then sends nothing, a
                        // connect that hangs): give it up, keep the old one, and try the renewed token again at the
                        // next check. It can no longer take over: retired under the output's gate.
                        replacement.GiveUp();
                        var given = await WhyEndedAsync(replacing, replacement, cancellationToken).ConfigureAwait(false);
                        LogSwitchTimedOut(_logger, LogText.Escape(address.ToString()), _options.SyncTimeout.TotalSeconds, LogText.Escape(given, LogText.MaxMessageLength), _options.TokenFileCheckInterval.TotalSeconds);
                        continue;
                    }

                    if (first == timeout)
                    {
                        // It took over just as the deadline passed: it syncs now.
                        await replacement.Synced.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
                    }
                }
                if (!replacement.Synced.Task.IsCompleted && !replacing.IsCompleted)
                {
                    // The old stream ended while the new one was connecting: the new one carries on alone (and if it
                    // ends before it syncs, that is reported as any stream's end).
                    LogOldEndedFirst(_logger, LogText.Escape(address.ToString()), LogText.Escape(await WhyEndedAsync(running, current, cancellationToken).ConfigureAwait(false), LogText.MaxMessageLength));
                    (current, running) = (replacement, replacing);
                    _ = GiveUpUnlessSyncedAsync(current, running);
                    continue;
                }

                if (!replacement.Synced.Task.IsCompleted)
                {
                    // The new stream ended before it synced: keep the old one (its token is still good until it
                    // expires; if the controller ends it then, the data plane connects again as after any end).
                    refusedToken = renewed;
                    LogSwitchFailed(_logger, LogText.Escape(address.ToString()), LogText.Escape(await WhyEndedAsync(replacing, replacement, cancellationToken).ConfigureAwait(false), LogText.MaxMessageLength));
                    continue;
                }

                // The new stream delivers from now on (it took over the output when it synced); close the old one.
                current.Close();
                var old = await WhyEndedAsync(running, current, cancellationToken).ConfigureAwait(false);
                LogSwitched(_logger, LogText.Escape(address.ToString()), LogText.Escape(old, LogText.MaxMessageLength));
                (current, running) = (replacement, replacing);
            }
        }
        finally
        {
            await watching.CancelAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Gives the stream the data plane runs on up (it then connects again) unless it syncs within
    /// <see cref="ControllerStreamOptions.SyncTimeout"/> or ends first. Never throws.
    /// </summary>
    private async Task GiveUpUnlessSyncedAsync(Attempt attempt, Task<bool> running)
    {
        using var deadline = new CancellationTokenSource();
        var timeout = Task.Delay(_options.SyncTimeout, _time, deadline.Token);
        var first = await Task.WhenAny(attempt.Synced.Task, running, timeout).ConfigureAwait(false);
        await deadline.CancelAsync().ConfigureAwait(false);
        if (first == timeout && !attempt.Synced.Task.IsCompleted)
        {
            attempt.Unsynced = $"TimeoutException: no synced full set from the controller within {_options.SyncTimeout.TotalSeconds:0.###} s of connecting; gave the stream up";
            attempt.GiveUp();
        }
    }

    /// <summary>Why a stream ended, for the log: it never throws, but for the data plane stopping.</summary>
    private async Task<string> WhyEndedAsync(Task<bool> stream, Attempt attempt, CancellationToken cancellationToken)
    {
        try
        {
            return await stream.ConfigureAwait(false) ? "the controller ended the stream" : "the controller ended the stream before sending the config";
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (RpcException e)
        {
            // A certificate the data plane refused surfaces as an unavailable call: say why it was refused.
            LogStreamFailureTrace(_logger, e);
            return attempt.Unsynced ?? (attempt.Rejection is { } refused ? $"refused the controller: {refused}" : $"{e.StatusCode}: {e.Status.Detail}");
        }
#pragma warning disable CA1031 // Whatever broke this stream (a bad message, an I/O error), the data plane connects again.
        catch (Exception e)
#pragma warning restore CA1031
        {
            LogStreamFailureTrace(_logger, e);
            return attempt.Unsynced ?? (attempt.Rejection is { } refused ? $"refused the controller: {refused}" : ErrorText.Of(e));
        }
    }

    /// <summary>The token file's token (null without one); read at every connect, since the kubelet renews it.</summary>
    private string? ReadToken()
    {
        if (_options.TokenFile is not { } tokenFile)
        {
            return null;
        }

        var (token, error) = ControllerTls.ReadToken(tokenFile);
        return token ?? throw new InvalidDataException($"--controller-token-file {error}");
    }

    /// <summary>One stream, until it ends. Returns whether it synced.</summary>
    private async Task<bool> StreamAsync(Attempt attempt, Uri address, ResourceKey gateway, Output output, ReconnectBackoff backoff, Func<string?> token, CancellationToken cancellationToken)
    {
        // The CA and the token are read at every connect: the kubelet renews the token, and a replaced CA reaches
        // the mounted ConfigMap without a restart.
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = _options.ConnectTimeout,
            KeepAlivePingDelay = _options.KeepAliveInterval,
            KeepAlivePingTimeout = _options.KeepAliveInterval,
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
        };
        if (_options.CertificateAuthorityFile is { } caFile)
        {
            var (authorities, error) = ControllerTls.LoadAuthorities(caFile);
            if (authorities is null)
            {
                handler.Dispose();
                throw new InvalidDataException($"--controller-ca-file {error}");
            }

            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                attempt.Rejection = ControllerTls.Reject(certificate, errors, authorities);
                return attempt.Rejection is null;
            };
        }

        var headers = new Metadata();
        try
        {
            attempt.Token = token();
        }
        catch
        {
            handler.Dispose();
            throw;
        }

        if (attempt.Token is { } bearer)
        {
            headers.Add("authorization", $"Bearer {bearer}");
        }

        using var channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = _handler ?? handler,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = null,
        });
        if (_handler is not null)
        {
            handler.Dispose();
        }

        var client = new ConfigStream.ConfigStreamClient(channel);
        using var stream = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, attempt.GivenUp);
        using var call = client.Subscribe(headers, cancellationToken: stream.Token);
        await call.RequestStream.WriteAsync(new DataPlaneMessage
        {
            Hello = new Hello
            {
                ProtocolVersion = ProtocolVersion,
                GatewayNamespace = gateway.Namespace,
                GatewayName = gateway.Name,
                DataPlaneId = _options.DataPlaneId,
            },
        }, stream.Token).ConfigureAwait(false);

        // Reports go out from one loop (a stream takes one write at a time): what is bound now, at once (a controller
        // that just started knows nothing), then after every apply.
        var revision = 0L;
        var reportDue = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
        using var applied = _state.AppliedBindings.Subscribe(_ => reportDue.Writer.TryWrite(true));
        var reporting = ReportAsync(call.RequestStream, reportDue.Reader, () => Volatile.Read(ref revision), stream.Token);

        // Closed (replaced by a stream on a renewed token): the reports stop, the requests complete, and the controller
        // ends the call cleanly; one that does not within the connect timeout is cancelled.
        var closing = CloseWhenAskedAsync();
        async Task CloseWhenAskedAsync()
        {
            try
            {
                await attempt.Closed.Task.WaitAsync(stream.Token).ConfigureAwait(false);
                reportDue.Writer.TryComplete();
                await reporting.ConfigureAwait(false);
                await call.RequestStream.CompleteAsync().ConfigureAwait(false);
                await Task.Delay(_options.ConnectTimeout, _time, stream.Token).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // The stream ended, or is being given up: however its close went, it is cancelled below.
            catch (Exception)
#pragma warning restore CA1031
            {
            }

            await stream.CancelAsync().ConfigureAwait(false);
        }

        var synced = false;
        Dictionary<ResourceKey, Resource>? pending = null;
        try
        {
            await foreach (var message in call.ResponseStream.ReadAllAsync(stream.Token).ConfigureAwait(false))
            {
                switch (message.KindCase)
                {
                    case ControllerMessage.KindOneofCase.Welcome:
                        LogConnected(_logger, LogText.Escape(address.ToString()), LogText.Escape(message.Welcome.ControllerId), message.Welcome.ProtocolVersion, gateway.ToString());
                        break;
                    case ControllerMessage.KindOneofCase.Batch:
                        var batch = message.Batch;
                        if (batch.Reset)
                        {
                            pending ??= [];
                            foreach (var upsert in batch.Upserts)
                            {
                                if (Decode(upsert) is { } resource)
                                {
                                    pending[resource.Key] = resource;
                                }
                            }

                            if (batch.Synced)
                            {
                                // This stream delivers from now on (a stream it replaces delivers no more).
                                await output.TakeOverAsync(attempt, new ConfigEvent.SourceReset(Name, [.. pending.Values]), stream.Token).ConfigureAwait(false);
                                LogSynced(_logger, pending.Count, batch.Revision);
                                pending = null;
                                synced = true;
                                attempt.Synced.TrySetResult();
                                backoff.Reset();
                            }
                        }
                        else if (synced)
                        {
                            var events = new List<ConfigEvent>(batch.Upserts.Count + batch.Deletes.Count);
                            foreach (var upsert in batch.Upserts)
                            {
                                if (Decode(upsert) is { } resource)
                                {
                                    events.Add(new ConfigEvent.Upserted(Name, resource));
                                }
                            }

                            foreach (var deleted in batch.Deletes)
                            {
                                if (ModelCodec.Decode(deleted) is { } key)
                                {
                                    events.Add(new ConfigEvent.Deleted(Name, key));
                                }
                            }

                            await output.SendAsync(attempt, events, stream.Token).ConfigureAwait(false);
                        }

                        Volatile.Write(ref revision, batch.Revision);
                        break;
                    default:
                        LogUnknownMessage(_logger, (int)message.KindCase);
                        break;
                }
            }
        }
        finally
        {
            await stream.CancelAsync().ConfigureAwait(false);
            await closing.ConfigureAwait(false);
            try
            {
                await reporting.ConfigureAwait(false);
            }
#pragma warning disable CA1031 // The stream is over either way; why its report loop stopped is of no further use.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }

        return synced;
    }

    private async Task ReportAsync(IClientStreamWriter<DataPlaneMessage> requests, ChannelReader<bool> due, Func<long> revision, CancellationToken cancellationToken)
    {
        var first = true;
        while (first || await due.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            first = false;
            due.TryRead(out _);
            if (_state.CurrentBindings is not { } bindings)
            {
                continue;
            }

            var report = new Report { AppliedRevision = revision() };
            foreach (var (port, outcome) in bindings.ByPort)
            {
                report.Listeners.Add(new ListenerOutcome
                {
                    Port = port,
                    State = outcome.State switch
                    {
                        Routing.BindState.Bound => Protocol.BindState.Bound,
                        Routing.BindState.Failed => Protocol.BindState.Failed,
                        _ => Protocol.BindState.Pending,
                    },
                    Message = outcome.Message ?? string.Empty,
                });
            }

            await requests.WriteAsync(new DataPlaneMessage { Report = report }, cancellationToken).ConfigureAwait(false);
        }
    }

    private Resource? Decode(Protocol.Resource message)
    {
        var resource = ModelCodec.Decode(message);
        if (resource is null)
        {
            LogUnknownKind(_logger, (int)message.KindCase, LogText.Escape(message.Metadata?.Namespace ?? string.Empty), LogText.Escape(message.Metadata?.Name ?? string.Empty));
        }

        return resource;
    }

    /// <summary>One stream's state, as its supervisor and the output see it.</summary>
    private sealed class Attempt(long id)
    {
        /// <summary>Increasing per stream: a newer stream takes over from an older one, never the other way.</summary>
        public long Id => id;

        /// <summary>The token the stream was opened with (null without a token file).</summary>
        public string? Token { get; set; }

        /// <summary>Why the TLS handshake's certificate was refused (null when it was not): written by the handshake, read when the stream fails.</summary>
        public string? Rejection { get; set; }

        /// <summary>Why the stream was given up for not syncing in time (null when it was not).</summary>
        public string? Unsynced { get; set; }

        /// <summary>Completes when the stream has synced and delivers.</summary>
        public TaskCompletionSource Synced { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Completed to close the stream gracefully (another has taken over).</summary>
        public TaskCompletionSource Closed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Close() => Closed.TrySetResult();

        /// <summary>Cancelled to give the stream up (a stream on a renewed token that did not sync in time).</summary>
        public CancellationToken GivenUp => _giveUp.Token;

        /// <summary>Set under the output's gate: a retired stream never delivers.</summary>
        public bool Retired { get; set; }

        private readonly CancellationTokenSource _giveUp = new();

        public void GiveUp() => _giveUp.Cancel();
    }

    /// <summary>
    /// The pipeline's observer, shared by the streams of one subscription: one stream delivers at a time, the newest
    /// to have synced (its full set taking over from an older stream's), and never two at once. Waits asynchronously,
    /// so no thread that completes socket I/O blocks.
    /// </summary>
    private sealed class Output(IObserver<ConfigEvent> observer) : IDisposable
    {
        private readonly SemaphoreSlim _gate = new(1, 1);
        private long _lastId;
        private long _delivering;

        public long NextId() => Interlocked.Increment(ref _lastId);

        /// <summary>Delivers a stream's full set and makes it the one that delivers, unless a newer stream already does.</summary>
        public async Task TakeOverAsync(Attempt attempt, ConfigEvent reset, CancellationToken cancellationToken)
        {
            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (attempt.Id < _delivering || attempt.Retired)
                {
                    return;
                }

                _delivering = attempt.Id;
                observer.OnNext(reset);
            }
            finally
            {
                _gate.Release();
            }
        }

        /// <summary>
        /// Makes sure a stream never delivers from now on; false when it already does (it took over, so it cannot be
        /// given up).
        /// </summary>
        public async Task<bool> TryRetireAsync(Attempt attempt, CancellationToken cancellationToken)
        {
            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (_delivering == attempt.Id)
                {
                    return false;
                }

                attempt.Retired = true;
                return true;
            }
            finally
            {
                _gate.Release();
            }
        }

        /// <summary>Delivers a stream's changes while it is the one that delivers.</summary>
        public async Task SendAsync(Attempt attempt, List<ConfigEvent> events, CancellationToken cancellationToken)
        {
            if (events.Count == 0)
            {
                return;
            }

            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (attempt.Id != _delivering)
                {
                    return;
                }

                foreach (var e in events)
                {
                    observer.OnNext(e);
                }
            }
            finally
            {
                _gate.Release();
            }
        }

        public void Dispose() => _gate.Dispose();
    }

    [LoggerMessage(1, LogLevel.Information, "Config stream: connected to {Address} (controller {Controller}, protocol {Version}) for {Gateway}")]
    private static partial void LogConnected(ILogger logger, string address, string controller, uint version, string gateway);

    [LoggerMessage(2, LogLevel.Information, "Config stream: synced {Count} object(s) at controller revision {Revision}")]
    private static partial void LogSynced(ILogger logger, int count, long revision);

    [LoggerMessage(3, LogLevel.Warning, "Config stream from {Address} ended ({Reason}); keeping the last config, connecting again in {DelayMs:F0} ms")]
    private static partial void LogDisconnected(ILogger logger, string address, string reason, double delayMs);

    [LoggerMessage(4, LogLevel.Debug, "Config stream failure, in full")]
    private static partial void LogStreamFailureTrace(ILogger logger, Exception exception);

    [LoggerMessage(5, LogLevel.Warning, "Config stream: skipped an object of a kind this data plane does not know (field {Field}, {Namespace}/{Name}); is the controller newer?")]
    private static partial void LogUnknownKind(ILogger logger, int field, string @namespace, string name);

    [LoggerMessage(6, LogLevel.Warning, "Config stream: skipped a message of a kind this data plane does not know (field {Field})")]
    private static partial void LogUnknownMessage(ILogger logger, int field);

    [LoggerMessage(7, LogLevel.Information, "Config stream: the token file was renewed; opening a new stream to {Address} with the new token to take over from the current one")]
    private static partial void LogTokenRenewed(ILogger logger, string address);

    [LoggerMessage(8, LogLevel.Information, "Config stream: the stream on the renewed token to {Address} took over; the old one was closed ({Old})")]
    private static partial void LogSwitched(ILogger logger, string address, string old);

    [LoggerMessage(9, LogLevel.Information, "Config stream: the stream on the renewed token to {Address} ended before it synced ({Reason}); keeping the current stream until it ends")]
    private static partial void LogSwitchFailed(ILogger logger, string address, string reason);

    [LoggerMessage(11, LogLevel.Warning, "Config stream: the stream on the renewed token to {Address} did not sync within {TimeoutSeconds} s (TimeoutException: no synced full set from the controller; the stream: {Reason}); keeping the current stream, trying the renewed token again in {RetrySeconds} s")]
    private static partial void LogSwitchTimedOut(ILogger logger, string address, double timeoutSeconds, string reason, double retrySeconds);

    [LoggerMessage(10, LogLevel.Information, "Config stream: the old stream to {Address} ended ({Reason}) while the one on the renewed token was connecting; that one carries on")]
    private static partial void LogOldEndedFirst(ILogger logger, string address, string reason);
}
