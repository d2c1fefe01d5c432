using System.Collections.Immutable;
using FsmGateway.Configuration;
using FsmGateway.Resources;

namespace FsmGateway.Routing.Tests;

/// <summary>
/// A Gateway's closure is all its data plane needs: compiled alone (as a data plane compiles what the controller
/// streams it), it gives that Gateway the same routing table and status as the controller's whole config does; and it
/// holds nothing the Gateway does not need.
/// </summary>
public sealed class GatewayClosureTests
{
    private static readonly CompilerOptions Controller = ScenarioCompiler.Options with { GatewaysHaveOwnAddresses = true };

    // The data plane compiles without an implicit class: the closure carries the class the controller decided on.
    private static readonly CompilerOptions DataPlane = Controller with { ImplicitGatewayClassName = null };

    public static TheoryData<string> Scenarios => [.. ScenarioCompiler.Names];

    [Theory]
    [MemberData(nameof(Scenarios))]
    public void Of_EveryGatewayOfAScenario_CompilesAloneToWhatTheWholeConfigGivesIt(string scenario)
    {
        var snapshot = ConfigSnapshot.From(ScenarioCompiler.Read(scenario).Resources);
        var whole = RouteCompiler.Compile(snapshot, Controller, ListenerBindings.AssumeAllBound);
        foreach (var gateway in snapshot.OfType<Gateway>())
        {
            var closure = GatewayClosure.Of(snapshot, gateway.Key, Controller.ImplicitGatewayClassName, Controller.ControllerName);
            var alone = RouteCompiler.Compile(ConfigSnapshot.From(closure.Values), DataPlane, ListenerBindings.AssumeAllBound);

            Assert.Equal(
                whole.Table.Listeners.Where(l => l.Gateway == gateway.Key).ToList(),
                alone.Table.Listeners.Where(l => l.Gateway == gateway.Key).ToList());
            Assert.Equal(whole.Statuses.Gateways.GetValueOrDefault(gateway.Key), alone.Statuses.Gateways.GetValueOrDefault(gateway.Key));
        }
    }

    [Fact]
    public void Of_Seed_HoldsTheGatewayItsClassRouteServicesSlicesAndNamespaceOnly()
    {
        var snapshot = ConfigSnapshot.From([
            .. ScenarioCompiler.Read("002-seed-with-endpointslice").Resources,
            new Service(new ObjectMeta("default", "unrelated"), [new ServicePort(null, 80, "TCP")]),
            new EndpointSlice(new ObjectMeta("default", "unrelated-1"), "unrelated", "IPv4", [], []),
            new KubernetesNamespace(new ObjectMeta(string.Empty, "elsewhere")),
            new KubernetesNamespace(new ObjectMeta(string.Empty, "default")),
            new ReferenceGrant(new ObjectMeta("elsewhere", "grant"), [new ReferenceGrantFrom(GatewayApi.Group, "TCPRoute", "default")], [new ReferenceGrantTo(string.Empty, "Service", null)]),
        ]);
        var gateway = snapshot.OfType<Gateway>().Single().Key;

        var closure = GatewayClosure.Of(snapshot, gateway, "fsm", GatewayApi.DefaultControllerName);

        Assert.DoesNotContain(closure.Keys, k => k.Name.StartsWith("unrelated", StringComparison.Ordinal) || k.Namespace == "elsewhere" || k.Name == "elsewhere");
        Assert.Contains(new ResourceKey(ResourceKind.Namespace, string.Empty, "default"), closure.Keys);
        Assert.Contains(gateway, closure.Keys);
        Assert.Contains(closure.Values, r => r is TcpRoute);
        Assert.Contains(closure.Values, r => r is Service { Metadata.Name: "httpbin" });
        Assert.Contains(closure.Values, r => r is EndpointSlice { ServiceName: "httpbin" });

        // No GatewayClass in the config: the implicit one is carried, so a data plane without one decides alike.
        var implicitClass = Assert.IsType<GatewayClass>(closure[new ResourceKey(ResourceKind.GatewayClass, string.Empty, "fsm")]);
        Assert.Equal(GatewayApi.DefaultControllerName, implicitClass.ControllerName);
    }

    [Fact]
    public void Of_RoutePointedAtAnotherService_TheOldServiceAndItsSlicesLeaveAndTheNewOnesEnter()
    {
        var seed = ScenarioCompiler.Read("002-seed-with-endpointslice").Resources.ToList();
        var other = new Service(new ObjectMeta("shared", "other"), [new ServicePort(null, 9000, "TCP")]);
        var otherSlice = new EndpointSlice(new ObjectMeta("shared", "other-1"), "other", "IPv4", [new EndpointPort(null, 9000, "TCP")], [new Endpoint(["10.0.0.9"], true)]);
        var grant = new ReferenceGrant(new ObjectMeta("shared", "from-httpbin"), [new ReferenceGrantFrom(GatewayApi.Group, "TCPRoute", "default")], [new ReferenceGrantTo(string.Empty, "Service", null)]);
        var before = ConfigSnapshot.From([.. seed, other, otherSlice, grant]);
        var gateway = before.OfType<Gateway>().Single().Key;
        var route = before.OfType<TcpRoute>().First();
        var moved = route with { Rules = [new TcpRouteRule([new BackendReference(null, null, "shared", "other", 9000, null)])] };
        var after = before.Apply(new ConfigEvent.Upserted("default", moved));

        var was = GatewayClosure.Of(before, gateway, "fsm", GatewayApi.DefaultControllerName);
        var now = GatewayClosure.Of(after, gateway, "fsm", GatewayApi.DefaultControllerName);

        Assert.DoesNotContain(other.Key, was.Keys);
        Assert.DoesNotContain(grant.Key, was.Keys);
        Assert.Contains(other.Key, now.Keys);
        Assert.Contains(otherSlice.Key, now.Keys);
        Assert.Contains(grant.Key, now.Keys);
        var httpbin = new ResourceKey(ResourceKind.Service, "default", "httpbin");
        Assert.Contains(httpbin, was.Keys);
        Assert.Contains(was.Values, r => r is EndpointSlice { ServiceName: "httpbin" });
        Assert.DoesNotContain(httpbin, now.Keys);
        Assert.DoesNotContain(now.Values, r => r is EndpointSlice { ServiceName: "httpbin" });
    }

    [Fact]
    public void Of_MissingGateway_IsEmpty()
    {
        var snapshot = ConfigSnapshot.From(ScenarioCompiler.Read("001-seed-verbatim").Resources);

        Assert.Empty(GatewayClosure.Of(snapshot, new ResourceKey(ResourceKind.Gateway, "httpbin", "nope"), "fsm", GatewayApi.DefaultControllerName));
    }
}
