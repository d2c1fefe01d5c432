using System.Collections.Immutable;
using FsmGateway.Configuration;
using FsmGateway.Resources;
using FsmGateway.Status;
using Newtonsoft.Json.Linq;
using Snapshooter;
using Snapshooter.Xunit;

namespace FsmGateway.Routing.Tests;

/// <summary>
/// What a provisioning controller found of a Gateway's data plane (Deployment availability, the Service's address,
/// unusable parameters) is a compiler input: Programmed, the addresses and InvalidParameters are decided here, with
/// every listener reported bound by the data planes.
/// </summary>
public sealed class ProvisionedDataPlaneStatusTests
{
    private static readonly ConfigSnapshot Seed = ConfigSnapshot.From(ScenarioCompiler.Read("001-seed-verbatim").Resources);
    private static readonly ResourceKey GatewayKey = Seed.OfType<Gateway>().Single().Key;
    private static readonly string Deployment = $"{GatewayKey.Namespace}/fsm-gateway-{GatewayKey.Name}";

    public static TheoryData<string> Cases => [.. Observations.Keys];

    private static readonly Dictionary<string, (ProvisionedDataPlane? DataPlane, ConditionStatus Accepted, string AcceptedReason, ConditionStatus Programmed, string ProgrammedReason)> Observations = new()
    {
        ["no-deployment-yet"] = (null, ConditionStatus.True, ConditionReasons.Accepted, ConditionStatus.False, ConditionReasons.Pending),
        ["deployment-without-available-replicas"] = (new ProvisionedDataPlane(Deployment, 0, [new GatewayAddress(GatewayAddress.IPAddressType, "203.0.113.7")]), ConditionStatus.True, ConditionReasons.Accepted, ConditionStatus.False, ConditionReasons.Pending),
        ["lb-address-absent"] = (new ProvisionedDataPlane(Deployment, 2, []), ConditionStatus.True, ConditionReasons.Accepted, ConditionStatus.False, ConditionReasons.AddressNotAssigned),
        ["lb-address-ip"] = (new ProvisionedDataPlane(Deployment, 1, [new GatewayAddress(GatewayAddress.IPAddressType, "203.0.113.7")]), ConditionStatus.True, ConditionReasons.Accepted, ConditionStatus.True, ConditionReasons.Programmed),
        ["lb-address-hostname"] = (new ProvisionedDataPlane(Deployment, 1, [new GatewayAddress("Hostname", "a1b2.elb.example.com")]), ConditionStatus.True, ConditionReasons.Accepted, ConditionStatus.True, ConditionReasons.Programmed),
        ["invalid-parameters-data-plane-kept"] = (new ProvisionedDataPlane(Deployment, 1, [new GatewayAddress(GatewayAddress.IPAddressType, "203.0.113.7")]) { ParametersError = "Gateway default/gw: spec.infrastructure.parametersRef: ConfigMap default/params not found" }, ConditionStatus.False, ConditionReasons.InvalidParameters, ConditionStatus.True, ConditionReasons.Programmed),
        ["invalid-parameters-no-data-plane"] = (new ProvisionedDataPlane(Deployment, 0, []) { ParametersError = "Gateway default/gw: spec.infrastructure.parametersRef: ConfigMap default/params not found" }, ConditionStatus.False, ConditionReasons.InvalidParameters, ConditionStatus.False, ConditionReasons.Invalid),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Compile_WithWhatProvisioningFound_DecidesProgrammedAddressesAndAccepted(string name)
    {
        var (dataPlane, accepted, acceptedReason, programmed, programmedReason) = Observations[name];
        var found = dataPlane is null ? ProvisionedDataPlanes.None : new ProvisionedDataPlanes(ImmutableSortedDictionary<ResourceKey, ProvisionedDataPlane>.Empty.Add(GatewayKey, dataPlane));

        var result = RouteCompiler.Compile(Seed, ScenarioCompiler.Options with { GatewaysHaveOwnAddresses = true }, AllBound(), found);

        var gateway = result.Statuses.Gateways[GatewayKey];
        AssertCondition(gateway.Conditions, ConditionTypes.Accepted, accepted, acceptedReason);
        AssertCondition(gateway.Conditions, ConditionTypes.Programmed, programmed, programmedReason);
        Assert.Equal(dataPlane?.Addresses ?? [], gateway.Addresses);
        Assert.All(gateway.Listeners, l => AssertCondition(l.Conditions, ConditionTypes.Programmed, ConditionStatus.True, ConditionReasons.Programmed));
        Snapshot.Match(JToken.Parse(CompilationResultJson.ToJsonNode(result)["resources"]!.ToJsonString()), SnapshotNameExtension.Create(name));
    }

    [Fact]
    public void Compile_NothingProvisioned_NoAddressAndProgrammedAsTheDataPlanesReport()
    {
        var result = RouteCompiler.Compile(Seed, ScenarioCompiler.Options with { GatewaysHaveOwnAddresses = true }, AllBound(), dataPlanes: null);

        var gateway = result.Statuses.Gateways[GatewayKey];
        AssertCondition(gateway.Conditions, ConditionTypes.Programmed, ConditionStatus.True, ConditionReasons.Programmed);
        Assert.Empty(gateway.Addresses);
    }

    [Fact]
    public void Compile_DataPlaneNotReportedButDeploymentAvailable_StillPendingOnTheReports()
    {
        var found = new ProvisionedDataPlanes(ImmutableSortedDictionary<ResourceKey, ProvisionedDataPlane>.Empty.Add(
            GatewayKey, new ProvisionedDataPlane(Deployment, 1, [new GatewayAddress(GatewayAddress.IPAddressType, "203.0.113.7")])));
        var nothingReported = ListenerBindings.Reported(
            ImmutableSortedDictionary<ResourceKey, ImmutableSortedDictionary<int, BindOutcome>>.Empty,
            new BindOutcome(BindState.Pending, "no data plane of this Gateway has connected to the controller and reported yet"));

        var result = RouteCompiler.Compile(Seed, ScenarioCompiler.Options with { GatewaysHaveOwnAddresses = true }, nothingReported, found);

        var gateway = result.Statuses.Gateways[GatewayKey];
        AssertCondition(gateway.Conditions, ConditionTypes.Programmed, ConditionStatus.False, ConditionReasons.Pending);
        Assert.Contains("has connected to the controller", gateway.Conditions.Single(c => c.Type == ConditionTypes.Programmed).Message, StringComparison.Ordinal);
        Assert.Equal(found.ByGateway[GatewayKey].Addresses, gateway.Addresses);
    }

    private static ListenerBindings AllBound() => ListenerBindings.Reported(
        ImmutableSortedDictionary<ResourceKey, ImmutableSortedDictionary<int, BindOutcome>>.Empty.Add(
            GatewayKey,
            ImmutableSortedDictionary<int, BindOutcome>.Empty.Add(8000, BindOutcome.Bound).Add(8001, BindOutcome.Bound)),
        new BindOutcome(BindState.Pending, "no data plane has reported"));

    private static void AssertCondition(IEnumerable<Condition> conditions, string type, ConditionStatus status, string reason)
    {
        var condition = Assert.Single(conditions, c => c.Type == type);
        Assert.Equal((status, reason), (condition.Status, condition.Reason));
    }
}
