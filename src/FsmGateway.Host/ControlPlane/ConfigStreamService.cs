using System.Collections.Immutable;
using System.Reactive.Linq;
using System.Threading.Channels;
using FsmGateway.Configuration;
using FsmGateway.Resources;
using FsmGateway.Routing;
using FsmGateway.Transport.ControlPlane;
using FsmGateway.Transport.ControlPlane.Protocol;
using Resource = FsmGateway.Resources.Resource;
using ResourceKey = FsmGateway.Resources.ResourceKey;
using ResourceKind = FsmGateway.Resources.ResourceKind;
using FsmGateway.Transport.Hosting;
using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FsmGateway.Host.ControlPlane;

/// <summary>
/// The controller's end of the config stream (ADR 0010), served by every replica. A data plane says which Gateway it
/// serves; it gets that Gateway's dependency closure (<see cref="GatewayClosure"/>) of the controller's latest applied
/// snapshot, first whole (ending in synced), then as upserts and deletes computed against what it was sent, whenever
/// <see cref="GatewayClosureFeed"/> finds that closure changed (a change that does not reach it wakes nothing here). Its reports of what it bound feed <see cref="DataPlaneReports"/>. A stream lasts no longer
/// than the credential it was admitted with: it ends (Unauthenticated) when the token expires, and when a review of
/// the token every <see cref="ConfigStreamServerOptions.TokenReviewInterval"/> refuses it (a revoked ServiceAccount, a
/// deleted pod); the data plane keeps serving and connects again with the token the kubelet renewed.
/// </summary>
internal sealed partial class ConfigStreamService(
    GatewayClosureFeed closures,
    DataPlaneReports reports,
    IDataPlaneAuthorizer authorizer,
    IOptions<ConfigStreamServerOptions> options,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILogger<ConfigStreamService> logger) : ConfigStream.ConfigStreamBase
{
    /// <summary>The protocol versions this controller serves, oldest first.</summary>
    public const uint LowestVersion = 1;
    public const uint HighestVersion = 1;

    /// <summary>How many objects one batch carries at most, so a large closure never meets a message-size limit.</summary>
    internal const int BatchSize = 500;

    /// <summary>The largest message a data plane may send (a Hello or a Report is a few hundred bytes; gRPC's default is 4 MiB).</summary>
    internal const int MaxReceiveMessageSize = 64 * 1024;

    /// <summary>The longest data-plane id kept (a pod name is a DNS name of at most 253 characters); longer ones are cut.</summary>
    internal const int MaxDataPlaneIdLength = 253;

    public override async Task Subscribe(IAsyncStreamReader<DataPlaneMessage> requestStream, IServerStreamWriter<ControllerMessage> responseStream, ServerCallContext context)
    {
        var cancellationToken = context.CancellationToken;

        // Nothing is held for a caller that does not say Hello and get admitted within the deadline: not before it is
        // authenticated (a client that opens streams and says nothing), nor while its token waits for a review.
        var helloTimeout = options.Value.HelloTimeout;
        using var admission = new CancellationTokenSource(helloTimeout, time);
        using var admitting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, admission.Token);
        (ResourceKey Gateway, string DataPlane, Hello Hello) admitted;
        try
        {
            admitted = await AdmitAsync(requestStream, context, admitting.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (admission.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            LogNotAdmittedInTime(logger, LogText.Escape(context.Peer), helloTimeout.TotalSeconds);
            throw new RpcException(new Grpc.Core.Status(StatusCode.DeadlineExceeded, $"no Hello, or no admission, within {helloTimeout.TotalSeconds:0.###} s of opening the stream"));
        }

        var (gateway, dataPlane, hello) = admitted;
        await responseStream.WriteAsync(new ControllerMessage
        {
            Welcome = new Welcome { ProtocolVersion = Math.Min(hello.ProtocolVersion, HighestVersion), ControllerId = options.Value.Identity },
        }, cancellationToken).ConfigureAwait(false);

        var connection = reports.Connect(gateway, dataPlane);
        LogSubscribed(logger, LogText.Escape(dataPlane), gateway.ToString(), LogText.Escape(context.Peer));
        // The controller stopping ends every stream at once (Kestrel would otherwise wait for these endless calls until
        // its shutdown timeout): each data plane keeps serving and connects to another replica.
        using var stream = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lifetime.ApplicationStopping);
        var credential = authorizer.ChecksCredentials ? GuardCredentialAsync(context, gateway, stream) : Task.FromResult<(DataPlaneRefusal Refusal, bool Expired)?>(null);
        var gate = new StreamReportGate(reports, connection, dataPlane, gateway.ToString(), options.Value.ReportInterval, time, logger);
        var applying = gate.RunAsync(stream.Token);

        // The data plane closing its side (or breaking, or breaking the protocol) ends the call; so does the controller
        // stopping, and the credential expiring or being refused.
        var reading = ReadReportsAsync(requestStream, gate, dataPlane, gateway, stream);
        Grpc.Core.Status? violation;
        try
        {
            await SendConfigAsync(gateway, gate, responseStream, stream.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            await stream.CancelAsync().ConfigureAwait(false);
            violation = await reading.ConfigureAwait(false);
            await applying.ConfigureAwait(false);
            reports.Disconnect(connection);
            LogUnsubscribed(logger, LogText.Escape(dataPlane), gateway.ToString());
        }

        if (violation is { } broken)
        {
            throw new RpcException(broken);
        }

        if (await credential.ConfigureAwait(false) is { } ended)
        {
            if (ended.Expired)
            {
                LogCredentialExpired(logger, LogText.Escape(dataPlane), gateway.ToString(), ended.Refusal.Message);
            }
            else
            {
                LogCredentialRefused(logger, LogText.Escape(dataPlane), gateway.ToString(), ended.Refusal.Code.ToString(), ended.Refusal.Message);
            }

            throw new RpcException(new Grpc.Core.Status(ended.Refusal.Code, ended.Refusal.Message));
        }
    }

    /// <summary>
    /// Reads the Hello and authorizes the caller for the Gateway it names; throws <see cref="RpcException"/> for a
    /// stream that does not start with a valid Hello or whose caller is refused.
    /// </summary>
    private async Task<(ResourceKey Gateway, string DataPlane, Hello Hello)> AdmitAsync(IAsyncStreamReader<DataPlaneMessage> requestStream, ServerCallContext context, CancellationToken cancellationToken)
    {
        if (!await requestStream.MoveNext(cancellationToken).ConfigureAwait(false) || requestStream.Current.KindCase != DataPlaneMessage.KindOneofCase.Hello)
        {
            throw new RpcException(new Grpc.Core.Status(StatusCode.InvalidArgument, "the first message must be a Hello naming the Gateway"));
        }

        var hello = requestStream.Current.Hello;
        if (hello.ProtocolVersion < LowestVersion)
        {
            throw new RpcException(new Grpc.Core.Status(StatusCode.FailedPrecondition, $"protocol version {hello.ProtocolVersion} is not served; this controller serves {LowestVersion} to {HighestVersion}"));
        }

        if (hello.GatewayNamespace.Length == 0 || hello.GatewayName.Length == 0)
        {
            throw new RpcException(new Grpc.Core.Status(StatusCode.InvalidArgument, "Hello.gateway_namespace and Hello.gateway_name are required"));
        }

        // Kubernetes names: a namespace is at most 63 characters, a Gateway's name 253.
        if (hello.GatewayNamespace.Length > 63 || hello.GatewayName.Length > 253)
        {
            throw new RpcException(new Grpc.Core.Status(StatusCode.InvalidArgument, "Hello.gateway_namespace (at most 63 characters) or Hello.gateway_name (at most 253) is too long for a Kubernetes name"));
        }

        var gateway = new ResourceKey(ResourceKind.Gateway, hello.GatewayNamespace, hello.GatewayName);

        // The id is the data plane's word, kept in the replica's shared reports and in status messages: bounded.
        var dataPlane = hello.DataPlaneId.Length > 0 ? StreamReportGate.Shorten(hello.DataPlaneId, MaxDataPlaneIdLength) : context.Peer;
        if (await authorizer.RefuseAsync(context, gateway, cancellationToken).ConfigureAwait(false) is { } refusal)
        {
            LogRefused(logger, LogText.Escape(dataPlane), gateway.ToString(), LogText.Escape(context.Peer), refusal.Code.ToString(), refusal.Message);
            throw new RpcException(new Grpc.Core.Status(refusal.Code, refusal.Message));
        }

        return (gateway, dataPlane, hello);
    }

    /// <summary>
    /// Ends the stream (cancels <paramref name="stream"/>) when the credential it was admitted with expires, or a review
    /// of it every <see cref="ConfigStreamServerOptions.TokenReviewInterval"/> refuses it; returns why, or null when
    /// the stream ended otherwise. A review that cannot be made now (the API server away) leaves the stream open: the
    /// token's expiry still bounds it.
    /// </summary>
    private async Task<(DataPlaneRefusal Refusal, bool Expired)?> GuardCredentialAsync(ServerCallContext context, ResourceKey gateway, CancellationTokenSource stream)
    {
        var expiry = authorizer.CredentialExpiry(context);
        var interval = options.Value.TokenReviewInterval;
        try
        {
            while (true)
            {
                var now = time.GetUtcNow();
                if (expiry is { } expires && expires <= now)
                {
                    await stream.CancelAsync().ConfigureAwait(false);
                    return (new DataPlaneRefusal(StatusCode.Unauthenticated, $"Gateway {LogText.Escape($"{gateway.Namespace}/{gateway.Name}")}: the token this stream was admitted with expired at {expires:u}; connect again with a fresh one (the kubelet renews the projected token)"), true);
                }

                var wait = expiry is { } until && until - now < interval ? until - now : interval;
                await Task.Delay(wait, time, stream.Token).ConfigureAwait(false);
                if (expiry is { } due && due <= time.GetUtcNow())
                {
                    continue;
                }

                if (await authorizer.RefuseAsync(context, gateway, stream.Token).ConfigureAwait(false) is { Code: not StatusCode.Unavailable } refusal)
                {
                    await stream.CancelAsync().ConfigureAwait(false);
                    return (refusal, false);
                }
            }
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>
    /// Hands each Report to <paramref name="gate"/> until the data plane closes its side or the stream ends; returns the
    /// status to end the call with when the data plane broke the protocol (a second Hello), else null. A message of a
    /// kind this controller does not know (a newer data plane's) is ignored, as the protocol's compatibility rules say.
    /// </summary>
    private async Task<Grpc.Core.Status?> ReadReportsAsync(IAsyncStreamReader<DataPlaneMessage> requests, StreamReportGate gate, string dataPlane, ResourceKey gateway, CancellationTokenSource stream)
    {
        try
        {
            while (await requests.MoveNext(stream.Token).ConfigureAwait(false))
            {
                switch (requests.Current.KindCase)
                {
                    case DataPlaneMessage.KindOneofCase.Report:
                        gate.Offer(requests.Current.Report);
                        break;
                    case DataPlaneMessage.KindOneofCase.Hello:
                        LogProtocolBroken(logger, LogText.Escape(dataPlane), gateway.ToString(), "a second Hello");
                        return new Grpc.Core.Status(StatusCode.InvalidArgument, "Hello is sent once, first; after it a data plane sends only Reports");
                    default:
                        break;
                }
            }

            return null;
        }
        catch (OperationCanceledException)
        {
            return null;
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.ResourceExhausted)
        {
            // A message over MaxReceiveMessageSize: the data plane is told why, and the call ends.
            LogProtocolBroken(logger, LogText.Escape(dataPlane), gateway.ToString(), e.Status.Detail);
            return e.Status;
        }
#pragma warning disable CA1031 // A broken request stream ends this call; the data plane connects again.
        catch (Exception e)
#pragma warning restore CA1031
        {
            LogReadFailed(logger, ErrorText.Of(e));
            return null;
        }
        finally
        {
            await stream.CancelAsync().ConfigureAwait(false);
        }
    }

    private async Task SendConfigAsync(ResourceKey gateway, StreamReportGate gate, IServerStreamWriter<ControllerMessage> responses, CancellationToken cancellationToken)
    {
        using var feed = closures.Subscribe(gateway);
        Dictionary<ResourceKey, Resource>? sent = null;
        await foreach (var (revision, closure) in feed.Updates.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            // What the data plane may report on: the listeners of its Gateway as of the config it is being sent.
            gate.Listeners(closure.TryGetValue(gateway, out var known) && known is Resources.Gateway { Listeners: var listeners }
                ? listeners.Select(static l => l.Port).ToHashSet()
                : new HashSet<int>());
            if (sent is null)
            {
                var all = closure.Values.ToList();
                for (var start = 0; start == 0 || start < all.Count; start += BatchSize)
                {
                    var batch = new ConfigBatch { Revision = revision, Reset = true, Synced = start + BatchSize >= all.Count };
                    batch.Upserts.AddRange(all.Skip(start).Take(BatchSize).Select(ModelCodec.Encode));
                    await responses.WriteAsync(new ControllerMessage { Batch = batch }, cancellationToken).ConfigureAwait(false);
                }

                sent = new Dictionary<ResourceKey, Resource>(closure);
                LogSentFull(logger, gateway.ToString(), all.Count, revision);
            }
            else
            {
                var upserts = closure.Where(pair => !sent.TryGetValue(pair.Key, out var before) || !before.Equals(pair.Value)).Select(static pair => pair.Value).ToList();
                var deletes = sent.Keys.Where(key => !closure.ContainsKey(key)).ToList();
                for (var start = 0; start < upserts.Count + deletes.Count; start += BatchSize)
                {
                    var batch = new ConfigBatch { Revision = revision };
                    batch.Upserts.AddRange(upserts.Skip(start).Take(BatchSize).Select(ModelCodec.Encode));
                    batch.Deletes.AddRange(deletes.Skip(Math.Max(0, start - upserts.Count)).Take(BatchSize - batch.Upserts.Count).Select(ModelCodec.Encode));
                    await responses.WriteAsync(new ControllerMessage { Batch = batch }, cancellationToken).ConfigureAwait(false);
                }

                foreach (var resource in upserts)
                {
                    sent[resource.Key] = resource;
                }

                foreach (var key in deletes)
                {
                    sent.Remove(key);
                }

                if (upserts.Count + deletes.Count > 0)
                {
                    LogSentChanges(logger, gateway.ToString(), upserts.Count, deletes.Count, revision);
                }
            }
        }
    }

    [LoggerMessage(1, LogLevel.Information, "Config stream: data plane {DataPlane} subscribed for {Gateway} from {Peer}")]
    private static partial void LogSubscribed(ILogger logger, string dataPlane, string gateway, string peer);

    [LoggerMessage(2, LogLevel.Information, "Config stream: data plane {DataPlane} of {Gateway} disconnected")]
    private static partial void LogUnsubscribed(ILogger logger, string dataPlane, string gateway);

    [LoggerMessage(3, LogLevel.Warning, "Config stream: refused data plane {DataPlane} for {Gateway} from {Peer} ({Code}): {Reason}")]
    private static partial void LogRefused(ILogger logger, string dataPlane, string gateway, string peer, string code, string reason);

    [LoggerMessage(4, LogLevel.Debug, "Config stream: sent {Gateway} in full, {Count} object(s), revision {Revision}")]
    private static partial void LogSentFull(ILogger logger, string gateway, int count, long revision);

    [LoggerMessage(5, LogLevel.Debug, "Config stream: sent {Gateway} {Upserts} upsert(s) and {Deletes} delete(s), revision {Revision}")]
    private static partial void LogSentChanges(ILogger logger, string gateway, int upserts, int deletes, long revision);

    [LoggerMessage(7, LogLevel.Information, "Config stream: ended the stream of data plane {DataPlane} for {Gateway} (Unauthenticated): {Reason}")]
    private static partial void LogCredentialExpired(ILogger logger, string dataPlane, string gateway, string reason);

    [LoggerMessage(8, LogLevel.Warning, "Config stream: ended the stream of data plane {DataPlane} for {Gateway}, its token refused on review ({Code}): {Reason}")]
    private static partial void LogCredentialRefused(ILogger logger, string dataPlane, string gateway, string code, string reason);

    [LoggerMessage(9, LogLevel.Warning, "Config stream: no Hello from {Peer}, or no admission, within {Seconds} s of opening the stream; ended it (DeadlineExceeded)")]
    private static partial void LogNotAdmittedInTime(ILogger logger, string peer, double seconds);

    [LoggerMessage(10, LogLevel.Warning, "Config stream: data plane {DataPlane} of {Gateway} broke the protocol ({What}); ended its stream")]
    private static partial void LogProtocolBroken(ILogger logger, string dataPlane, string gateway, string what);

    [LoggerMessage(6, LogLevel.Warning, "Config stream: reading a data plane's reports failed: {Error}")]
    private static partial void LogReadFailed(ILogger logger, string error);
}
