using System.Text;
using FsmGateway.Kubernetes.ControlPlane;
using FsmGateway.Testing.Kubernetes;
using Microsoft.Extensions.Logging.Abstractions;

namespace FsmGateway.Kubernetes.Tests.ControlPlane;

/// <summary>The CA Secret (<see cref="StreamAuthority"/>) against the fake API server: created once, shared by replicas, kept across restarts.</summary>
public sealed class StreamAuthorityTests : IAsyncLifetime
{
    private FakeApiServer _server = null!;

    public async Task InitializeAsync() => _server = await FakeApiServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Losing_the_race_to_create_the_secret_takes_the_winners_ca()
    {
        // Another replica creates the Secret between this one's read (none) and its create: the create gets 409.
        using var winner = StreamCertificates.CreateAuthority(DateTimeOffset.UtcNow);
        var inserted = 0;
        _server.FailRequest = request =>
        {
            if (request is { Verb: "create", Resource: "secrets" } && Interlocked.Exchange(ref inserted, 1) == 0)
            {
                _server.ApplyYaml(SecretYaml(StreamCertificates.CertificatePem(winner), StreamCertificates.KeyPem(winner)));
            }

            return null;
        };

        using var authority = Start();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var serving = await authority.ServingAsync(timeout.Token);

        Assert.Equal(StreamCertificates.CertificatePem(winner), authority.AuthorityPem);
        Assert.Equal(winner.Subject, serving.Issuer);
        Assert.Single(_server.Requests, r => r is { Verb: "create", Resource: "secrets", StatusCode: 409 });
        await authority.StopAsync(default);
    }

    [Fact]
    public async Task Two_replicas_starting_together_end_up_with_one_ca_and_a_restart_keeps_it()
    {
        var (first, second) = (Start(), Start());
        using var a = first;
        using var b = second;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await a.ServingAsync(timeout.Token);
        await b.ServingAsync(timeout.Token);

        Assert.Equal(a.AuthorityPem, b.AuthorityPem);
        Assert.Single(_server.Requests, r => r is { Verb: "create", Resource: "secrets", StatusCode: 201 });
        var secret = _server.Get("v1", "Secret", "fsm-system", StreamAuthority.SecretName)!;
        Assert.Equal("kubernetes.io/tls", secret["type"]!.GetValue<string>());
        Assert.Equal(a.AuthorityPem, Encoding.ASCII.GetString(Convert.FromBase64String(secret["data"]!["tls.crt"]!.GetValue<string>())));
        await a.StopAsync(default);
        await b.StopAsync(default);

        // A restarted replica uses the stored CA: data planes that trust it keep connecting.
        using var restarted = Start();
        await restarted.ServingAsync(timeout.Token);
        Assert.Equal(a.AuthorityPem, restarted.AuthorityPem);
        Assert.Single(_server.Requests, r => r is { Verb: "create", Resource: "secrets", StatusCode: 201 });
        await restarted.StopAsync(default);
    }

    [Fact]
    public async Task A_secret_that_is_not_a_certificate_and_key_is_reported_naming_it_and_never_replaced()
    {
        _server.ApplyYaml(SecretYaml("garbage", "garbage"));
        var logger = new Support.RecordingLogger();
        using var authority = new StreamAuthority(_server.CreateClient(), "fsm-system", ["fsm-gateway-controller.fsm-system"], "flomesh.io/gateway-controller", TimeProvider.System, logger);
        await authority.StartAsync(default);

        await WaitForAsync(() => logger.Entries.Any(e => e.Message.Contains($"Secret fsm-system/{StreamAuthority.SecretName}", StringComparison.Ordinal) && e.Message.Contains("delete it", StringComparison.Ordinal)));
        Assert.Null(authority.AuthorityPem);
        Assert.DoesNotContain(_server.Requests, r => r.Verb == "create");
        await authority.StopAsync(default);
    }

    private static string SecretYaml(string certificate, string key) => $"""
        apiVersion: v1
        kind: Secret
        metadata: {"{"} name: {StreamAuthority.SecretName}, namespace: fsm-system {"}"}
        type: kubernetes.io/tls
        data: {"{"} tls.crt: {Convert.ToBase64String(Encoding.ASCII.GetBytes(certificate))}, tls.key: {Convert.ToBase64String(Encoding.ASCII.GetBytes(key))} {"}"}
        """;

    private StreamAuthority Start()
    {
        var authority = new StreamAuthority(_server.CreateClient(), "fsm-system", ["fsm-gateway-controller.fsm-system"], "flomesh.io/gateway-controller", TimeProvider.System, NullLogger.Instance);
        authority.StartAsync(default).GetAwaiter().GetResult();
        return authority;
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met within 30 s");
            await Task.Delay(50);
        }
    }
}
