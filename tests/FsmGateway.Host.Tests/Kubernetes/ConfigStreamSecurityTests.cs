using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using FsmGateway.Host.Tests.Support;
using FsmGateway.Kubernetes.ControlPlane;
using FsmGateway.Testing.Kubernetes;
using static FsmGateway.Host.Tests.Support.SeedCluster;

namespace FsmGateway.Host.Tests.Kubernetes;

/// <summary>
/// The config stream's security (ADR 0010), end to end with real processes against the fake API server: the
/// controller serves TLS with a certificate from its CA Secret and reviews each data plane's token; a data plane
/// verifies the controller against the CA file and authenticates with its token file. Only the ServiceAccount the
/// provisioner makes in the Gateway's namespace (fsm-gateway) is served the Gateway.
/// </summary>
public sealed class ConfigStreamSecurityTests : IAsyncLifetime
{
    private const string Audience = "fsm-gateway-controller";

    private SeedCluster _cluster = null!;

    public async Task InitializeAsync()
    {
        _cluster = await SeedCluster.StartAsync("controller-token");

        // The tokens the kubelet would project: the Gateway namespace's data-plane ServiceAccount, another namespace's,
        // and one for the API server's audience (a pod's ordinary API token).
        _cluster.Server.AddServiceAccountToken(FakeApiServer.ProjectedToken("httpbin-token"), Namespace, "fsm-gateway", Audience);
        _cluster.Server.AddServiceAccountToken(FakeApiServer.ProjectedToken("intruder-token"), "intruder", "fsm-gateway", Audience);
        _cluster.Server.AddServiceAccountToken(FakeApiServer.ProjectedToken("api-audience-token"), Namespace, "fsm-gateway");
    }

    public async Task DisposeAsync()
    {
        await _cluster.DisposeAsync();
    }

    [Fact]
    public async Task Data_plane_authenticated_by_token_and_verifying_the_controller_over_tls_is_served_and_other_service_accounts_are_refused()
    {
        await using var backend = new BannerServer("A");
        _cluster.ApplyEndpoints(backend.Port);
        var stream = Net.FreePort();
        await using var controller = StartController(stream);
        await controller.WaitUntilReadyAsync();
        await controller.WaitForLineAsync($"Config stream on https://127.0.0.1:{stream}");
        var ca = await CaFileAsync();

        await using var dataPlane = StartDataPlane(stream, ca, Token("httpbin-token"));
        await dataPlane.WaitUntilReadyAsync();
        Assert.Equal("A", await BannerServer.ReadBannerAsync(_cluster.Foo));
        Assert.Equal("A", await BannerServer.ReadBannerAsync(_cluster.Bar));
        await controller.WaitForLineAsync($"data plane dp-httpbin subscribed for .*{GatewayName}");

        // Another namespace's data-plane ServiceAccount: refused before anything is sent, and both sides say who and why.
        await using var intruder = StartDataPlane(stream, ca, Token("intruder-token"), "dp-intruder");
        var refused = await intruder.WaitForLineAsync("Config stream from .* ended");
        Assert.Contains("PermissionDenied", refused, StringComparison.Ordinal);
        Assert.Contains("ServiceAccount intruder/fsm-gateway may not subscribe to Gateway httpbin/simple-fsm-gateway", refused, StringComparison.Ordinal);
        var logged = await controller.WaitForLineAsync("refused data plane dp-intruder");
        Assert.Contains("ServiceAccount intruder/fsm-gateway", logged, StringComparison.Ordinal);
        await AssertNotReadyAsync(intruder);

        // A token of the right ServiceAccount but for the API server's audience: unauthenticated.
        await using var wrongAudience = StartDataPlane(stream, ca, Token("api-audience-token"), "dp-audience");
        var unauthenticated = await wrongAudience.WaitForLineAsync("Config stream from .* ended");
        Assert.Contains("Unauthenticated", unauthenticated, StringComparison.Ordinal);
        await AssertNotReadyAsync(wrongAudience);

        // Each refusal is counted.
        using (var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) })
        {
            var metrics = await http.GetStringAsync(new Uri(controller.AdminUri!, "/metrics"));
            foreach (var reason in new[] { "permission_denied", "unauthenticated" })
            {
                Assert.Contains(metrics.Split('\n'), line => line.StartsWith("fsmgateway_controller_stream_refusals_total{", StringComparison.Ordinal) && line.Contains($"reason=\"{reason}\"", StringComparison.Ordinal) && !line.EndsWith(" 0", StringComparison.Ordinal));
            }
        }

        // Only the good data plane ever received config.
        Assert.Equal(1, controller.CountLines("subscribed for"));
        Assert.Equal("A", await BannerServer.ReadBannerAsync(_cluster.Foo));
        Assert.Equal(0, await dataPlane.TerminateAsync());
        Assert.Equal(0, await controller.TerminateAsync());
    }

    [Fact]
    public async Task Data_plane_with_another_ca_refuses_the_controller_and_never_subscribes()
    {
        _cluster.ApplyEndpoints(Net.FreePort());
        var stream = Net.FreePort();
        await using var controller = StartController(stream);
        await controller.WaitUntilReadyAsync();
        await CaFileAsync();

        using var stranger = StreamCertificates.CreateAuthority(DateTimeOffset.UtcNow);
        var otherCa = Path.Combine(_cluster.Directory.FullName, "other-ca.crt");
        await File.WriteAllTextAsync(otherCa, StreamCertificates.CertificatePem(stranger));
        await using var dataPlane = StartDataPlane(stream, otherCa, Token("httpbin-token"));

        var refused = await dataPlane.WaitForLineAsync("Config stream from .* ended");
        Assert.Contains("refused the controller", refused, StringComparison.Ordinal);
        Assert.Contains("does not chain to the CA in the --controller-ca-file", refused, StringComparison.Ordinal);
        await AssertNotReadyAsync(dataPlane);
        Assert.True(await Net.IsRefusedAsync(_cluster.Foo));

        // The token was never sent: the controller reviewed nothing and served nothing.
        Assert.DoesNotContain(_cluster.Server.Requests, r => r.Resource == "tokenreviews");
        Assert.Equal(0, controller.CountLines("subscribed for"));
        Assert.Equal(0, await controller.TerminateAsync());
    }

    [Fact]
    public async Task Two_controller_replicas_share_one_ca_across_restarts_and_the_data_plane_moves_between_them()
    {
        await using var echo = new EchoServer();
        _cluster.ApplyEndpoints(echo.Port);
        var (streamA, streamB) = (Net.FreePort(), Net.FreePort());
        var replicaA = StartController(streamA, "replica-a");
        try
        {
            // Both replicas start together: each reads the Secret or creates it, and the loser of the create takes the
            // winner's CA, so one CA file verifies both.
            await using var replicaB = StartController(streamB, "replica-b");
            await replicaA.WaitUntilReadyAsync();
            await replicaB.WaitUntilReadyAsync();
            var ca = await CaFileAsync();
            await replicaA.WaitForLineAsync("Config stream CA: (created|using) Secret");
            await replicaB.WaitForLineAsync("Config stream CA: (created|using) Secret");
            Assert.Single(_cluster.Server.Requests, r => r is { Verb: "create", Resource: "secrets", StatusCode: 201 });

            await using var dataPlane = GatewayProcess.Start(
                new Dictionary<string, string?> { ["KUBECONFIG"] = null, ["POD_NAME"] = "dp-httpbin" },
                "gateway", "--gateway", $"{Namespace}/{GatewayName}", "--admin-port", "0",
                "--controller-address", $"https://127.0.0.1:{streamA}", "--controller-address", $"https://127.0.0.1:{streamB}",
                "--controller-ca-file", ca, "--controller-token-file", Token("httpbin-token"));
            await dataPlane.WaitUntilReadyAsync();
            await replicaA.WaitForLineAsync("subscribed for");
            using var held = await Net.ConnectAsync(_cluster.Foo);
            Assert.Equal("before", await Net.RoundTripAsync(held, "before"));

            // Replica A dies: the data plane moves to B (same CA), keeping its connection.
            await replicaA.DisposeAsync();
            await replicaB.WaitForLineAsync("subscribed for", TimeSpan.FromSeconds(60));
            await Net.EventuallyAsync(() => Task.FromResult(dataPlane.CountLines("Config stream: synced") >= 2), "the data plane resyncs from replica B", TimeSpan.FromSeconds(60));
            Assert.Equal("during", await Net.RoundTripAsync(held, "during"));

            // Replica A restarts: it uses the stored CA (no new Secret), and B's departure sends the data plane back to it.
            replicaA = StartController(streamA, "replica-a");
            await replicaA.WaitUntilReadyAsync();
            await replicaA.WaitForLineAsync("Config stream CA: using Secret");
            Assert.Single(_cluster.Server.Requests, r => r is { Verb: "create", Resource: "secrets", StatusCode: 201 });
            await replicaB.DisposeAsync();
            await replicaA.WaitForLineAsync("subscribed for", TimeSpan.FromSeconds(60));
            await Net.EventuallyAsync(() => Task.FromResult(dataPlane.CountLines("Config stream: synced") >= 3), "the data plane resyncs from the restarted replica A", TimeSpan.FromSeconds(60));
            Assert.Equal("after", await Net.RoundTripAsync(held, "after"));
            Assert.Equal("new", await Net.EchoOnceAsync(_cluster.Bar, "new"));
            held.Dispose();
            Assert.Equal(0, await dataPlane.TerminateAsync());
        }
        finally
        {
            await replicaA.DisposeAsync();
        }
    }

    [Fact]
    public async Task Bad_ca_or_token_settings_are_a_clear_start_up_error()
    {
        var missing = Path.Combine(_cluster.Directory.FullName, "missing.crt");
        await using (var noFile = StartDataPlane(Net.FreePort(), missing, Token("httpbin-token")))
        {
            Assert.NotEqual(0, await noFile.WaitForExitAsync());
            Assert.Contains($"ControllerStream.CertificateAuthorityFile: '{missing}' cannot be read", noFile.Output, StringComparison.Ordinal);
        }

        var notPem = Path.Combine(_cluster.Directory.FullName, "not-pem.crt");
        await File.WriteAllTextAsync(notPem, "hello");
        await using (var garbage = StartDataPlane(Net.FreePort(), notPem, Token("httpbin-token")))
        {
            Assert.NotEqual(0, await garbage.WaitForExitAsync());
            Assert.Contains("holds no PEM certificate", garbage.Output, StringComparison.Ordinal);
        }

        using var authority = StreamCertificates.CreateAuthority(DateTimeOffset.UtcNow);
        var ca = Path.Combine(_cluster.Directory.FullName, "ca.crt");
        await File.WriteAllTextAsync(ca, StreamCertificates.CertificatePem(authority));
        await using (var plain = GatewayProcess.Start(
            new Dictionary<string, string?> { ["KUBECONFIG"] = null },
            "gateway", "--gateway", $"{Namespace}/{GatewayName}", "--admin-port", "0", "--controller-address", "http://127.0.0.1:1",
            "--controller-ca-file", ca, "--controller-token-file", Token("httpbin-token")))
        {
            Assert.NotEqual(0, await plain.WaitForExitAsync());
            Assert.Contains("a CA to verify the controller with needs https:// addresses", plain.Output, StringComparison.Ordinal);
            Assert.Contains("a token is sent only over https://", plain.Output, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// The token a stream was admitted with bounds it (until this, a stream outlived its token and a revoked
    /// ServiceAccount kept receiving config): the controller ends the stream when the token expires (here the file is
    /// renewed only then, as for a data plane that missed the kubelet's renewal), and the data plane connects again with
    /// the renewed token file, keeping its open connection; a token the API server no longer accepts (ServiceAccount
    /// deleted) ends the stream at the next review, and is refused after that, while the data plane keeps serving its
    /// last config.
    /// </summary>
    [Fact]
    public async Task A_stream_ends_when_its_token_expires_or_is_revoked_and_the_data_plane_reconnects_with_its_renewed_token_keeping_connections()
    {
        await using var echo = new EchoServer();
        _cluster.ApplyEndpoints(echo.Port);
        var stream = Net.FreePort();
        await using var controller = StartController(stream, "controller-0", "--stream-token-review-interval", "1s");
        await controller.WaitUntilReadyAsync();
        var ca = await CaFileAsync();

        // The projected token: a JWT (as the kubelet's are) that expires soon.
        var first = Jwt(DateTimeOffset.UtcNow.AddSeconds(20));
        _cluster.Server.AddServiceAccountToken(first, Namespace, "fsm-gateway", Audience);
        var tokenFile = Path.Combine(_cluster.Directory.FullName, "token");
        await File.WriteAllTextAsync(tokenFile, first);
        await using var dataPlane = StartDataPlane(stream, ca, tokenFile);
        await controller.WaitForLineAsync("data plane dp-httpbin subscribed for");

        await dataPlane.WaitUntilReadyAsync();
        using var held = await Net.ConnectAsync(_cluster.Foo);
        Assert.Equal("before", await Net.RoundTripAsync(held, "before"));

        // The first token expires: the controller ends that stream; the file is renewed, and the data plane is served
        // again on its new token (an attempt on the expired one meanwhile is ended at once).
        var expired = await controller.WaitForLineAsync("ended the stream of data plane dp-httpbin", TimeSpan.FromSeconds(60));
        Assert.Contains("Unauthenticated", expired, StringComparison.Ordinal);
        Assert.Contains("expired", expired, StringComparison.Ordinal);
        var second = Jwt(DateTimeOffset.UtcNow.AddMinutes(10));
        _cluster.Server.AddServiceAccountToken(second, Namespace, "fsm-gateway", Audience);
        await File.WriteAllTextAsync(tokenFile, second);
        await Net.EventuallyAsync(() => Task.FromResult(_cluster.Server.ReviewedTokens.Contains(second) && dataPlane.CountLines("Config stream: synced") >= 2), "the data plane subscribed again with the renewed token", TimeSpan.FromSeconds(60));
        Assert.Equal("during", await Net.RoundTripAsync(held, "during"));

        // Config still reaches it on the new stream (which the expired first token could not have kept open).
        await using var banner = new BannerServer("B");
        await NewEndpointReachesTheDataPlaneAsync(banner);

        // Revoked: the API server no longer accepts the token. A review (every second here; the verdict cache is 10 s)
        // ends the stream, the data plane is refused from then on, and it keeps serving what it has.
        var endedBefore = controller.CountLines("ended the stream of data plane dp-httpbin");
        _cluster.Server.RemoveToken(second);
        await Net.EventuallyAsync(() => Task.FromResult(controller.CountLines("ended the stream of data plane dp-httpbin") > endedBefore), "the revoked token's stream ended", TimeSpan.FromSeconds(60));
        Assert.Contains("not accepted by the API server's TokenReview", controller.Output, StringComparison.Ordinal);
        await controller.WaitForLineAsync("refused data plane dp-httpbin", TimeSpan.FromSeconds(60));
        Assert.Equal("after", await Net.RoundTripAsync(held, "after"));
        Assert.Equal("B", await BannerServer.ReadBannerAsync(_cluster.Bar));
        Assert.False(dataPlane.HasExited);
        held.Dispose();
        Assert.Equal(0, await dataPlane.TerminateAsync());
        Assert.Equal(0, await controller.TerminateAsync());
    }

    /// <summary>
    /// The kubelet renews the projected token file at 80 % of the token's lifetime: the data plane sees the new file,
    /// opens a stream with the new token, lets it take over once it has synced and closes the old one, all before the
    /// old token expires. No stream is ended by the controller, nothing is logged as a warning, the held connection
    /// stays up and config keeps flowing. (Before, the data plane kept the old stream until the controller ended it at
    /// the token's expiry: a warning and a reconnect per token lifetime.)
    /// </summary>
    [Fact]
    public async Task A_renewed_token_file_moves_the_data_plane_to_a_new_stream_before_the_old_token_expires_with_no_warning_and_no_dropped_connection()
    {
        await using var echo = new EchoServer();
        _cluster.ApplyEndpoints(echo.Port);
        var stream = Net.FreePort();
        await using var controller = StartController(stream, "controller-0", "--stream-token-review-interval", "1s");
        await controller.WaitUntilReadyAsync();
        var ca = await CaFileAsync();

        var firstExpires = DateTimeOffset.UtcNow.AddSeconds(40);
        var first = Jwt(firstExpires);
        _cluster.Server.AddServiceAccountToken(first, Namespace, "fsm-gateway", Audience);
        var tokenFile = Path.Combine(_cluster.Directory.FullName, "token");
        await File.WriteAllTextAsync(tokenFile, first);
        await using var dataPlane = StartDataPlane(stream, ca, tokenFile);
        await dataPlane.WaitUntilReadyAsync();
        await controller.WaitForLineAsync("data plane dp-httpbin subscribed for");
        using var held = await Net.ConnectAsync(_cluster.Foo);
        Assert.Equal("before", await Net.RoundTripAsync(held, "before"));

        // The kubelet's renewal: a new token, and the file swapped to it (write to a temporary file, then rename over).
        var second = Jwt(DateTimeOffset.UtcNow.AddMinutes(10));
        _cluster.Server.AddServiceAccountToken(second, Namespace, "fsm-gateway", Audience);
        var staged = tokenFile + ".new";
        await File.WriteAllTextAsync(staged, second);
        File.Move(staged, tokenFile, overwrite: true);

        // The data plane switches (checking the file every 10 s) well before the old token expires.
        await dataPlane.WaitForLineAsync("Config stream: the stream on the renewed token to .* took over", TimeSpan.FromSeconds(35));
        Assert.True(DateTimeOffset.UtcNow < firstExpires, "the switch came before the old token expired");
        Assert.Contains(second, _cluster.Server.ReviewedTokens);
        Assert.Equal(2, controller.CountLines("data plane dp-httpbin subscribed for"));
        await controller.WaitForLineAsync("data plane dp-httpbin of .* disconnected");
        Assert.Equal("during", await Net.RoundTripAsync(held, "during"));

        // Past the old token's expiry (and several reviews): nothing ended, nothing reconnected, and config still flows.
        var wait = firstExpires - DateTimeOffset.UtcNow + TimeSpan.FromSeconds(3);
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait);
        }

        await using var banner = new BannerServer("B");
        await NewEndpointReachesTheDataPlaneAsync(banner);
        Assert.Equal("after", await Net.RoundTripAsync(held, "after"));
        Assert.Equal(0, controller.CountLines("ended the stream of data plane"));
        Assert.Equal(2, controller.CountLines("data plane dp-httpbin subscribed for"));
        Assert.Equal(2, dataPlane.CountLines("Config stream: synced"));
        Assert.Equal(0, dataPlane.CountLines("warn:.*Config stream"));
        Assert.Equal(0, controller.CountLines("warn:.*Config stream"));
        held.Dispose();
        Assert.Equal(0, await dataPlane.TerminateAsync());
        Assert.Equal(0, await controller.TerminateAsync());
    }

    /// <summary>A JWT shaped as a projected ServiceAccount token (the fake API server reviews it by value; the signature is not checked there).</summary>
    /// <summary>Moves the seed's Service to <paramref name="banner"/> and waits until the data plane's listener reaches it: config still flows.</summary>
    private async Task NewEndpointReachesTheDataPlaneAsync(BannerServer banner)
    {
        _cluster.ApplyEndpoints(banner.Port);
        await Net.EventuallyAsync(
            async () =>
            {
                try
                {
                    return await BannerServer.ReadBannerAsync(_cluster.Bar) == banner.Name;
                }
                catch (OperationCanceledException)
                {
                    return false; // still the echo server, which sends no banner
                }
            },
            "the new endpoint reaches the data plane",
            TimeSpan.FromSeconds(60));
    }

    private static string Jwt(DateTimeOffset expires)
    {
        static string Part(string json) => System.Buffers.Text.Base64Url.EncodeToString(Encoding.UTF8.GetBytes(json));
        return $"{Part("""{"alg":"RS256","kid":"test"}""")}.{Part($$"""{"aud":["{{Audience}}"],"exp":{{expires.ToUnixTimeSeconds()}},"iat":{{DateTimeOffset.UtcNow.ToUnixTimeSeconds()}},"sub":"system:serviceaccount:{{Namespace}}:fsm-gateway","jti":"{{Guid.NewGuid()}}"}""")}.c2lnbmF0dXJl";
    }

    private GatewayProcess StartController(int stream, string name = "controller-0", params string[] more) => GatewayProcess.Start(
        new Dictionary<string, string?> { ["POD_NAME"] = name },
        [
            "controller", "--kubeconfig", _cluster.Kubeconfig, "--admin-port", "0", "--no-leader-election", "--leader-election-namespace", "fsm-system",
            "--stream-address", "127.0.0.1", "--stream-port", stream.ToString(CultureInfo.InvariantCulture),
            "--data-plane-controller-address", $"https://127.0.0.1:{stream.ToString(CultureInfo.InvariantCulture)}", .. more,
        ]);

    private GatewayProcess StartDataPlane(int stream, string caFile, string tokenFile, string name = "dp-httpbin") => GatewayProcess.Start(
        new Dictionary<string, string?> { ["KUBECONFIG"] = null, ["POD_NAME"] = name },
        "gateway", "--gateway", $"{Namespace}/{GatewayName}", "--admin-port", "0",
        "--controller-address", $"https://127.0.0.1:{stream.ToString(CultureInfo.InvariantCulture)}",
        "--controller-ca-file", caFile, "--controller-token-file", tokenFile);

    /// <summary>The CA certificate of the controller's Secret, in a file, as the provisioned ConfigMap hands it to pods.</summary>
    private async Task<string> CaFileAsync()
    {
        JsonNode? secret = null;
        await Net.EventuallyAsync(() => Task.FromResult((secret = _cluster.Server.Get("v1", "Secret", "fsm-system", StreamAuthority.SecretName)) is not null), "the controller's CA Secret", TimeSpan.FromSeconds(30));
        var path = Path.Combine(_cluster.Directory.FullName, "controller-ca.crt");
        await File.WriteAllTextAsync(path, Encoding.ASCII.GetString(Convert.FromBase64String(secret!["data"]!["tls.crt"]!.GetValue<string>())));
        return path;
    }

    private string Token(string token)
    {
        var path = Path.Combine(_cluster.Directory.FullName, $"{token}.jwt");
        File.WriteAllText(path, FakeApiServer.ProjectedToken(token) + "\n");
        return path;
    }

    private static async Task AssertNotReadyAsync(GatewayProcess dataPlane)
    {
        await dataPlane.WaitForAdminAsync();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await http.GetAsync(new Uri(dataPlane.AdminUri!, "/readyz"))).StatusCode);
        Assert.False(dataPlane.HasExited);
    }
}
