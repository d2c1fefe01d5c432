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

    public override async Task Subscribe(IAsyncStreamReader<DataPlaneMessage> requestStream, IServerStreamWriter<ControllerMessage> responseStream, ServerCallContext context)
    {
        var cancellationToken = context.CancellationToken;
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

        var gateway = new ResourceKey(ResourceKind.Gateway, hello.GatewayNamespace, hello.GatewayName);
        var dataPlane = hello.DataPlaneId.Length > 0 ? hello.DataPlaneId : context.Peer;
        if (await authorizer.RefuseAsync(context, gateway, cancellationToken).ConfigureAwait(false) is { } refusal)
        {
            LogRefused(logger, LogText.Escape(dataPlane), gateway.ToString(), LogText.Escape(context.Peer), refusal.Code.ToString(), refusal.Message);
            throw new RpcException(new Grpc.Core.Status(refusal.Code, refusal.Message));
        }

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
        try
        {
            // The data plane closing its side (or breaking) ends the call; so does the controller stopping, and the
            // credential expiring or being refused.
            var reading = ReadReportsAsync(requestStream, connection, stream);
            await SendConfigAsync(gateway, responseStream, stream.Token).ConfigureAwait(false);
            await reading.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            await stream.CancelAsync().ConfigureAwait(false);
            reports.Disconnect(connection);
            LogUnsubscribed(logger, LogText.Escape(dataPlane), gateway.ToString());
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

    private async Task ReadReportsAsync(IAsyncStreamReader<DataPlaneMessage> requests, long connection, CancellationTokenSource stream)
    {
        try
        {
            while (await requests.MoveNext(stream.Token).ConfigureAwait(false))
            {
                if (requests.Current.KindCase != DataPlaneMessage.KindOneofCase.Report)
                {
                    continue;
                }

                var outcomes = ImmutableSortedDictionary.CreateBuilder<int, BindOutcome>();
                foreach (var listener in requests.Current.Report.Listeners)
                {
                    outcomes[listener.Port] = listener.State switch
                    {
                        Transport.ControlPlane.Protocol.BindState.Bound => BindOutcome.Bound,
                        Transport.ControlPlane.Protocol.BindState.Failed => BindOutcome.Failed(listener.Message.Length > 0 ? listener.Message : "the data plane could not bind it"),
                        _ => BindOutcome.NotYetBound,
                    };
                }

                reports.Report(connection, outcomes.ToImmutable());
            }
        }
#pragma warning disable CA1031 // A broken request stream ends this call; the data plane connects again.
        catch (Exception e) when (e is not OperationCanceledException)
#pragma warning restore CA1031
        {
            LogReadFailed(logger, ErrorText.Of(e));
        }
        finally
        {
            await stream.CancelAsync().ConfigureAwait(false);
        }
    }

    private async Task SendConfigAsync(ResourceKey gateway, IServerStreamWriter<ControllerMessage> responses, CancellationToken cancellationToken)
    {
        using var feed = closures.Subscribe(gateway);
        Dictionary<ResourceKey, Resource>? sent = null;
        await foreach (var (revision, closure) in feed.Updates.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
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

    [LoggerMessage(6, LogLevel.Warning, "Config stream: reading a data plane's reports failed: {Error}")]
    private static partial void LogReadFailed(ILogger logger, string error);
}
