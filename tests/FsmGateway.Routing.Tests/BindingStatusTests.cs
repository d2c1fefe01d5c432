using System.Collections.Immutable;
using FsmGateway.Configuration;
using FsmGateway.Resources;
using FsmGateway.Status;
using Newtonsoft.Json.Linq;
using Snapshooter.Xunit;

namespace FsmGateway.Routing.Tests;

/// <summary><c>Programmed</c> and <c>PortUnavailable</c> come from what the transport reports, not from the spec alone.</summary>
public sealed class BindingStatusTests
{
    private static readonly ConfigSnapshot Seed = ConfigSnapshot.From(ScenarioCompiler.Read("001-seed-verbatim").Resources);

    [Fact]
    public void Compile_PortsNotYetBound_ListenersPendingAndGatewayPending()
    {
        var result = RouteCompiler.Compile(Seed, ScenarioCompiler.Options, ListenerBindings.Pending);

        var gateway = result.Statuses.Gateways.Values.Single();
        Assert.All(gateway.Listeners, l => AssertCondition(l.Conditions, ConditionTypes.Programmed, ConditionStatus.False, ConditionReasons.Pending));
        AssertCondition(gateway.Conditions, ConditionTypes.Programmed, ConditionStatus.False, ConditionReasons.Pending);
        AssertCondition(gateway.Conditions, ConditionTypes.Accepted, ConditionStatus.True, ConditionReasons.Accepted);
    }

    [Fact]
    public void Compile_PortInUse_ListenerPortUnavailableAndOthersStillProgrammed()
    {
        var bindings = new ListenerBindings(
            ImmutableSortedDictionary<int, BindOutcome>.Empty
                .Add(8000, BindOutcome.Failed("address already in use"))
                .Add(8001, BindOutcome.Bound),
            AssumeBound: false);

        var result = RouteCompiler.Compile(Seed, ScenarioCompiler.Options, bindings);

        var gateway = result.Statuses.Gateways.Values.Single();
        var foo = gateway.Listeners.Single(l => l.Name == "foo");
        var bar = gateway.Listeners.Single(l => l.Name == "bar");
        AssertCondition(foo.Conditions, ConditionTypes.Accepted, ConditionStatus.False, ConditionReasons.PortUnavailable);
        AssertCondition(foo.Conditions, ConditionTypes.Programmed, ConditionStatus.False, ConditionReasons.Invalid);
        Assert.Contains("address already in use", foo.Conditions.Single(c => c.Type == ConditionTypes.Accepted).Message, StringComparison.Ordinal);
        AssertCondition(bar.Conditions, ConditionTypes.Programmed, ConditionStatus.True, ConditionReasons.Programmed);
        AssertCondition(gateway.Conditions, ConditionTypes.Accepted, ConditionStatus.True, ConditionReasons.ListenersNotValid);
        Assert.Equal(2, result.Table.Listeners.Length);
    }

    [Fact]
    public void Compile_NoDataPlaneReported_ProgrammedFalsePendingSayingSoNeverTrue()
    {
        var gatewayKey = Seed.OfType<Gateway>().Single().Key;
        var bindings = ListenerBindings.Reported(
            ImmutableSortedDictionary<ResourceKey, ImmutableSortedDictionary<int, BindOutcome>>.Empty,
            new BindOutcome(BindState.Pending, "no data plane is provisioned for this Gateway"));

        var result = RouteCompiler.Compile(Seed, ScenarioCompiler.Options with { GatewaysHaveOwnAddresses = true }, bindings);

        var gateway = result.Statuses.Gateways[gatewayKey];
        AssertCondition(gateway.Conditions, ConditionTypes.Programmed, ConditionStatus.False, ConditionReasons.Pending);
        Assert.All(gateway.Listeners, l =>
        {
            AssertCondition(l.Conditions, ConditionTypes.Programmed, ConditionStatus.False, ConditionReasons.Pending);
            Assert.Contains("no data plane is provisioned", l.Conditions.Single(c => c.Type == ConditionTypes.Programmed).Message, StringComparison.Ordinal);
        });
        Snapshot.Match(JToken.Parse(CompilationResultJson.ToJsonNode(result)["resources"]!.ToJsonString()));
    }

    [Fact]
    public void Compile_DataPlaneReportedOnePortInUse_ThatListenerPortUnavailableTheOtherProgrammed()
    {
        var gatewayKey = Seed.OfType<Gateway>().Single().Key;
        var bindings = ListenerBindings.Reported(
            ImmutableSortedDictionary<ResourceKey, ImmutableSortedDictionary<int, BindOutcome>>.Empty.Add(
                gatewayKey,
                ImmutableSortedDictionary<int, BindOutcome>.Empty.Add(8000, BindOutcome.Bound).Add(8001, BindOutcome.Failed("Address already in use"))),
            new BindOutcome(BindState.Pending, "no data plane has reported"));

        var result = RouteCompiler.Compile(Seed, ScenarioCompiler.Options with { GatewaysHaveOwnAddresses = true }, bindings);

        var gateway = result.Statuses.Gateways[gatewayKey];
        var foo = gateway.Listeners.Single(l => l.Name == "foo");
        var bar = gateway.Listeners.Single(l => l.Name == "bar");
        AssertCondition(foo.Conditions, ConditionTypes.Programmed, ConditionStatus.True, ConditionReasons.Programmed);
        AssertCondition(bar.Conditions, ConditionTypes.Accepted, ConditionStatus.False, ConditionReasons.PortUnavailable);
        AssertCondition(bar.Conditions, ConditionTypes.Programmed, ConditionStatus.False, ConditionReasons.Invalid);
        AssertCondition(gateway.Conditions, ConditionTypes.Programmed, ConditionStatus.True, ConditionReasons.Programmed);
        Snapshot.Match(JToken.Parse(CompilationResultJson.ToJsonNode(result)["resources"]!.ToJsonString()));
    }

    private static void AssertCondition(IEnumerable<Condition> conditions, string type, ConditionStatus status, string reason)
    {
        var condition = Assert.Single(conditions, c => c.Type == type);
        Assert.Equal((status, reason), (condition.Status, condition.Reason));
    }
}
