using k8s;
using k8s.Models;

namespace FsmGateway.Kubernetes.ControlPlane;

/// <summary>What the API server said of a token.</summary>
/// <param name="Authenticated">Whether the token is valid for the audience.</param>
/// <param name="Username">Who it belongs to (<c>system:serviceaccount:NAMESPACE:NAME</c> for a ServiceAccount); null when not authenticated.</param>
/// <param name="Error">Why not, as the API server words it; null when authenticated.</param>
internal sealed record TokenReviewOutcome(bool Authenticated, string? Username, string? Error);

/// <summary>Asks the API server who a bearer token belongs to.</summary>
internal interface ITokenReviewer
{
    /// <summary>
    /// A <c>TokenReview</c> of <paramref name="token"/> for <paramref name="audience"/>. Throws when the API server
    /// cannot be asked (no answer, no permission): that is not a verdict on the token.
    /// </summary>
    Task<TokenReviewOutcome> ReviewAsync(string token, string audience, CancellationToken cancellationToken);
}

/// <summary>
/// <see cref="ITokenReviewer"/> through the controller's API client: <c>POST
/// /apis/authentication.k8s.io/v1/tokenreviews</c> with the audience set, so a token made for another audience (the
/// pod's API token, say) is refused by the API server itself.
/// </summary>
internal sealed class KubernetesTokenReviewer(IKubernetes client) : ITokenReviewer
{
    public async Task<TokenReviewOutcome> ReviewAsync(string token, string audience, CancellationToken cancellationToken)
    {
        var review = await client.AuthenticationV1.CreateTokenReviewAsync(
            new V1TokenReview
            {
                ApiVersion = "authentication.k8s.io/v1",
                Kind = "TokenReview",
                Spec = new V1TokenReviewSpec { Token = token, Audiences = [audience] },
            },
            cancellationToken: cancellationToken).ConfigureAwait(false);
        var status = review.Status;
        if (status?.Authenticated != true)
        {
            return new TokenReviewOutcome(false, null, status?.Error is { Length: > 0 } error ? error : "the API server did not authenticate the token");
        }

        // The API server answers with the audiences the token is valid for among those asked; none means it did not
        // check them, which is not good enough.
        if (status.Audiences is not { } audiences || !audiences.Contains(audience, StringComparer.Ordinal))
        {
            return new TokenReviewOutcome(false, null, $"the token is not for audience '{audience}'");
        }

        return new TokenReviewOutcome(true, status.User?.Username, null);
    }
}
