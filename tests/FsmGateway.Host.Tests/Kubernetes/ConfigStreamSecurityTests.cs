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
        _cluster.Server.AddServiceAccountToken("httpbin-token", Namespace, "fsm-gateway", Audience);
        _cluster.Server.AddServiceAccountToken("intruder-token", "intruder", "fsm-gateway", Audience);
        _cluster.Server.AddServiceAccountToken("api-audience-token", Namespace, "fsm-gateway");
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

    private GatewayProcess StartController(int stream, string name = "controller-0") => GatewayProcess.Start(
        new Dictionary<string, string?> { ["POD_NAME"] = name },
        "controller", "--kubeconfig", _cluster.Kubeconfig, "--admin-port", "0", "--no-leader-election", "--leader-election-namespace", "fsm-system",
        "--stream-address", "127.0.0.1", "--stream-port", stream.ToString(CultureInfo.InvariantCulture),
        "--data-plane-controller-address", $"https://127.0.0.1:{stream.ToString(CultureInfo.InvariantCulture)}");

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
        File.WriteAllText(path, token + "\n");
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
