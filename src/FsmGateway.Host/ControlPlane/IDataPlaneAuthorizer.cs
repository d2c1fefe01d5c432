using FsmGateway.Resources;
using Grpc.Core;

namespace FsmGateway.Host.ControlPlane;

/// <summary>Why a caller of the config stream is refused.</summary>
/// <param name="Code">The gRPC status: <see cref="StatusCode.Unauthenticated"/> (no valid credential), <see cref="StatusCode.PermissionDenied"/> (a valid one that may not have the Gateway) or <see cref="StatusCode.Unavailable"/> (the credential could not be checked now).</param>
/// <param name="Message">What the data plane and the controller's log are told, naming the identity and the Gateway.</param>
internal sealed record DataPlaneRefusal(StatusCode Code, string Message);

/// <summary>
/// Decides whether the caller of a config stream may have a Gateway's config: the one place a data plane's identity
/// is checked, before anything is sent (ADR 0010).
/// </summary>
internal interface IDataPlaneAuthorizer
{
    /// <summary>Null to allow; otherwise why the caller is refused. Asked when a stream starts, and again while it is open.</summary>
    ValueTask<DataPlaneRefusal?> RefuseAsync(ServerCallContext call, ResourceKey gateway, CancellationToken cancellationToken);

    /// <summary>Whether callers present a credential that can expire or be revoked (then an open stream is checked again).</summary>
    bool ChecksCredentials { get; }

    /// <summary>When the credential of an allowed call stops being valid; null when it does not say.</summary>
    DateTimeOffset? CredentialExpiry(ServerCallContext call);
}

/// <summary>
/// Allows every caller: the stream of a controller run with <c>--stream-insecure</c> (plain HTTP/2, for local use and
/// tests without a cluster's ServiceAccounts).
/// </summary>
internal sealed class AnyDataPlane : IDataPlaneAuthorizer
{
    public ValueTask<DataPlaneRefusal?> RefuseAsync(ServerCallContext call, ResourceKey gateway, CancellationToken cancellationToken) => ValueTask.FromResult<DataPlaneRefusal?>(null);

    public bool ChecksCredentials => false;

    public DateTimeOffset? CredentialExpiry(ServerCallContext call) => null;
}
