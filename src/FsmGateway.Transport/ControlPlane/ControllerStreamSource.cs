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

    /// <summary>Why the last TLS handshake's certificate was refused (null when it was not): written by the handshake, read when the stream fails.</summary>
    private volatile string? _rejection;

    /// <summary>Streams that ended or failed so far (for tests and the log).</summary>
    internal int Disconnects { get; private set; }

    private async Task RunAsync(IObserver<ConfigEvent> observer, CancellationToken cancellationToken)
    {
        var backoff = new ReconnectBackoff(_options.MinReconnectDelay, _options.MaxReconnectDelay, _random);
        var next = 0;
        var gateway = _options.Gateway!.Value;
        while (!cancellationToken.IsCancellationRequested)
        {
            var address = _options.Addresses[next++ % _options.Addresses.Count];
            string why;
            try
            {
                var synced = await StreamAsync(address, gateway, observer, backoff, cancellationToken).ConfigureAwait(false);
                why = synced ? "the controller ended the stream" : "the controller ended the stream before sending the config";
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (RpcException e)
            {
                // A certificate the data plane refused surfaces as an unavailable call: say why it was refused.
                why = _rejection is { } refused ? $"refused the controller: {refused}" : $"{e.StatusCode}: {e.Status.Detail}";
                LogStreamFailureTrace(_logger, e);
            }
#pragma warning disable CA1031 // Whatever broke this stream (a bad message, an I/O error), the data plane connects again.
            catch (Exception e)
#pragma warning restore CA1031
            {
                why = _rejection is { } refused ? $"refused the controller: {refused}" : ErrorText.Of(e);
                LogStreamFailureTrace(_logger, e);
            }

            Disconnects++;
            var delay = backoff.Next();
            LogDisconnected(_logger, LogText.Escape(address.ToString()), LogText.Escape(why, LogText.MaxMessageLength), delay.TotalMilliseconds);
            await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>One stream, until it ends. Returns whether it synced.</summary>
    private async Task<bool> StreamAsync(Uri address, ResourceKey gateway, IObserver<ConfigEvent> observer, ReconnectBackoff backoff, CancellationToken cancellationToken)
    {
        _rejection = null;
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
                _rejection = ControllerTls.Reject(certificate, errors, authorities);
                return _rejection is null;
            };
        }

        var headers = new Metadata();
        if (_options.TokenFile is { } tokenFile)
        {
            var (token, error) = ControllerTls.ReadToken(tokenFile);
            if (token is null)
            {
                handler.Dispose();
                throw new InvalidDataException($"--controller-token-file {error}");
            }

            headers.Add("authorization", $"Bearer {token}");
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
        using var stream = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
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
                                observer.OnNext(new ConfigEvent.SourceReset(Name, [.. pending.Values]));
                                LogSynced(_logger, pending.Count, batch.Revision);
                                pending = null;
                                synced = true;
                                backoff.Reset();
                            }
                        }
                        else if (synced)
                        {
                            foreach (var upsert in batch.Upserts)
                            {
                                if (Decode(upsert) is { } resource)
                                {
                                    observer.OnNext(new ConfigEvent.Upserted(Name, resource));
                                }
                            }

                            foreach (var deleted in batch.Deletes)
                            {
                                if (ModelCodec.Decode(deleted) is { } key)
                                {
                                    observer.OnNext(new ConfigEvent.Deleted(Name, key));
                                }
                            }
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
}
