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
        _reviewer.Tokens["good"] = "system:serviceaccount:httpbin:fsm-gateway";

        Assert.Null(await Authorizer().RefuseAsync("Bearer good", Gateway, default));
        Assert.Equal(["fsm-gateway-controller"], _reviewer.Audiences.Distinct());
    }

    [Fact]
    public async Task Another_namespaces_service_account_is_denied_naming_it_and_the_gateway()
    {
        _reviewer.Tokens["other"] = "system:serviceaccount:intruder:fsm-gateway";

        var refusal = await Authorizer().RefuseAsync("Bearer other", Gateway, default);

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
        _reviewer.Tokens["t"] = username;

        var refusal = await Authorizer().RefuseAsync("Bearer t", Gateway, default);

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
        var refusal = await Authorizer().RefuseAsync("Bearer unknown", Gateway, default);

        Assert.Equal(StatusCode.Unauthenticated, refusal!.Code);
        Assert.Contains("invalid bearer token", refusal.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_review_that_fails_is_unavailable_and_not_remembered()
    {
        var authorizer = Authorizer();
        _reviewer.Failure = new HttpRequestException("Connection refused");

        var refusal = await authorizer.RefuseAsync("Bearer good", Gateway, default);

        Assert.Equal(StatusCode.Unavailable, refusal!.Code);
        Assert.Contains("Connection refused", refusal.Message, StringComparison.Ordinal);
        _reviewer.Failure = null;
        _reviewer.Tokens["good"] = "system:serviceaccount:httpbin:fsm-gateway";
        Assert.Null(await authorizer.RefuseAsync("Bearer good", Gateway, default));
    }

    [Fact]
    public async Task Verdicts_are_reused_for_a_while_then_asked_again()
    {
        var authorizer = Authorizer();
        _reviewer.Tokens["good"] = "system:serviceaccount:httpbin:fsm-gateway";

        Assert.Null(await authorizer.RefuseAsync("Bearer good", Gateway, default));
        Assert.Null(await authorizer.RefuseAsync("Bearer good", Gateway, default));
        Assert.Equal(1, authorizer.Reviews);

        // The token is revoked: served from the cache until it expires, then refused.
        _reviewer.Tokens.Remove("good");
        _time.Advance(ServiceAccountAuthorizer.CacheDuration + TimeSpan.FromSeconds(1));
        Assert.Equal(StatusCode.Unauthenticated, (await authorizer.RefuseAsync("Bearer good", Gateway, default))!.Code);
        Assert.Equal(2, authorizer.Reviews);
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
