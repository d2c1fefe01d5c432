using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using FsmGateway.Kubernetes.Controller;
using FsmGateway.Kubernetes.ControlPlane;
using FsmGateway.Resources;
using Grpc.Core;

namespace FsmGateway.Host.ControlPlane;

/// <summary>
/// The controller's <see cref="IDataPlaneAuthorizer"/> (ADR 0010): a data plane presents its projected ServiceAccount
/// token (audience <see cref="DataPlaneManifests.TokenAudience"/>) as <c>authorization: Bearer …</c>; a
/// <c>TokenReview</c> says whose it is, and only the ServiceAccount the provisioner made for the Gateway's namespace
/// (<see cref="DataPlaneManifests.ServiceAccountName"/>) is served that Gateway. Verdicts are cached for
/// <see cref="CacheDuration"/> by the token's hash (a reconnecting fleet costs one review per token, not one per
/// stream); a review that could not be made is not a verdict and is not cached. An allowed token's expiry is its JWT
/// <c>exp</c> claim, read once the TokenReview has accepted the token (the API server checked the signature over it),
/// so the stream it admitted ends when it expires.
/// <para>
/// The API server is asked only about what can be a projected token: a JWT (three base64url parts, a JSON header and
/// payload) whose <c>exp</c>, if it has one, has not passed; anything else is refused unasked. At most
/// <c>maxConcurrentReviews</c> reviews are in flight; more callers wait asynchronously for a turn (within the
/// stream's admission deadline), so a flood of distinct junk tokens cannot become a flood of TokenReviews.
/// </para>
/// </summary>
internal sealed class ServiceAccountAuthorizer(ITokenReviewer reviewer, TimeProvider time, ConfigStreamMetrics? metrics = null, int maxConcurrentReviews = 8) : IDataPlaneAuthorizer, IDisposable
{
    /// <summary>How long a TokenReview's verdict is reused.</summary>
    public static readonly TimeSpan CacheDuration = TimeSpan.FromSeconds(10);

    /// <summary>Beyond this many cached verdicts, expired ones are dropped (and all of them if that is not enough).</summary>
    private const int CacheLimit = 4096;

    private const string ServiceAccountPrefix = "system:serviceaccount:";

    private readonly Lock _gate = new();
    private readonly Dictionary<string, (TokenReviewOutcome Outcome, DateTimeOffset Expires)> _cache = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _reviewing = new(maxConcurrentReviews, maxConcurrentReviews);

    /// <summary>TokenReviews made so far (for tests of the cache).</summary>
    public int Reviews { get; private set; }

    public async ValueTask<DataPlaneRefusal?> RefuseAsync(ServerCallContext call, ResourceKey gateway, CancellationToken cancellationToken)
    {
        var refusal = await RefuseAsync(call.RequestHeaders.GetValue("authorization"), gateway, cancellationToken).ConfigureAwait(false);
        if (refusal is not null)
        {
            metrics?.Refused(refusal.Code);
        }

        return refusal;
    }

    /// <summary>The decision for an <c>authorization</c> header value (null when absent).</summary>
    public async ValueTask<DataPlaneRefusal?> RefuseAsync(string? authorization, ResourceKey gateway, CancellationToken cancellationToken)
    {
        const string Bearer = "Bearer ";
        var named = LogText.Escape($"{gateway.Namespace}/{gateway.Name}");
        if (authorization is null || !authorization.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase) || authorization.Length == Bearer.Length)
        {
            return new DataPlaneRefusal(StatusCode.Unauthenticated, $"Gateway {named}: no bearer token; a data plane authenticates with its projected ServiceAccount token (--controller-token-file, audience {DataPlaneManifests.TokenAudience})");
        }

        var token = authorization[Bearer.Length..].Trim();
        if (NotAProjectedToken(token, time.GetUtcNow()) is { } malformed)
        {
            return new DataPlaneRefusal(StatusCode.Unauthenticated, $"Gateway {named}: {malformed}; a data plane authenticates with its projected ServiceAccount token (--controller-token-file, audience {DataPlaneManifests.TokenAudience})");
        }

        TokenReviewOutcome outcome;
        try
        {
            outcome = await ReviewAsync(token, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return new DataPlaneRefusal(StatusCode.Unavailable, $"Gateway {named}: the controller could not review the data plane's token ({ErrorText.Of(e)}); try again");
        }

        if (!outcome.Authenticated)
        {
            return new DataPlaneRefusal(StatusCode.Unauthenticated, $"Gateway {named}: the token was not accepted by the API server's TokenReview (audience {DataPlaneManifests.TokenAudience}): {outcome.Error}");
        }

        var expected = $"{gateway.Namespace}/{DataPlaneManifests.ServiceAccountName}";
        var user = outcome.Username ?? string.Empty;
        var who = user.StartsWith(ServiceAccountPrefix, StringComparison.Ordinal) && user[ServiceAccountPrefix.Length..].Split(':') is [{ Length: > 0 } ns, { Length: > 0 } name]
            ? $"{ns}/{name}"
            : null;
        if (who != expected)
        {
            var caller = who is null ? $"user '{LogText.Escape(user)}' (not a ServiceAccount)" : $"ServiceAccount {LogText.Escape(who)}";
            return new DataPlaneRefusal(StatusCode.PermissionDenied, $"{caller} may not subscribe to Gateway {named}: only ServiceAccount {expected}, which the controller provisions for that namespace, is served it");
        }

        return null;
    }

    public bool ChecksCredentials => true;

    public void Dispose() => _reviewing.Dispose();

    /// <summary>
    /// Why <paramref name="token"/> cannot be a valid projected ServiceAccount token, judged without the API server:
    /// not a JWT (three non-empty base64url parts, the first two JSON objects), or its <c>exp</c> passed. Null when it
    /// may be one (only a TokenReview can tell).
    /// </summary>
    internal static string? NotAProjectedToken(string token, DateTimeOffset now)
    {
        if (token.Split('.') is not [{ Length: > 0 } header, { Length: > 0 } payload, { Length: > 0 } signature]
            || !Base64Url.IsValid(signature) || !IsJsonObject(header) || !TryReadExpiry(payload, out var expiry))
        {
            return "the bearer token is not a JWT (three base64url parts, as a projected ServiceAccount token is)";
        }

        return expiry is { } expires && expires <= now ? $"the token expired at {expires:u}" : null;

        static bool IsJsonObject(string part)
        {
            try
            {
                using var json = JsonDocument.Parse(Base64Url.DecodeFromChars(part));
                return json.RootElement.ValueKind == JsonValueKind.Object;
            }
            catch (Exception e) when (e is FormatException or JsonException)
            {
                return false;
            }
        }
    }

    public DateTimeOffset? CredentialExpiry(ServerCallContext call) => ExpiryOf(call.RequestHeaders.GetValue("authorization"));

    /// <summary>
    /// The <c>exp</c> claim of a bearer JWT (<c>Bearer header.payload.signature</c>, the payload base64url JSON); null
    /// when the value is not such a token or has no numeric <c>exp</c>. Not a check of the token: only for one the
    /// TokenReview accepted.
    /// </summary>
    internal static DateTimeOffset? ExpiryOf(string? authorization)
    {
        const string Bearer = "Bearer ";
        if (authorization is null || !authorization.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase)
            || authorization[Bearer.Length..].Trim().Split('.') is not [_, { Length: > 0 } payload, _])
        {
            return null;
        }

        return TryReadExpiry(payload, out var expiry) ? expiry : null;
    }

    /// <summary>
    /// Reads a JWT payload (base64url JSON) once: false when it is not a JSON object; else its numeric <c>exp</c> claim
    /// in <paramref name="expiry"/>, null when it has none.
    /// </summary>
    private static bool TryReadExpiry(string payload, out DateTimeOffset? expiry)
    {
        expiry = null;
        try
        {
            using var claims = JsonDocument.Parse(Base64Url.DecodeFromChars(payload));
            if (claims.RootElement.ValueKind != JsonValueKind.Object)
            {
                return false;
            }

            if (claims.RootElement.TryGetProperty("exp", out var exp)
                && exp.ValueKind == JsonValueKind.Number
                && exp.TryGetInt64(out var seconds)
                && seconds is > 0 and < 253402300800)
            {
                expiry = DateTimeOffset.FromUnixTimeSeconds(seconds);
            }

            return true;
        }
        catch (Exception e) when (e is FormatException or JsonException)
        {
            return false;
        }
    }

    private async Task<TokenReviewOutcome> ReviewAsync(string token, CancellationToken cancellationToken)
    {
        var key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
        var now = time.GetUtcNow();
        lock (_gate)
        {
            if (_cache.TryGetValue(key, out var cached) && cached.Expires > now)
            {
                return cached.Outcome;
            }
        }

        TokenReviewOutcome outcome;
        await _reviewing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            outcome = await reviewer.ReviewAsync(token, DataPlaneManifests.TokenAudience, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _reviewing.Release();
        }

        lock (_gate)
        {
            Reviews++;
            if (_cache.Count >= CacheLimit)
            {
                foreach (var expired in _cache.Where(pair => pair.Value.Expires <= now).Select(pair => pair.Key).ToList())
                {
                    _cache.Remove(expired);
                }

                if (_cache.Count >= CacheLimit)
                {
                    _cache.Clear();
                }
            }

            _cache[key] = (outcome, time.GetUtcNow() + CacheDuration);
        }

        return outcome;
    }
}
