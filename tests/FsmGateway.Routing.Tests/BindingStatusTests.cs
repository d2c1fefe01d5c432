using System.Collections.Immutable;
using FsmGateway.Configuration;
using FsmGateway.Resources;
using FsmGateway.Status;

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

    private static void AssertCondition(IEnumerable<Condition> conditions, string type, ConditionStatus status, string reason)
    {
        var condition = Assert.Single(conditions, c => c.Type == type);
        Assert.Equal((status, reason), (condition.Status, condition.Reason));
    }
}
