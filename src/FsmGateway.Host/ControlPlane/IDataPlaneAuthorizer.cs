using FsmGateway.Resources;
using Grpc.Core;

namespace FsmGateway.Host.ControlPlane;

/// <summary>
/// Decides whether the caller of a config stream may have a Gateway's config: the one place a data plane's identity
/// is checked, before anything is sent. ADR 0010: the TokenReview of a projected ServiceAccount token goes here.
/// </summary>
internal interface IDataPlaneAuthorizer
{
    /// <summary>Null to allow; otherwise why the caller is refused (sent as PermissionDenied).</summary>
    ValueTask<string?> RefuseAsync(ServerCallContext call, ResourceKey gateway, CancellationToken cancellationToken);
}

/// <summary>
/// Allows every caller: what the stream does until data planes authenticate (the channel is plain HTTP/2 inside the
/// cluster today; see ADR 0010 for what replaces this).
/// </summary>
internal sealed class AnyDataPlane : IDataPlaneAuthorizer
{
    public ValueTask<string?> RefuseAsync(ServerCallContext call, ResourceKey gateway, CancellationToken cancellationToken) => ValueTask.FromResult<string?>(null);
}
