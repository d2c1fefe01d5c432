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
            TrackedClosures.AssertCompilesAlike(whole, gateway.Key, GatewayClosure.Of(snapshot, gateway.Key, Controller.ImplicitGatewayClassName, Controller.ControllerName), DataPlane);
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
    public void Of_ServiceInAnotherNamespaceWithoutAGrant_IsNotInTheClosureNorAreItsSlices()
    {
        // The audit's probe: a route author names another namespace's Service that no grant there lets them use. The
        // compiler refuses the backendRef, and the data plane (whose pod can read all it is sent) gets neither the
        // Service nor its endpoints, nor the grants of that namespace that permit others; it still decides alike.
        var seed = ScenarioCompiler.Read("002-seed-with-endpointslice").Resources.ToList();
        var victim = new Service(new ObjectMeta("victim", "db"), [new ServicePort(null, 5432, "TCP")]);
        var victimSlice = new EndpointSlice(new ObjectMeta("victim", "db-1"), "db", "IPv4", [new EndpointPort(null, 5432, "TCP")], [new Endpoint(["10.9.9.9"], true)]);
        var forOthers = Grant("victim", "for-others", GatewayApi.Group, "TCPRoute", "trusted", null);
        var victimPolicy = new BackendLbPolicy(new ObjectMeta("victim", "lb"), [new PolicyTargetReference(GatewayApi.CoreGroup, "Service", "db")], "LeastLoad");
        var before = ConfigSnapshot.From([.. seed, victim, victimSlice, forOthers, victimPolicy]);
        var gateway = before.OfType<Gateway>().Single().Key;
        var route = before.OfType<TcpRoute>().First();
        var snooping = route with { Rules = [new TcpRouteRule([new BackendReference(null, null, "victim", "db", 5432, null)])] };
        var after = before.Apply(new ConfigEvent.Upserted("default", snooping));

        var closure = GatewayClosure.Of(after, gateway, "fsm", GatewayApi.DefaultControllerName);

        Assert.DoesNotContain(victim.Key, closure.Keys);
        Assert.DoesNotContain(victimSlice.Key, closure.Keys);
        Assert.DoesNotContain(forOthers.Key, closure.Keys);
        Assert.DoesNotContain(victimPolicy.Key, closure.Keys);
        Assert.Contains(snooping.Key, closure.Keys);

        // Alike: the refused backend gets no endpoints, and no policy of a Service it does not reach, either way.
        TrackedClosures.AssertCompilesAlike(RouteCompiler.Compile(after, Controller, ListenerBindings.AssumeAllBound), gateway, closure, DataPlane);
    }

    [Fact]
    public void Of_GrantsOfAServicesNamespace_OnlyThosePermittingAHeldReferenceAreIn_AndItCompilesAlike()
    {
        // A route in default uses shared/other; a HealthCheckPolicy in ops targets shared/other. Of shared's grants only
        // those permitting one of these two references are sent: not one for another namespace, kind, Service or policy
        // kind. Without the policy's grant the policy is still sent (its namespace named the Service) but refused alike.
        var seed = ScenarioCompiler.Read("002-seed-with-endpointslice").Resources.ToList();
        var other = new Service(new ObjectMeta("shared", "other"), [new ServicePort(null, 9000, "TCP")]);
        var otherSlice = new EndpointSlice(new ObjectMeta("shared", "other-1"), "other", "IPv4", [new EndpointPort(null, 9000, "TCP")], [new Endpoint(["10.0.0.9"], true)]);
        var health = new HealthCheckPolicy(
            new ObjectMeta("ops", "probe"),
            [new PolicyTargetReference(GatewayApi.CoreGroup, "Service", "other") { Namespace = "shared" }],
            [],
            new FsmHealthCheck(TimeSpan.FromSeconds(5), 3, null, null, []));
        var routes = Grant("shared", "routes", GatewayApi.Group, "TCPRoute", "default", null);
        var byName = Grant("shared", "by-name", GatewayApi.Group, "TCPRoute", "default", "other");
        var policies = Grant("shared", "policies", PolicyApi.FsmGroup, "HealthCheckPolicy", "ops", "other");
        ReferenceGrant[] unneeded =
        [
            Grant("shared", "another-namespace", GatewayApi.Group, "TCPRoute", "elsewhere", null),
            Grant("shared", "another-kind", GatewayApi.Group, "HTTPRoute", "default", null),
            Grant("shared", "another-service", GatewayApi.Group, "TCPRoute", "default", "else"),
            Grant("shared", "another-policy-kind", PolicyApi.FsmGroup, "BackendLBPolicy", "ops", null),
        ];
        var snapshot = ConfigSnapshot.From([.. seed, other, otherSlice, health, routes, byName, policies, .. unneeded]);
        var gateway = snapshot.OfType<Gateway>().Single().Key;
        var route = snapshot.OfType<TcpRoute>().First();
        snapshot = snapshot.Apply(new ConfigEvent.Upserted("default", route with { Rules = [new TcpRouteRule([new BackendReference(null, null, "shared", "other", 9000, null)])] }));

        var closure = GatewayClosure.Of(snapshot, gateway, "fsm", GatewayApi.DefaultControllerName);

        Assert.Equal([byName.Key, policies.Key, routes.Key], closure.Keys.Where(static k => k.Kind == ResourceKind.ReferenceGrant));
        Assert.Contains(other.Key, closure.Keys);
        Assert.Contains(otherSlice.Key, closure.Keys);
        Assert.Contains(health.Key, closure.Keys);
        var whole = RouteCompiler.Compile(snapshot, Controller, ListenerBindings.AssumeAllBound);
        Assert.Contains(whole.Table.Listeners, static l => l.Backends.Any(static b => b.Policy.ActiveHealthCheck is not null));
        TrackedClosures.AssertCompilesAlike(whole, gateway, closure, DataPlane);

        var refused = snapshot.Apply(new ConfigEvent.Deleted("default", policies.Key));
        var withoutPolicyGrant = GatewayClosure.Of(refused, gateway, "fsm", GatewayApi.DefaultControllerName);
        Assert.Equal([byName.Key, routes.Key], withoutPolicyGrant.Keys.Where(static k => k.Kind == ResourceKind.ReferenceGrant));
        Assert.Contains(health.Key, withoutPolicyGrant.Keys);
        var wholeRefused = RouteCompiler.Compile(refused, Controller, ListenerBindings.AssumeAllBound);
        Assert.DoesNotContain(wholeRefused.Table.Listeners, static l => l.Backends.Any(static b => b.Policy.ActiveHealthCheck is not null));
        TrackedClosures.AssertCompilesAlike(wholeRefused, gateway, withoutPolicyGrant, DataPlane);
    }

    [Fact]
    public void Tracker_AGrantDeletedOrAdded_ReachesItsGatewaysOnly_AndTakesTheServiceAndSlicesOutAndBackIn()
    {
        // a/gw's route uses shared/s through shared/grant; b/gw's route uses b/s.
        var shared = new Service(new ObjectMeta("shared", "s"), [new ServicePort(null, 80, "TCP")]);
        var sharedSlice = new EndpointSlice(new ObjectMeta("shared", "s-0"), "s", "IPv4", [new EndpointPort(null, 80, "TCP")], [new Endpoint(["10.0.0.7"], true)]);
        var grant = Grant("shared", "grant", GatewayApi.Group, "TCPRoute", "a", null);
        var snapshot = ConfigSnapshot.From([
            new GatewayClass(new ObjectMeta(string.Empty, "fsm"), GatewayApi.DefaultControllerName),
            new Gateway(new ObjectMeta("a", "gw"), "fsm", [new Listener("l0", 9000, "TCP")]),
            new Gateway(new ObjectMeta("b", "gw"), "fsm", [new Listener("l0", 9000, "TCP")]),
            new TcpRoute(new ObjectMeta("a", "r"), [new ParentReference(null, null, null, "gw", null, null)], [new TcpRouteRule([new BackendReference(null, null, "shared", "s", 80, 1)])]),
            new TcpRoute(new ObjectMeta("b", "r"), [new ParentReference(null, null, null, "gw", null, null)], [new TcpRouteRule([new BackendReference(null, null, null, "s", 80, 1)])]),
            new Service(new ObjectMeta("b", "s"), [new ServicePort(null, 80, "TCP")]),
            shared,
            sharedSlice,
            grant,
        ]);
        var gatewayA = new ResourceKey(ResourceKind.Gateway, "a", "gw");
        var gatewayB = new ResourceKey(ResourceKind.Gateway, "b", "gw");
        var tracker = new GatewayClosureTracker("fsm", GatewayApi.DefaultControllerName);
        Assert.Null(tracker.Advance(snapshot));
        Assert.Contains(shared.Key, tracker.Of(gatewayA).Keys);

        var revoked = snapshot.Apply(new ConfigEvent.Deleted("default", grant.Key));
        Assert.Equal([gatewayA], tracker.Advance(revoked));
        var without = tracker.Of(gatewayA);
        Assert.Equal(GatewayClosure.Of(revoked, gatewayA, "fsm", GatewayApi.DefaultControllerName), without);
        Assert.DoesNotContain(shared.Key, without.Keys);
        Assert.DoesNotContain(sharedSlice.Key, without.Keys);
        Assert.DoesNotContain(grant.Key, without.Keys);

        // A grant that permits another namespace only reaches a/gw too, and leaves its closure as it was.
        var unrelated = revoked.Apply(new ConfigEvent.Upserted("default", Grant("shared", "grant", GatewayApi.Group, "TCPRoute", "b", null)));
        Assert.Equal([gatewayA], tracker.Advance(unrelated));
        Assert.Equal(without, tracker.Of(gatewayA));

        var granted = unrelated.Apply(new ConfigEvent.Upserted("default", grant));
        Assert.Equal([gatewayA], tracker.Advance(granted));
        var with = tracker.Of(gatewayA);
        Assert.Equal(GatewayClosure.Of(granted, gatewayA, "fsm", GatewayApi.DefaultControllerName), with);
        Assert.Contains(shared.Key, with.Keys);
        Assert.Contains(sharedSlice.Key, with.Keys);
        Assert.Contains(grant.Key, with.Keys);
        Assert.DoesNotContain(with.Keys, static k => k.Namespace == "b");
        Assert.DoesNotContain(tracker.Of(gatewayB).Keys, static k => k.Namespace == "shared");
    }

    [Fact]
    public void Of_MissingGateway_IsEmpty()
    {
        var snapshot = ConfigSnapshot.From(ScenarioCompiler.Read("001-seed-verbatim").Resources);

        Assert.Empty(GatewayClosure.Of(snapshot, new ResourceKey(ResourceKind.Gateway, "httpbin", "nope"), "fsm", GatewayApi.DefaultControllerName));
    }

    private static ReferenceGrant Grant(string ns, string name, string fromGroup, string fromKind, string fromNamespace, string? service) =>
        new(new ObjectMeta(ns, name), [new ReferenceGrantFrom(fromGroup, fromKind, fromNamespace)], [new ReferenceGrantTo(string.Empty, "Service", service)]);
}
