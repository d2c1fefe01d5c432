using FsmGateway.Configuration;
using FsmGateway.Resources;
using FsmGateway.Status;

namespace FsmGateway.Routing.Tests;

/// <summary>Issue 15: policy attachment rules that the scenario snapshots do not show on their own.</summary>
public sealed class PolicyAttachmentTests
{
    private static readonly DateTimeOffset Then = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static ResourceSetBuilder Base() => new ResourceSetBuilder("apps")
        .Gateway("gw", g => g.Listener("tcp", 8000))
        .TcpRoute("route", r => r.Parent("gw").Backend("echo", 9000))
        .Service("echo", 9000, "10.0.0.1:9000", "10.0.0.2:9000");

    private static CompilationResult Compile(ResourceSetBuilder builder) =>
        RouteCompiler.Compile(ConfigSnapshot.From(builder.Build()), CompilerOptions.Default, ListenerBindings.AssumeAllBound);

    private static HealthCheckPolicy Hcp(string name, string ns = "apps", string? targetNamespace = null, int maxFails = 3, DateTimeOffset? created = null) =>
        new(new ObjectMeta(ns, name) { CreationTimestamp = created },
            [new PolicyTargetReference("", "Service", "echo") { Namespace = targetNamespace }],
            [],
            new FsmHealthCheck(TimeSpan.FromSeconds(2), maxFails, null, null, []));

    private static RouteBackend Backend(CompilationResult result) => Assert.Single(Assert.Single(result.Table.Listeners).Backends);

    private static Condition Accepted(CompilationResult result, string kind, string name) =>
        Assert.Single(result.Statuses.Policies.Single(p => ResourceKey.KindName(p.Key.Kind) == kind && p.Key.Name == name).Value.Ancestors).Conditions.Single(c => c.Type == ConditionTypes.Accepted);

    [Fact]
    public void Without_a_policy_every_backend_shares_the_default_policy_and_no_policy_status_is_written()
    {
        var result = Compile(Base());

        Assert.Same(BackendPolicy.Default, Backend(result).Policy);
        Assert.Empty(result.Statuses.Policies);
        Assert.Null(BackendPolicy.Default.PassiveHealthCheck); // the transport's global passive health applies
        Assert.Null(BackendPolicy.Default.ActiveHealthCheck);
        Assert.Null(BackendPolicy.Default.MaxConnections);
    }

    [Fact]
    public void An_invalid_older_policy_does_not_take_the_target_from_a_valid_younger_one()
    {
        var result = Compile(Base()
            .Add(Hcp("older-but-invalid", maxFails: 0, created: Then))
            .Add(Hcp("younger", created: Then.AddDays(1))));

        Assert.Equal((ConditionStatus.False, ConditionReasons.Invalid), (Accepted(result, "HealthCheckPolicy", "older-but-invalid").Status, Accepted(result, "HealthCheckPolicy", "older-but-invalid").Reason));
        Assert.Equal(ConditionStatus.True, Accepted(result, "HealthCheckPolicy", "younger").Status);
        Assert.Equal(3, Backend(result).Policy.ActiveHealthCheck!.UnhealthyThreshold);
    }

    [Fact]
    public void Deleting_the_ReferenceGrant_revokes_a_cross_namespace_policy_at_once()
    {
        var grant = new ReferenceGrant(new ObjectMeta("apps", "allow"), [new ReferenceGrantFrom(PolicyApi.FsmGroup, "HealthCheckPolicy", "ops")], [new ReferenceGrantTo("", "Service", "echo")]);
        var granted = Compile(Base().Add(Hcp("hc", ns: "ops", targetNamespace: "apps")).Add(grant));
        var revoked = Compile(Base().Add(Hcp("hc", ns: "ops", targetNamespace: "apps")));

        Assert.Equal(ConditionStatus.True, Accepted(granted, "HealthCheckPolicy", "hc").Status);
        Assert.NotNull(Backend(granted).Policy.ActiveHealthCheck);
        Assert.Equal(ConditionReasons.TargetNotFound, Accepted(revoked, "HealthCheckPolicy", "hc").Reason);
        Assert.Same(BackendPolicy.Default, Backend(revoked).Policy);
    }

    [Fact]
    public void A_grant_for_another_kind_or_namespace_does_not_permit_the_policy()
    {
        var forRoutes = new ReferenceGrant(new ObjectMeta("apps", "routes"), [new ReferenceGrantFrom(GatewayApi.Group, "TCPRoute", "ops")], [new ReferenceGrantTo("", "Service", null)]);
        var forOtherNs = new ReferenceGrant(new ObjectMeta("apps", "other"), [new ReferenceGrantFrom(PolicyApi.FsmGroup, "HealthCheckPolicy", "dev")], [new ReferenceGrantTo("", "Service", null)]);

        var result = Compile(Base().Add(Hcp("hc", ns: "ops", targetNamespace: "apps")).Add(forRoutes).Add(forOtherNs));

        Assert.Equal(ConditionReasons.TargetNotFound, Accepted(result, "HealthCheckPolicy", "hc").Reason);
    }

    [Fact]
    public void A_policy_reaching_more_than_16_gateways_writes_16_ancestors_and_warns()
    {
        var builder = new ResourceSetBuilder("apps").Service("echo", 9000, "10.0.0.1:9000");
        for (var i = 0; i < 18; i++)
        {
            builder.Gateway($"gw{i:D2}", g => g.Listener("tcp", 8000 + i)).TcpRoute($"route{i:D2}", r => r.Parent($"gw{i:D2}").Backend("echo", 9000));
        }

        var result = Compile(builder.Add(Hcp("hc")));

        var ancestors = result.Statuses.Policies.Single().Value.Ancestors;
        Assert.Equal(PolicyStatus.MaxAncestors, ancestors.Length);
        Assert.Equal("gw00", ancestors[0].AncestorRef.Name);
        Assert.Contains(result.Diagnostics, d => d.Severity == DiagnosticSeverity.Warning && d.Message.Contains("reaches 18 ancestors", StringComparison.Ordinal));
        Assert.All(result.Table.Listeners, l => Assert.NotNull(Assert.Single(l.Backends).Policy.ActiveHealthCheck));
    }

    [Fact]
    public void A_ports_entry_without_its_own_check_uses_the_spec_level_one()
    {
        var policy = Hcp("hc") with { Ports = [new PortHealthCheck(9000, null)] };

        var result = Compile(Base().Add(policy));

        Assert.Equal(ConditionStatus.True, Accepted(result, "HealthCheckPolicy", "hc").Status);
        Assert.Equal(TimeSpan.FromSeconds(2), Backend(result).Policy.ActiveHealthCheck!.Interval);
    }
}
