using FsmGateway.Configuration;
using FsmGateway.Kubernetes.Manifests;
using FsmGateway.Resources;
using FsmGateway.Status;

namespace FsmGateway.Routing.Tests;

/// <summary>With a data plane per Gateway, two Gateways on one port do not conflict; on one machine they do.</summary>
public sealed class OwnAddressesTests
{
    private static readonly ConfigSnapshot TwoGatewaysOnOnePort = ConfigSnapshot.From(ManifestReader.ReadText("""
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata: { name: older, namespace: a, creationTimestamp: "2026-01-01T00:00:00Z" }
        spec: { gatewayClassName: fsm, listeners: [{ name: pg, port: 5432, protocol: TCP }] }
        ---
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata: { name: newer, namespace: b, creationTimestamp: "2026-01-02T00:00:00Z" }
        spec: { gatewayClassName: fsm, listeners: [{ name: pg, port: 5432, protocol: TCP }] }
        """, "two-gateways.yaml").Resources);

    [Fact]
    public void Compile_GatewaysWithOwnAddresses_BothServeTheSamePort()
    {
        var options = ScenarioCompiler.Options with { GatewaysHaveOwnAddresses = true };

        var result = RouteCompiler.Compile(TwoGatewaysOnOnePort, options, ListenerBindings.AssumeAllBound);

        Assert.Equal(2, result.Table.Listeners.Count(l => l.Port == 5432));
        Assert.All(result.Statuses.Gateways.Values, g => Assert.Contains(g.Listeners[0].Conditions, c => c is { Type: ConditionTypes.Conflicted, Status: ConditionStatus.False }));
    }

    [Fact]
    public void Compile_GatewaysSharingAMachine_TheNewerOneConflicts()
    {
        var result = RouteCompiler.Compile(TwoGatewaysOnOnePort, ScenarioCompiler.Options, ListenerBindings.AssumeAllBound);

        var newer = result.Statuses.Gateways[new ResourceKey(ResourceKind.Gateway, "b", "newer")];
        Assert.Contains(newer.Listeners[0].Conditions, c => c is { Type: ConditionTypes.Conflicted, Status: ConditionStatus.True });
        Assert.Single(result.Table.Listeners, l => l.Port == 5432);
    }
}
