using Grpc.Core;
using Microsoft.Extensions.Hosting;

namespace FsmGateway.Testing;

/// <summary>
/// A gRPC server call's context for driving a service method in process (no transport): fixed method, host and peer,
/// no deadline, empty metadata, and the cancellation token of the caller's choosing.
/// </summary>
/// <param name="cancellationToken">The call's cancellation (the client going away).</param>
/// <param name="peer">What the service reads as the peer's address.</param>
internal sealed class InProcessCallContext(CancellationToken cancellationToken, string peer = "in-process") : ServerCallContext
{
    protected override string MethodCore => "/fsmgateway.controlplane.v1.ConfigStream/Subscribe";

    protected override string HostCore => "localhost";

    protected override string PeerCore => peer;

    protected override DateTime DeadlineCore => DateTime.MaxValue;

    protected override Metadata RequestHeadersCore { get; } = [];

    protected override CancellationToken CancellationTokenCore => cancellationToken;

    protected override Metadata ResponseTrailersCore { get; } = [];

    protected override Grpc.Core.Status StatusCore { get; set; }

    protected override WriteOptions? WriteOptionsCore { get; set; }

    protected override AuthContext AuthContextCore { get; } = new(null, []);

    protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) => throw new NotSupportedException();

    protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;
}

/// <summary>An application lifetime whose only event is stopping, on <see cref="StopApplication"/>.</summary>
internal sealed class StoppableLifetime : IHostApplicationLifetime, IDisposable
{
    private readonly CancellationTokenSource _stopping = new();

    public CancellationToken ApplicationStarted => CancellationToken.None;

    public CancellationToken ApplicationStopping => _stopping.Token;

    public CancellationToken ApplicationStopped => CancellationToken.None;

    public void StopApplication() => _stopping.Cancel();

    public void Dispose() => _stopping.Dispose();
}
