using FsmGateway.Host.ControlPlane;
using FsmGateway.Kubernetes.ControlPlane;
using FsmGateway.Resources;
using Grpc.Core;
using Microsoft.Extensions.Time.Testing;

namespace FsmGateway.Host.Tests.ControlPlane;

/// <summary>
/// Who may have a Gateway's config (<see cref="ServiceAccountAuthorizer"/>): only the data-plane ServiceAccount the
/// provisioner makes in the Gateway's namespace, proven by a TokenReview for our audience.
/// </summary>
public sealed class ServiceAccountAuthorizerTests
{
    private static readonly ResourceKey Gateway = new(ResourceKind.Gateway, "httpbin", "simple-fsm-gateway");

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 30, 6, 0, 0, TimeSpan.Zero));
    private readonly Reviewer _reviewer = new();

    private ServiceAccountAuthorizer Authorizer() => new(_reviewer, _time);

    [Fact]
    public void A_tokens_expiry_is_its_jwt_exp_claim_and_unknown_for_anything_else()
    {
        static string Part(string json) => System.Buffers.Text.Base64Url.EncodeToString(System.Text.Encoding.UTF8.GetBytes(json));
        var jwt = $"{Part("""{"alg":"RS256"}""")}.{Part("""{"aud":["fsm-gateway-controller"],"exp":1796018400,"sub":"system:serviceaccount:httpbin:fsm-gateway"}""")}.c2ln";

        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1796018400), ServiceAccountAuthorizer.ExpiryOf($"Bearer {jwt}"));
        Assert.Null(ServiceAccountAuthorizer.ExpiryOf("Bearer opaque-token"));
        Assert.Null(ServiceAccountAuthorizer.ExpiryOf($"Bearer {Part("{}")}.{Part("""{"exp":"soon"}""")}.c2ln"));
        Assert.Null(ServiceAccountAuthorizer.ExpiryOf("Bearer a.!!!.c"));
        Assert.Null(ServiceAccountAuthorizer.ExpiryOf($"Bearer {Part("{}")}.{Part("[1]")}.c2ln"));
        Assert.Null(ServiceAccountAuthorizer.ExpiryOf(null));
    }

    [Fact]
    public async Task The_gateway_namespaces_data_plane_service_account_is_served()
    {
        _reviewer.Tokens[Jwt("good")] = "system:serviceaccount:httpbin:fsm-gateway";

        Assert.Null(await Authorizer().RefuseAsync($"Bearer {Jwt("good")}", Gateway, default));
        Assert.Equal(["fsm-gateway-controller"], _reviewer.Audiences.Distinct());
    }

    [Fact]
    public async Task Another_namespaces_service_account_is_denied_naming_it_and_the_gateway()
    {
        _reviewer.Tokens[Jwt("other")] = "system:serviceaccount:intruder:fsm-gateway";

        var refusal = await Authorizer().RefuseAsync($"Bearer {Jwt("other")}", Gateway, default);

        Assert.Equal(StatusCode.PermissionDenied, refusal!.Code);
        Assert.Contains("ServiceAccount intruder/fsm-gateway", refusal.Message, StringComparison.Ordinal);
        Assert.Contains("Gateway httpbin/simple-fsm-gateway", refusal.Message, StringComparison.Ordinal);
        Assert.Contains("only ServiceAccount httpbin/fsm-gateway", refusal.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("system:serviceaccount:httpbin:default")]
    [InlineData("system:serviceaccount:httpbin:fsm-gateway:extra")]
    [InlineData("kubernetes-admin")]
    public async Task Another_identity_in_the_namespace_or_a_user_is_denied(string username)
    {
        _reviewer.Tokens[Jwt("t")] = username;

        var refusal = await Authorizer().RefuseAsync($"Bearer {Jwt("t")}", Gateway, default);

        Assert.Equal(StatusCode.PermissionDenied, refusal!.Code);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("Basic dXNlcjpwYXNz")]
    [InlineData("Bearer ")]
    public async Task No_bearer_token_is_unauthenticated_without_asking_the_api_server(string? header)
    {
        var refusal = await Authorizer().RefuseAsync(header, Gateway, default);

        Assert.Equal(StatusCode.Unauthenticated, refusal!.Code);
        Assert.Empty(_reviewer.Audiences);
    }

    [Fact]
    public async Task A_token_the_api_server_does_not_authenticate_is_unauthenticated_with_its_reason()
    {
        var refusal = await Authorizer().RefuseAsync($"Bearer {Jwt("unknown")}", Gateway, default);

        Assert.Equal(StatusCode.Unauthenticated, refusal!.Code);
        Assert.Contains("invalid bearer token", refusal.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_review_that_fails_is_unavailable_and_not_remembered()
    {
        var authorizer = Authorizer();
        _reviewer.Failure = new HttpRequestException("Connection refused");

        var refusal = await authorizer.RefuseAsync($"Bearer {Jwt("good")}", Gateway, default);

        Assert.Equal(StatusCode.Unavailable, refusal!.Code);
        Assert.Contains("Connection refused", refusal.Message, StringComparison.Ordinal);
        _reviewer.Failure = null;
        _reviewer.Tokens[Jwt("good")] = "system:serviceaccount:httpbin:fsm-gateway";
        Assert.Null(await authorizer.RefuseAsync($"Bearer {Jwt("good")}", Gateway, default));
    }

    [Fact]
    public async Task Verdicts_are_reused_for_a_while_then_asked_again()
    {
        var authorizer = Authorizer();
        _reviewer.Tokens[Jwt("good")] = "system:serviceaccount:httpbin:fsm-gateway";

        Assert.Null(await authorizer.RefuseAsync($"Bearer {Jwt("good")}", Gateway, default));
        Assert.Null(await authorizer.RefuseAsync($"Bearer {Jwt("good")}", Gateway, default));
        Assert.Equal(1, authorizer.Reviews);

        // The token is revoked: served from the cache until it expires, then refused.
        _reviewer.Tokens.Remove(Jwt("good"));
        _time.Advance(ServiceAccountAuthorizer.CacheDuration + TimeSpan.FromSeconds(1));
        Assert.Equal(StatusCode.Unauthenticated, (await authorizer.RefuseAsync($"Bearer {Jwt("good")}", Gateway, default))!.Code);
        Assert.Equal(2, authorizer.Reviews);
    }

    [Theory]
    [InlineData("opaque-token")]
    [InlineData("a.b")]
    [InlineData("a.b.c.d")]
    [InlineData("e30.e30.")]
    [InlineData("e30.!!!.c2ln")]
    [InlineData("W10.e30.c2ln")]
    public async Task A_token_that_is_not_a_jwt_is_unauthenticated_without_asking_the_api_server(string token)
    {
        // Before, every distinct junk token cost a TokenReview.
        var refusal = await Authorizer().RefuseAsync($"Bearer {token}", Gateway, default);

        Assert.Equal(StatusCode.Unauthenticated, refusal!.Code);
        Assert.Contains("not a JWT", refusal.Message, StringComparison.Ordinal);
        Assert.Empty(_reviewer.Audiences);
    }

    [Fact]
    public async Task An_expired_jwt_is_unauthenticated_without_asking_the_api_server()
    {
        var expired = Jwt("good", _time.GetUtcNow().AddSeconds(-1));
        _reviewer.Tokens[expired] = "system:serviceaccount:httpbin:fsm-gateway";

        var refusal = await Authorizer().RefuseAsync($"Bearer {expired}", Gateway, default);

        Assert.Equal(StatusCode.Unauthenticated, refusal!.Code);
        Assert.Contains("expired", refusal.Message, StringComparison.Ordinal);
        Assert.Empty(_reviewer.Audiences);

        // One that has not expired yet is reviewed (and served).
        var fresh = Jwt("good", _time.GetUtcNow().AddMinutes(1));
        _reviewer.Tokens[fresh] = "system:serviceaccount:httpbin:fsm-gateway";
        Assert.Null(await Authorizer().RefuseAsync($"Bearer {fresh}", Gateway, default));
        Assert.Single(_reviewer.Audiences);
    }

    [Fact]
    public async Task Concurrent_reviews_are_capped_the_others_waiting_asynchronously_for_a_turn()
    {
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reviewer = new HoldingReviewer(held.Task);
        using var authorizer = new ServiceAccountAuthorizer(reviewer, _time, maxConcurrentReviews: 3);

        // 20 distinct tokens at once (a flood of junk that is JWT-shaped): before, 20 reviews in flight.
        var calls = Enumerable.Range(0, 20).Select(i => authorizer.RefuseAsync($"Bearer {Jwt($"flood-{i}")}", Gateway, default).AsTask()).ToList();
        var until = DateTime.UtcNow.AddSeconds(10);
        while (reviewer.InFlight < 3 && DateTime.UtcNow < until)
        {
            await Task.Delay(10);
        }

        await Task.Delay(100);
        Assert.Equal(3, reviewer.InFlight);
        Assert.Equal(3, reviewer.MostInFlight);
        Assert.All(calls, c => Assert.False(c.IsCompleted));

        // A waiting caller that gives up (its stream's deadline passing) leaves the queue.
        using var giveUp = new CancellationTokenSource();
        var cancelled = authorizer.RefuseAsync($"Bearer {Jwt("late")}", Gateway, giveUp.Token).AsTask();
        await giveUp.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);

        held.SetResult();
        var refusals = await Task.WhenAll(calls).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.All(refusals, r => Assert.Equal(StatusCode.Unauthenticated, r!.Code));
        Assert.Equal(3, reviewer.MostInFlight);
        Assert.Equal(20, reviewer.Reviews);
    }

    /// <summary>A JWT-shaped token (as a projected one is; the fake reviewers do not check signatures).</summary>
    private static string Jwt(string subject, DateTimeOffset? expires = null)
    {
        static string Part(string json) => System.Buffers.Text.Base64Url.EncodeToString(System.Text.Encoding.UTF8.GetBytes(json));
        var exp = expires is { } at ? $",\"exp\":{at.ToUnixTimeSeconds()}" : string.Empty;
        return $"{Part("""{"alg":"RS256"}""")}.{Part($"{{\"sub\":\"{subject}\"{exp}}}")}.c2ln";
    }

    private sealed class HoldingReviewer(Task held) : ITokenReviewer
    {
        private int _inFlight;
        private int _most;
        private int _reviews;

        public int InFlight => Volatile.Read(ref _inFlight);

        public int MostInFlight => Volatile.Read(ref _most);

        public int Reviews => Volatile.Read(ref _reviews);

        public async Task<TokenReviewOutcome> ReviewAsync(string token, string audience, CancellationToken cancellationToken)
        {
            var now = Interlocked.Increment(ref _inFlight);
            int most;
            while ((most = Volatile.Read(ref _most)) < now && Interlocked.CompareExchange(ref _most, now, most) != most)
            {
            }

            try
            {
                await held.WaitAsync(cancellationToken);
                return new TokenReviewOutcome(false, null, "unknown token");
            }
            finally
            {
                Interlocked.Decrement(ref _inFlight);
                Interlocked.Increment(ref _reviews);
            }
        }
    }

    private sealed class Reviewer : ITokenReviewer
    {
        public Dictionary<string, string> Tokens { get; } = [];

        public List<string> Audiences { get; } = [];

        public Exception? Failure { get; set; }

        public Task<TokenReviewOutcome> ReviewAsync(string token, string audience, CancellationToken cancellationToken)
        {
            Audiences.Add(audience);
            if (Failure is not null)
            {
                throw Failure;
            }

            return Task.FromResult(Tokens.TryGetValue(token, out var user)
                ? new TokenReviewOutcome(true, user, null)
                : new TokenReviewOutcome(false, null, "[invalid bearer token, token lookup failed]"));
        }
    }
}
