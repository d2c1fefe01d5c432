using System.Security.Cryptography.X509Certificates;
using System.Text;
using FsmGateway.Kubernetes.ControlPlane;
using FsmGateway.Testing.Kubernetes;
using Microsoft.Extensions.Time.Testing;

namespace FsmGateway.Kubernetes.Tests.ControlPlane;

/// <summary>
/// The staged CA rotation (<see cref="CaRotation"/>, ADR 0014): the pure state machine on a given clock, and
/// <see cref="StreamAuthority"/> replicas moving it on through the Secret of the fake API server on a
/// <see cref="FakeTimeProvider"/>, across a leader change and a race.
/// </summary>
public sealed class CaRotationTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Start = new(2026, 11, 30, 6, 0, 0, TimeSpan.Zero);
    private static readonly CaRotationOptions Options = new()
    {
        Lifetime = TimeSpan.FromDays(90),
        PropagationDelay = TimeSpan.FromMinutes(5),
        RetireGrace = TimeSpan.FromHours(1),

        // The refresh loop never fires on its own here: the tests call RefreshAsync themselves, one step at a time.
        CheckInterval = Timeout.InfiniteTimeSpan,
    };

    private FakeApiServer _server = null!;

    public async Task InitializeAsync() => _server = await FakeApiServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public void State_machine_creates_publishes_waits_for_the_configmaps_and_the_kubelet_switches_then_retires_the_old_ca()
    {
        using var old = StreamCertificates.CreateAuthority(Start, Options.Lifetime);
        var stable = CaState.Of(old);
        var due = CaRotation.RotationDue(old, Options);
        Assert.Equal(Start + TimeSpan.FromDays(60), due, TimeSpan.FromMinutes(10)); // 2/3 of 90 days (plus the clock skew margin)

        Assert.Null(CaRotation.Next(stable, due - TimeSpan.FromSeconds(1), Options, published: true, Create));

        // Due: a new CA, trusted beside the old one, which still issues.
        var publishing = CaRotation.Next(stable, due, Options, published: true, Create)!;
        Assert.Equal(CaRotationStage.Publishing, publishing.Stage);
        Assert.Same(old, publishing.Signing);
        Assert.Equal([old.Thumbprint, publishing.Next!.Thumbprint], publishing.Trusted.Select(c => c.Thumbprint));
        Assert.Null(publishing.PublishedAt);

        // Not in every ConfigMap yet: nothing moves, however long it takes.
        Assert.Null(CaRotation.Next(publishing, due + TimeSpan.FromDays(1), Options, published: false, Create));

        // In every ConfigMap: noted, then the kubelet's propagation delay runs from there.
        var inConfigMaps = CaRotation.Next(publishing, due + TimeSpan.FromMinutes(1), Options, published: true, Create)!;
        Assert.Equal(due + TimeSpan.FromMinutes(1), inConfigMaps.PublishedAt);
        Assert.Null(CaRotation.Next(inConfigMaps, due + TimeSpan.FromMinutes(5), Options, published: true, Create));

        // Switched: the new CA issues; both are still trusted.
        var retiring = CaRotation.Next(inConfigMaps, due + TimeSpan.FromMinutes(6), Options, published: true, Create)!;
        Assert.Equal(CaRotationStage.Retiring, retiring.Stage);
        Assert.Equal(publishing.Next.Thumbprint, retiring.Signing.Thumbprint);
        Assert.Equal(2, retiring.Trusted.Count);
        Assert.Null(retiring.Next);

        // After the grace: the old CA leaves the bundle.
        Assert.Null(CaRotation.Next(retiring, due + TimeSpan.FromMinutes(65), Options, published: true, Create));
        var done = CaRotation.Next(retiring, due + TimeSpan.FromMinutes(66), Options, published: true, Create)!;
        Assert.Equal(CaRotationStage.Stable, done.Stage);
        Assert.Equal([publishing.Next.Thumbprint], done.Trusted.Select(c => c.Thumbprint));

        // The new CA is not due again before 2/3 of its own lifetime.
        Assert.Null(CaRotation.Next(done, due + TimeSpan.FromDays(59), Options, published: true, Create));

        static X509Certificate2 Create(DateTimeOffset now) => StreamCertificates.CreateAuthority(now, Options.Lifetime);
    }

    [Theory]
    [InlineData(0.0, "--stream-ca-rotate-at")]
    [InlineData(1.0, "--stream-ca-rotate-at")]
    [InlineData(double.NaN, "--stream-ca-rotate-at")]
    public void Bad_rotation_fraction_is_refused_naming_the_option(double rotateAt, string option)
    {
        var failures = new CaRotationOptions { RotateAt = rotateAt }.Validate();
        Assert.Contains(failures, f => f.StartsWith(option, StringComparison.Ordinal));
    }

    [Fact]
    public void Defaults_are_valid_and_a_grace_shorter_than_the_checks_or_a_rotation_too_late_to_finish_are_refused()
    {
        Assert.Empty(new CaRotationOptions().Validate());
        Assert.Contains(new CaRotationOptions { RetireGrace = TimeSpan.FromMinutes(1) }.Validate(), f => f.StartsWith("--stream-ca-retire-grace", StringComparison.Ordinal));
        Assert.Contains(new CaRotationOptions { Lifetime = TimeSpan.FromHours(2) }.Validate(), f => f.StartsWith("--stream-ca-lifetime/--stream-ca-rotate-at", StringComparison.Ordinal));
        Assert.Contains(new CaRotationOptions { CheckInterval = TimeSpan.Zero }.Validate(), f => f.StartsWith("--stream-ca-check-interval", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Replicas_rotate_through_the_secret_the_follower_switches_its_serving_certificate_and_a_new_leader_continues_mid_rotation()
    {
        var time = new FakeTimeProvider(Start);
        var aLeads = true;
        using var a = await StartAsync(time, () => aLeads, publishedThroughConfigMaps: true);
        using var b = await StartAsync(time, () => !aLeads, publishedThroughConfigMaps: true);
        var original = a.State!.Signing.Thumbprint;
        Assert.Equal(original, b.State!.Signing.Thumbprint);
        var servedByB = await b.ServingAsync(default);
        var trustChanges = 0;
        b.TrustChanged += () => Interlocked.Increment(ref trustChanges);

        // Not due: nothing is written.
        time.SetUtcNow(CaRotation.RotationDue(a.State.Signing, Options) - TimeSpan.FromMinutes(1));
        await a.RefreshAsync(default);
        Assert.Equal(CaRotationStage.Stable, Stored().Stage);

        // Due: the leader creates the new CA and the bundle; the follower reads it (and says the trust changed).
        time.Advance(TimeSpan.FromMinutes(2));
        await a.RefreshAsync(default);
        await b.RefreshAsync(default);
        var publishing = Stored();
        Assert.Equal(CaRotationStage.Publishing, publishing.Stage);
        Assert.Equal(2, publishing.Trusted.Count);
        Assert.Equal(publishing.TrustedPem, b.AuthorityPem);
        Assert.Equal(1, trustChanges);
        Assert.Equal(servedByB.Issuer, (await b.ServingAsync(default)).Issuer); // the old CA still issues
        var successor = publishing.Next!.Thumbprint;

        // The leader fails over mid-rotation (the follower is leader now). Until its provisioner has written the bundle
        // to every ConfigMap nothing moves; then the new leader carries on with the stored new CA: no second one.
        aLeads = false;
        time.Advance(TimeSpan.FromHours(1));
        await b.RefreshAsync(default);
        Assert.Null(Stored().PublishedAt);
        b.MarkPublished(b.AuthorityPem!);
        await b.RefreshAsync(default);
        Assert.NotNull(Stored().PublishedAt);
        Assert.Equal(successor, Stored().Next!.Thumbprint);
        time.Advance(Options.PropagationDelay);
        await a.RefreshAsync(default); // not leading: only reads
        Assert.Equal(CaRotationStage.Publishing, Stored().Stage);
        await b.RefreshAsync(default);
        Assert.Equal(CaRotationStage.Retiring, Stored().Stage);
        Assert.Equal(successor, Stored().Signing.Thumbprint);

        // Every replica issues from the new CA once it has read the Secret; the old CA is still trusted meanwhile.
        await a.RefreshAsync(default);
        foreach (var replica in new[] { a, b })
        {
            var serving = await replica.ServingAsync(default);
            Assert.True(Chains(serving, Stored().Trusted));
            Assert.Equal(Stored().Signing.Subject, serving.Issuer);
        }

        // After the grace the old CA is dropped from the bundle.
        time.Advance(Options.RetireGrace);
        await b.RefreshAsync(default);
        await a.RefreshAsync(default);
        var done = Stored();
        Assert.Equal(CaRotationStage.Stable, done.Stage);
        Assert.Equal([successor], done.Trusted.Select(c => c.Thumbprint));
        Assert.Equal(done.TrustedPem, a.AuthorityPem);
        Assert.False(Chains(servedByB, done.Trusted));
        Assert.True(Chains(await a.ServingAsync(default), done.Trusted));
        Assert.Equal(4, _server.Requests.Count(r => r is { Verb: "update", Resource: "secrets", StatusCode: 200 })); // new CA and bundle, published, switch, old CA dropped
        await a.StopAsync(default);
        await b.StopAsync(default);
    }

    [Fact]
    public async Task Two_replicas_that_both_think_they_lead_create_one_new_ca_between_them()
    {
        var time = new FakeTimeProvider(Start);
        var leading = true;
        using var a = await StartAsync(time, () => leading, publishedThroughConfigMaps: true);
        using var b = await StartAsync(time, () => leading, publishedThroughConfigMaps: true);
        time.SetUtcNow(CaRotation.RotationDue(a.State!.Signing, Options) + TimeSpan.FromMinutes(1));

        await Task.WhenAll(a.RefreshAsync(default), b.RefreshAsync(default));
        leading = false; // from here on both only read what was written
        await a.RefreshAsync(default);
        await b.RefreshAsync(default);

        var stored = Stored();
        Assert.Equal(CaRotationStage.Publishing, stored.Stage);
        Assert.Equal(stored.Next!.Thumbprint, a.State!.Next!.Thumbprint);
        Assert.Equal(stored.Next.Thumbprint, b.State!.Next!.Thumbprint);
        Assert.Single(_server.Requests, r => r is { Verb: "update", Resource: "secrets", StatusCode: 200 });
        await a.StopAsync(default);
        await b.StopAsync(default);
    }

    [Fact]
    public async Task A_secret_made_unreadable_mid_rotation_is_a_warning_naming_it_and_the_ca_in_hand_keeps_serving()
    {
        var time = new FakeTimeProvider(Start);
        var logger = new Support.RecordingLogger();
        using var authority = new StreamAuthority(_server.CreateClient(), "fsm-system", ["fsm-gateway-controller.fsm-system"], "flomesh.io/gateway-controller", time, logger, Options);
        await authority.StartAsync(default);
        var serving = await authority.ServingAsync(default);
        var secret = _server.Get("v1", "Secret", "fsm-system", StreamAuthority.SecretName)!.AsObject();
        secret["metadata"]!["annotations"]![CaRotation.StageAnnotation] = "Sideways";
        _server.ApplyYaml(secret.ToJsonString());

        await authority.RefreshAsync(default);

        var warning = Assert.Single(logger.Entries, e => e.Level == Microsoft.Extensions.Logging.LogLevel.Warning);
        Assert.Contains($"Secret fsm-system/{StreamAuthority.SecretName}: annotation {CaRotation.StageAnnotation} 'Sideways'", warning.Message, StringComparison.Ordinal);
        Assert.Same(serving, await authority.ServingAsync(default));
        await authority.StopAsync(default);
    }

    [Fact]
    public async Task Serving_certificate_is_issued_again_once_a_third_of_its_lifetime_is_left()
    {
        var time = new FakeTimeProvider(Start);
        using var authority = new StreamAuthority(_server.CreateClient(), "fsm-system", ["fsm-gateway-controller.fsm-system"], "flomesh.io/gateway-controller", time, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, Options with { Lifetime = TimeSpan.FromDays(365) });
        await authority.StartAsync(default);
        var first = await authority.ServingAsync(default);

        time.Advance(TimeSpan.FromDays(59));
        Assert.Same(first, await authority.ServingAsync(default));
        time.Advance(TimeSpan.FromDays(2));
        var renewed = await authority.ServingAsync(default);

        Assert.NotSame(first, renewed);
        Assert.True(renewed.NotAfter > first.NotAfter);
        Assert.Equal(first.Issuer, renewed.Issuer);
        await authority.StopAsync(default);
    }

    private CaState Stored()
    {
        var json = _server.Get("v1", "Secret", "fsm-system", StreamAuthority.SecretName)!.ToJsonString();
        var secret = k8s.KubernetesJson.Deserialize<k8s.Models.V1Secret>(json);
        return CaRotation.Read(secret, "test");
    }

    private async Task<StreamAuthority> StartAsync(TimeProvider time, Func<bool> isLeader, bool publishedThroughConfigMaps = false)
    {
        var authority = new StreamAuthority(_server.CreateClient(), "fsm-system", ["fsm-gateway-controller.fsm-system"], "flomesh.io/gateway-controller", time, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, Options, isLeader, publishedThroughConfigMaps);
        await authority.StartAsync(default);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await authority.ServingAsync(timeout.Token);
        return authority;
    }

    private static bool Chains(X509Certificate2 serving, IReadOnlyList<X509Certificate2> trusted)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(trusted.ToArray());
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = (serving.NotBefore + TimeSpan.FromMinutes(10)).ToLocalTime();
        chain.ChainPolicy.VerificationTimeIgnored = false;
        return chain.Build(serving);
    }
}
