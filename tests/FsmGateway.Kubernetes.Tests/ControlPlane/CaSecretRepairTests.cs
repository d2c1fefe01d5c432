using System.Text;
using System.Text.Json.Nodes;
using FsmGateway.Kubernetes.ControlPlane;
using FsmGateway.Kubernetes.Tests.Support;
using FsmGateway.Testing.Kubernetes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace FsmGateway.Kubernetes.Tests.ControlPlane;

/// <summary>
/// The CA Secret repaired from memory while replicas run (<see cref="CaSecretRepair"/>, ADR 0014 "Repair"):
/// <see cref="StreamAuthority"/> replicas against the fake API server on a <see cref="FakeTimeProvider"/>, each check
/// driven by the test (<see cref="StreamAuthority.RefreshAsync"/>).
/// </summary>
public sealed class CaSecretRepairTests : IAsyncLifetime
{
    private const string Where = $"fsm-system/{StreamAuthority.SecretName}";
    private static readonly DateTimeOffset Start = new(2026, 11, 30, 6, 0, 0, TimeSpan.Zero);
    private static readonly CaRotationOptions Options = new()
    {
        Lifetime = TimeSpan.FromDays(90),
        PropagationDelay = TimeSpan.FromMinutes(5),
        RetireGrace = TimeSpan.FromHours(1),
        CheckInterval = Timeout.InfiniteTimeSpan, // the tests call RefreshAsync themselves
    };

    private FakeApiServer _server = null!;

    public async Task InitializeAsync() => _server = await FakeApiServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    /// <summary>
    /// Mid-rotation (Publishing: a new CA in the bundle), the Secret is deleted. The follower writes nothing and keeps
    /// its CA; the leader writes back the same CA, bundle, new CA and stage; the follower reads it with nothing changed
    /// (no trust change, the same serving certificate), and the rotation goes on from the restored stage.
    /// </summary>
    [Fact]
    public async Task Deleted_secret_is_written_back_by_the_leader_with_the_same_ca_and_rotation_stage_and_the_follower_creates_nothing()
    {
        var time = new FakeTimeProvider(Start);
        var logger = new RecordingLogger();
        using var a = await StartAsync(time, () => true, logger);
        using var b = await StartAsync(time, () => false);
        time.SetUtcNow(CaRotation.RotationDue(a.State!.Signing, Options) + TimeSpan.FromMinutes(1));
        await a.RefreshAsync(default);
        await b.RefreshAsync(default);
        var before = Stored();
        Assert.Equal(CaRotationStage.Publishing, before.Stage);
        var servedByB = await b.ServingAsync(default);
        var trustChanges = 0;
        b.TrustChanged += () => Interlocked.Increment(ref trustChanges);
        var mark = _server.Requests.Count;

        Assert.True(_server.Delete("v1", "Secret", "fsm-system", StreamAuthority.SecretName));
        time.Advance(TimeSpan.FromMinutes(1));
        await b.RefreshAsync(default);
        Assert.Null(_server.Get("v1", "Secret", "fsm-system", StreamAuthority.SecretName));
        await a.RefreshAsync(default);

        var after = Stored();
        Assert.Equal(before.Signing.Thumbprint, after.Signing.Thumbprint);
        Assert.Equal(before.Next!.Thumbprint, after.Next!.Thumbprint);
        Assert.Equal(before.TrustedPem, after.TrustedPem);
        Assert.Equal((before.Stage, before.Since), (after.Stage, after.Since));
        Assert.Single(_server.Requests.Skip(mark), r => r is { Verb: "create", Resource: "secrets" });
        var warning = Assert.Single(logger.Entries, e => e.Level == LogLevel.Warning);
        Assert.Contains($"Secret {Where} was deleted; wrote back the CA '{before.Signing.Subject}'", warning.Message, StringComparison.Ordinal);
        Assert.Contains("stage Publishing", warning.Message, StringComparison.Ordinal);

        await b.RefreshAsync(default);
        Assert.Equal(0, trustChanges);
        Assert.Same(servedByB, await b.ServingAsync(default));
        Assert.Equal(after.TrustedPem, b.AuthorityPem);

        // The rotation goes on from the restored stage: the bundle's publication is noted, no second new CA is made.
        a.MarkPublished(a.AuthorityPem!);
        await a.RefreshAsync(default);
        Assert.NotNull(Stored().PublishedAt);
        Assert.Equal(before.Next.Thumbprint, Stored().Next!.Thumbprint);
        await a.StopAsync(default);
        await b.StopAsync(default);
    }

    /// <summary>An emptied or corrupted Secret is replaced by the leader with the CA it holds, with a Warning naming the Secret and the field.</summary>
    [Theory]
    [InlineData("emptied", " has no data.tls.crt and data.tls.key")]
    [InlineData("bad-pem", ": data.tls.crt and data.tls.key are not a PEM certificate and its key")]
    [InlineData("bundle-without-issuer", ": data.ca.crt does not hold the CA of data.tls.crt")]
    [InlineData("bad-stage", $": annotation {CaRotation.StageAnnotation} 'Sideways' is not Publishing or Retiring")]
    public async Task Corrupted_secret_is_replaced_by_the_leader_with_the_ca_it_holds_and_a_warning_naming_the_secret_and_the_field(string damage, string field)
    {
        var time = new FakeTimeProvider(Start);
        var logger = new RecordingLogger();
        using var a = await StartAsync(time, () => true, logger);
        var held = a.State!;
        var serving = await a.ServingAsync(default);
        var secret = _server.Get("v1", "Secret", "fsm-system", StreamAuthority.SecretName)!;
        var data = secret["data"]!.AsObject();
        switch (damage)
        {
            case "emptied":
                secret["data"] = new JsonObject();
                break;
            case "bad-pem":
                data["tls.crt"] = Convert.ToBase64String("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"u8);
                break;
            case "bundle-without-issuer":
                using (var other = StreamCertificates.CreateAuthority(Start, Options.Lifetime))
                {
                    data[CaRotation.BundleKey] = Convert.ToBase64String(Encoding.ASCII.GetBytes(StreamCertificates.CertificatePem(other)));
                }

                break;
            default:
                secret["metadata"]!["annotations"]![CaRotation.StageAnnotation] = "Sideways";
                break;
        }

        _server.Apply(secret);
        await a.RefreshAsync(default);

        var stored = Stored();
        Assert.Equal(held.Signing.Thumbprint, stored.Signing.Thumbprint);
        Assert.Equal(held.TrustedPem, stored.TrustedPem);
        Assert.Equal(CaRotationStage.Stable, stored.Stage);
        var warning = Assert.Single(logger.Entries, e => e.Level == LogLevel.Warning);
        Assert.Contains($"Secret {Where}{field}", warning.Message, StringComparison.Ordinal);
        Assert.Contains("wrote back the CA", warning.Message, StringComparison.Ordinal);
        Assert.Same(serving, await a.ServingAsync(default));

        // Repaired: the next check finds nothing to do.
        var mark = _server.Requests.Count;
        await a.RefreshAsync(default);
        Assert.DoesNotContain(_server.Requests.Skip(mark), r => r is { Resource: "secrets", Verb: "update" or "create" });
        await a.StopAsync(default);
    }

    /// <summary>Two replicas that both think they lead repair a deleted Secret at the same moment: one create wins, both hold the one CA.</summary>
    [Fact]
    public async Task Two_replicas_repairing_a_deleted_secret_at_once_write_it_back_once()
    {
        var time = new FakeTimeProvider(Start);
        using var a = await StartAsync(time, () => true);
        using var b = await StartAsync(time, () => true);
        var original = a.State!.Signing.Thumbprint;
        var mark = _server.Requests.Count;

        _server.Delete("v1", "Secret", "fsm-system", StreamAuthority.SecretName);
        await Task.WhenAll(a.RefreshAsync(default), b.RefreshAsync(default));
        await a.RefreshAsync(default);
        await b.RefreshAsync(default);

        var requests = _server.Requests.Skip(mark).ToList();
        Assert.Single(requests, r => r is { Verb: "create", Resource: "secrets", StatusCode: 201 });
        Assert.DoesNotContain(requests, r => r is { Verb: "update", Resource: "secrets" });
        await AssertBothHoldAsync(original, a, b);
    }

    /// <summary>
    /// The Secret is deleted, and leadership moves before the old leader's check: the old leader (a follower now)
    /// writes nothing; the new leader writes back the CA they both hold.
    /// </summary>
    [Fact]
    public async Task A_leader_change_mid_repair_has_the_new_leader_write_back_the_same_ca()
    {
        var time = new FakeTimeProvider(Start);
        var aLeads = true;
        using var a = await StartAsync(time, () => aLeads);
        using var b = await StartAsync(time, () => !aLeads);
        var original = a.State!.Signing.Thumbprint;

        _server.Delete("v1", "Secret", "fsm-system", StreamAuthority.SecretName);
        await b.RefreshAsync(default); // follower: waits
        aLeads = false;
        await a.RefreshAsync(default); // no longer leads: waits too
        Assert.Null(_server.Get("v1", "Secret", "fsm-system", StreamAuthority.SecretName));
        await b.RefreshAsync(default); // the new leader repairs
        await a.RefreshAsync(default);

        await AssertBothHoldAsync(original, a, b);
    }

    /// <summary>
    /// A replica that starts while the Secret is gone holds no CA, so it creates one (the create-once path); no data
    /// plane trusts it. The leader overwrites it with the CA it holds; the follower never serves the stray CA (it keeps
    /// its own while the leader has not had a check); the new replica follows the restored CA and issues from it.
    /// </summary>
    [Fact]
    public async Task A_ca_created_by_a_replica_started_while_the_secret_was_gone_is_overwritten_by_the_leader_and_never_served_by_the_follower()
    {
        var time = new FakeTimeProvider(Start);
        using var leader = await StartAsync(time, () => true);
        using var follower = await StartAsync(time, () => false);
        var original = leader.State!.Signing;

        _server.Delete("v1", "Secret", "fsm-system", StreamAuthority.SecretName);
        time.Advance(TimeSpan.FromMinutes(1)); // a CA's subject carries its creation time: the two are told apart by it
        using var fresh = await StartAsync(time, () => false);
        var stray = fresh.State!.Signing.Thumbprint;
        Assert.NotEqual(original.Thumbprint, stray);

        // The follower reads the stray CA before the leader's check: it keeps its own.
        await follower.RefreshAsync(default);
        Assert.Equal(original.Thumbprint, follower.State!.Signing.Thumbprint);
        Assert.Equal(original.Subject, (await follower.ServingAsync(default)).Issuer);

        await leader.RefreshAsync(default);
        Assert.Equal(original.Thumbprint, Stored().Signing.Thumbprint);

        await follower.RefreshAsync(default);
        await fresh.RefreshAsync(default);
        Assert.Equal(original.Thumbprint, follower.State!.Signing.Thumbprint);
        Assert.Equal(original.Thumbprint, fresh.State!.Signing.Thumbprint);
        Assert.Equal(original.Subject, (await fresh.ServingAsync(default)).Issuer);
        await leader.StopAsync(default);
        await follower.StopAsync(default);
        await fresh.StopAsync(default);
    }

    /// <summary>
    /// When the replica that created a new CA in the gap is the leader (the one that held the old CA went), a follower
    /// holding the old CA follows the stored one after two check intervals rather than serving a CA the ConfigMaps no
    /// longer carry forever.
    /// </summary>
    [Fact]
    public void A_follower_follows_a_recreated_secret_with_another_ca_once_the_leader_has_had_a_check_to_overwrite_it()
    {
        using var held = StreamCertificates.CreateAuthority(Start, Options.Lifetime);
        using var stray = StreamCertificates.CreateAuthority(Start, Options.Lifetime);
        var heldState = CaState.Of(held);
        var strayState = CaState.Of(stray);

        Assert.Equal(CaSecretAction.KeepHeld, CaSecretRepair.Decide(heldState, "uid-1", CaSecretRead.Of(strayState, "uid-2", 1), leading: false));
        Assert.Equal(CaSecretAction.KeepHeld, CaSecretRepair.Decide(heldState, "uid-1", CaSecretRead.Of(strayState, "uid-2", 2), leading: false));
        Assert.Equal(CaSecretAction.Follow, CaSecretRepair.Decide(heldState, "uid-1", CaSecretRead.Of(strayState, "uid-2", 3), leading: false));
        Assert.Equal(CaSecretAction.Overwrite, CaSecretRepair.Decide(heldState, "uid-1", CaSecretRead.Of(strayState, "uid-2", 1), leading: true));

        // The same Secret edited in place with another CA is someone replacing it on purpose: followed at once.
        Assert.Equal(CaSecretAction.Follow, CaSecretRepair.Decide(heldState, "uid-1", CaSecretRead.Of(strayState, "uid-1", 1), leading: true));

        // Recreated with the CA in hand (the leader's repair): followed.
        Assert.Equal(CaSecretAction.Follow, CaSecretRepair.Decide(heldState, "uid-1", CaSecretRead.Of(CaState.Of(held), "uid-2", 1), leading: false));
    }

    /// <summary>The stored Secret, <paramref name="a"/> and <paramref name="b"/> all hold the CA <paramref name="original"/>; then both stop.</summary>
    private async Task AssertBothHoldAsync(string original, StreamAuthority a, StreamAuthority b)
    {
        Assert.Equal(original, Stored().Signing.Thumbprint);
        Assert.Equal(original, a.State!.Signing.Thumbprint);
        Assert.Equal(original, b.State!.Signing.Thumbprint);
        await a.StopAsync(default);
        await b.StopAsync(default);
    }

    private CaState Stored()
    {
        var json = _server.Get("v1", "Secret", "fsm-system", StreamAuthority.SecretName)!.ToJsonString();
        return CaRotation.Read(k8s.KubernetesJson.Deserialize<k8s.Models.V1Secret>(json), "test");
    }

    private async Task<StreamAuthority> StartAsync(TimeProvider time, Func<bool> isLeader, ILogger? logger = null)
    {
        var authority = new StreamAuthority(_server.CreateClient(), "fsm-system", ["fsm-gateway-controller.fsm-system"], "flomesh.io/gateway-controller", time, logger ?? NullLogger.Instance, Options, isLeader, publishedThroughConfigMaps: true);
        await authority.StartAsync(default);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await authority.ServingAsync(timeout.Token);
        return authority;
    }
}
