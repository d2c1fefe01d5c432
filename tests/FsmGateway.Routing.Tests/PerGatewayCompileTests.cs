using System.Collections.Immutable;
using FsmGateway.Configuration;
using FsmGateway.Resources;
using FsmGateway.Status;

namespace FsmGateway.Routing.Tests;

/// <summary>
/// The incremental compiler's per-Gateway path (a controller's options: each Gateway has addresses of its own) equals a
/// full compile over random steps on a cluster of several Gateways: routes attached to one Gateway or to several (so
/// route status spans the Gateways recompiled together), to a listener by name or to a Gateway that does not exist or
/// is not ours; Gateways created, deleted, given conflicting listeners or another class; Services, EndpointSlices and
/// ReferenceGrants changed (grants for TCPRoutes, HealthCheckPolicies or BackendLBPolicies from some namespace, to every
/// Service or one, created and deleted under routes and policies that refer across namespaces); data planes reporting
/// other bind outcomes and provisioning finding other replicas and addresses for some Gateways; policies and filters of every kind (HealthCheckPolicy, BackendLBPolicy,
/// BackendTrafficPolicy, ClientTrafficPolicy, RouteRuleFilterPolicy, RateLimitPolicy, ListenerFilter, Filter,
/// ConcurrencyLimit, IPRestriction) created, changed and deleted with random targets: Gateways, listeners, routes, rules
/// and Services that exist or not, in their own namespace or another, of kinds the compiler refuses, invalid fields, and
/// several on one target (the older wins); now and then a GatewayClass or Namespace change, which compiles in full.
/// </summary>
public sealed class PerGatewayCompileTests
{
    private static readonly CompilerOptions Options = CompilerOptions.Default with { GatewaysHaveOwnAddresses = true };
    private static readonly string[] Namespaces = ["a", "b", "c"];
    private static readonly string[] GatewayNames = ["gw-0", "gw-1", "gw-2"];
    private static readonly string[] ServiceNames = ["s0", "s1", "s2"];

    public static TheoryData<int> Seeds => [.. Enumerable.Range(1, 40)];

    [Theory]
    [MemberData(nameof(Seeds))]
    public void RandomSteps_PerGatewayCompile_EqualsAFullCompile(int seed)
    {
        var random = new Random(seed);
        var snapshot = ConfigSnapshot.From(Cluster().Concat(InitialPolicies()));
        var bindings = ListenerBindings.Reported(ImmutableSortedDictionary<ResourceKey, ImmutableSortedDictionary<int, BindOutcome>>.Empty, BindOutcome.NotYetBound);
        var dataPlanes = ProvisionedDataPlanes.None;
        var compiler = new IncrementalRouteCompiler();
        compiler.Compile(snapshot, Options, bindings, dataPlanes);
        var closures = new TrackedClosures(snapshot, Namespaces.SelectMany(static ns => GatewayNames.Select(name => new ResourceKey(ResourceKind.Gateway, ns, name))), Options);
        var perGateway = 0;
        var perGatewayByKind = new Dictionary<string, int>();
        var endpointsOnly = 0;
        for (var step = 0; step < 150; step++)
        {
            var what = "report";
            var kinds = new HashSet<ResourceKind>();
            var roll = random.Next(100);
            if (roll < 12)
            {
                bindings = Report(random, bindings);
            }
            else if (roll < 18)
            {
                dataPlanes = Provision(random, dataPlanes);
                what = "provisioning";
            }
            else
            {
                for (var events = random.Next(8) == 0 ? random.Next(2, 5) : 1; events > 0; events--)
                {
                    var change = random.Next(3) == 0 ? PolicyEvent(random) : RandomEvent(random);
                    var kind = change is ConfigEvent.Upserted u ? u.Resource.Kind : ((ConfigEvent.Deleted)change).Key.Kind;
                    what = kind.ToString();
                    kinds.Add(kind);
                    snapshot = snapshot.Apply(change);
                }
            }

            var compiled = compiler.Compile(snapshot, Options, bindings, dataPlanes);
            if (compiler.LastWasPerGateway)
            {
                perGateway++;
                perGatewayByKind[what] = perGatewayByKind.GetValueOrDefault(what) + 1;
            }

            // Only a GatewayClass or Namespace change compiles in full here (this cluster is far below the size limit):
            // policies and filters, wherever they point, keep every other change per Gateway (or endpoints only).
            Assert.True(
                compiler.LastWasIncremental || kinds.Contains(ResourceKind.GatewayClass) || kinds.Contains(ResourceKind.Namespace),
                $"step {step}: {string.Join(", ", kinds)} compiled in full");
            if (kinds.Count > 0 && kinds.All(static k => k == ResourceKind.EndpointSlice))
            {
                Assert.True(compiler.LastWasIncremental);
                endpointsOnly++;
            }

            var full = RouteCompiler.Compile(snapshot, Options, bindings, dataPlanes);
            Assert.Equal(full.Revision, compiled.Revision);
            Assert.Equal(full.Table, compiled.Table);
            Assert.Equal(full.Diagnostics.ToList(), compiled.Diagnostics.ToList());
            Assert.Equal(full.RouteApiVersions.OrderBy(static p => p.Key).ToList(), compiled.RouteApiVersions.OrderBy(static p => p.Key).ToList());
            Assert.Equal(CompilationResultJson.ToJson(full), CompilationResultJson.ToJson(compiled));

            // The closures a controller streams, from the tracker's index, with policies and filters of every kind:
            // each equals a pass over the snapshot, and one the change does not reach is as it was.
            var reached = closures.Check(snapshot, $"step {step} ({what})");
            if (kinds.Count > 0 && kinds.All(static k => k == ResourceKind.ReferenceGrant))
            {
                // A grant reaches the Gateways whose routes refer into its namespace or use a Service a policy names there.
                Assert.NotNull(reached);
            }
        }

        // The per-Gateway path really ran, for routes, Gateways, data-plane reports and policies alike, with policies
        // and filters in the cluster throughout; and endpoint changes stayed incremental among them.
        Assert.InRange(perGateway, 40, 150);
        Assert.True(perGatewayByKind.GetValueOrDefault("TcpRoute") > 0, string.Join(", ", perGatewayByKind));
        Assert.True(perGatewayByKind.GetValueOrDefault("Gateway") > 0, string.Join(", ", perGatewayByKind));
        Assert.True(perGatewayByKind.GetValueOrDefault("report") > 0, string.Join(", ", perGatewayByKind));
        var policySteps = perGatewayByKind.Where(static p => Enum.TryParse<ResourceKind>(p.Key, out var k) && IsPolicyOrFilter(k)).Sum(static p => p.Value);
        Assert.True(policySteps > 5, string.Join(", ", perGatewayByKind));
        Assert.True(endpointsOnly > 0);
        Assert.True(closures.LeftAlone > 150 * 3, $"{closures.LeftAlone} closures left alone");
        Assert.Contains(snapshot.Resources.Keys, static k => IsPolicyOrFilter(k.Kind));
    }

    [Fact]
    public void Compile_APolicyOnAServiceChanged_RecompilesOnlyTheGatewaysReachingIt()
    {
        // a/s0 is used by a/r0 alone (on a/gw-0): a BackendLBPolicy on it recompiles that Gateway and nothing else.
        var snapshot = ConfigSnapshot.From(Cluster());
        var compiler = new IncrementalRouteCompiler();
        var first = compiler.Compile(snapshot, Options, ListenerBindings.AssumeAllBound);

        var policy = new BackendLbPolicy(new ObjectMeta("a", "lb"), [new PolicyTargetReference(GatewayApi.CoreGroup, "Service", "s0")], "LeastLoad");
        var changed = snapshot.Apply(new ConfigEvent.Upserted("default", policy));
        var next = compiler.Compile(changed, Options, ListenerBindings.AssumeAllBound);

        Assert.True(compiler.LastWasPerGateway);
        Assert.Equal(1, compiler.LastRecompiledGateways);
        Assert.Equal(CompilationResultJson.ToJson(RouteCompiler.Compile(changed, Options, ListenerBindings.AssumeAllBound)), CompilationResultJson.ToJson(next));
        Assert.Single(next.Statuses.Policies[policy.Key].Ancestors);
        var untouched = new ResourceKey(ResourceKind.Gateway, "b", "gw-1");
        Assert.Same(first.Statuses.Gateways[untouched], next.Statuses.Gateways[untouched]);

        // An endpoint change of that Service with the policy in place stays incremental.
        var moved = changed.Apply(new ConfigEvent.Upserted("default", Slice("a", "s0", "s0-0", "10.0.9.9", ready: true)));
        var afterEndpoints = compiler.Compile(moved, Options, ListenerBindings.AssumeAllBound);
        Assert.True(compiler.LastWasIncremental);
        Assert.Equal(CompilationResultJson.ToJson(RouteCompiler.Compile(moved, Options, ListenerBindings.AssumeAllBound)), CompilationResultJson.ToJson(afterEndpoints));

        // A route change on another Gateway with the policy in place stays per Gateway.
        var routed = moved.Apply(new ConfigEvent.Upserted("default", Route("b", "r0", [("b", "gw-1", null)], "s2", null, 3)));
        var afterRoute = compiler.Compile(routed, Options, ListenerBindings.AssumeAllBound);
        Assert.True(compiler.LastWasPerGateway);
        Assert.Equal(CompilationResultJson.ToJson(RouteCompiler.Compile(routed, Options, ListenerBindings.AssumeAllBound)), CompilationResultJson.ToJson(afterRoute));
    }

    [Fact]
    public void Compile_APolicyOnARouteOfTwoGateways_HasBothAncestorsAndTheOlderWins()
    {
        // b/r3 is attached to b/gw-1 and c/gw-2 (which allows every namespace): two BackendTrafficPolicies on it, the
        // older accepted on both, the newer Conflicted on both; deleting the older makes the newer win, on both Gateways.
        var snapshot = ConfigSnapshot.From(Cluster().Append(Route("b", "r3", [("b", "gw-1", "l1"), ("c", "gw-2", "l0")], "s2", null, 1)));
        var compiler = new IncrementalRouteCompiler();
        compiler.Compile(snapshot, Options, ListenerBindings.AssumeAllBound);
        BackendTrafficPolicy Btp(string name, int second) =>
            new(new ObjectMeta("b", name) { CreationTimestamp = new DateTimeOffset(2024, 2, 1, 0, 0, second, TimeSpan.Zero) }, [new PolicyTargetReference(GatewayApi.Group, "TCPRoute", "r3")])
            {
                ConnectTimeout = TimeSpan.FromSeconds(second),
            };

        var both = snapshot.Apply(new ConfigEvent.Upserted("default", Btp("old", 1))).Apply(new ConfigEvent.Upserted("default", Btp("new", 2)));
        var compiled = compiler.Compile(both, Options, ListenerBindings.AssumeAllBound);
        Assert.True(compiler.LastWasPerGateway);
        Assert.Equal(CompilationResultJson.ToJson(RouteCompiler.Compile(both, Options, ListenerBindings.AssumeAllBound)), CompilationResultJson.ToJson(compiled));
        var newer = compiled.Statuses.Policies[new ResourceKey(ResourceKind.BackendTrafficPolicy, "b", "new")];
        Assert.Equal(2, newer.Ancestors.Length);
        Assert.All(newer.Ancestors, static a => Assert.Equal(ConditionReasons.Conflicted, a.Conditions.Single().Reason));

        var oneLeft = both.Apply(new ConfigEvent.Deleted("default", new ResourceKey(ResourceKind.BackendTrafficPolicy, "b", "old")));
        var after = compiler.Compile(oneLeft, Options, ListenerBindings.AssumeAllBound);
        Assert.True(compiler.LastWasPerGateway);
        Assert.Equal(CompilationResultJson.ToJson(RouteCompiler.Compile(oneLeft, Options, ListenerBindings.AssumeAllBound)), CompilationResultJson.ToJson(after));
        Assert.All(after.Statuses.Policies[new ResourceKey(ResourceKind.BackendTrafficPolicy, "b", "new")].Ancestors, static a => Assert.Equal(ConditionReasons.Accepted, a.Conditions.Single().Reason));
        Assert.Equal(2, after.Statuses.Policies[new ResourceKey(ResourceKind.BackendTrafficPolicy, "b", "new")].Ancestors.Length);
    }

    [Fact]
    public void Compile_APolicyOnAMissingGateway_IsPerGatewayAndItsTargetAppearingAcceptsIt()
    {
        var snapshot = ConfigSnapshot.From(Cluster());
        var compiler = new IncrementalRouteCompiler();
        compiler.Compile(snapshot, Options, ListenerBindings.AssumeAllBound);

        var policy = new ClientTrafficPolicy(new ObjectMeta("a", "ctp"), [new PolicyTargetReference(GatewayApi.Group, "Gateway", "gw-7")]) { IdleTimeout = TimeSpan.FromSeconds(30) };
        var missing = snapshot.Apply(new ConfigEvent.Upserted("default", policy));
        var compiled = compiler.Compile(missing, Options, ListenerBindings.AssumeAllBound);
        Assert.True(compiler.LastWasPerGateway);
        Assert.Equal(CompilationResultJson.ToJson(RouteCompiler.Compile(missing, Options, ListenerBindings.AssumeAllBound)), CompilationResultJson.ToJson(compiled));
        Assert.Equal(ConditionReasons.TargetNotFound, compiled.Statuses.Policies[policy.Key].Ancestors.Single().Conditions.Single().Reason);

        var created = missing.Apply(new ConfigEvent.Upserted("default", Gateway("a", "gw-7", "fsm", 9007, fromAll: false, conflict: false)));
        var after = compiler.Compile(created, Options, ListenerBindings.AssumeAllBound);
        Assert.True(compiler.LastWasPerGateway);
        Assert.Equal(CompilationResultJson.ToJson(RouteCompiler.Compile(created, Options, ListenerBindings.AssumeAllBound)), CompilationResultJson.ToJson(after));
        Assert.Equal(ConditionReasons.Accepted, after.Statuses.Policies[policy.Key].Ancestors.Single().Conditions.Single().Reason);
    }

    [Fact]
    public void Compile_OneRouteChanged_RecompilesOnlyItsGateway()
    {
        var snapshot = ConfigSnapshot.From(Cluster());
        var compiler = new IncrementalRouteCompiler();
        var first = compiler.Compile(snapshot, Options, ListenerBindings.AssumeAllBound);

        var changed = snapshot.Apply(new ConfigEvent.Upserted("default", Route("a", "r1", [("a", "gw-0", null)], "s2", null, 3)));
        var next = compiler.Compile(changed, Options, ListenerBindings.AssumeAllBound);

        Assert.True(compiler.LastWasPerGateway);
        Assert.Equal(1, compiler.LastRecompiledGateways);
        Assert.Equal(CompilationResultJson.ToJson(RouteCompiler.Compile(changed, Options, ListenerBindings.AssumeAllBound)), CompilationResultJson.ToJson(next));
        var untouched = new ResourceKey(ResourceKind.Gateway, "b", "gw-1");
        Assert.Same(first.Statuses.Gateways[untouched], next.Statuses.Gateways[untouched]);
    }

    [Fact]
    public void Compile_OneDataPlaneReport_RecompilesOnlyItsGateway()
    {
        var snapshot = ConfigSnapshot.From(Cluster());
        var compiler = new IncrementalRouteCompiler();
        var none = ImmutableSortedDictionary<ResourceKey, ImmutableSortedDictionary<int, BindOutcome>>.Empty;
        compiler.Compile(snapshot, Options, ListenerBindings.Reported(none, BindOutcome.NotYetBound));

        var gateway = new ResourceKey(ResourceKind.Gateway, "a", "gw-0");
        var reported = ListenerBindings.Reported(none.Add(gateway, ImmutableSortedDictionary<int, BindOutcome>.Empty.Add(9000, BindOutcome.Failed("address already in use"))), BindOutcome.NotYetBound);
        var next = compiler.Compile(snapshot, Options, reported);

        Assert.True(compiler.LastWasPerGateway);
        Assert.Equal(1, compiler.LastRecompiledGateways);
        Assert.Equal(CompilationResultJson.ToJson(RouteCompiler.Compile(snapshot, Options, reported)), CompilationResultJson.ToJson(next));
    }

    [Fact]
    public void Compile_ARouteOnTwoGateways_RecompilesBothAndItsStatusHasBothEntries()
    {
        var snapshot = ConfigSnapshot.From(Cluster());
        var compiler = new IncrementalRouteCompiler();
        compiler.Compile(snapshot, Options, ListenerBindings.AssumeAllBound);

        // c/r2 is attached to b/gw-1 and c/gw-2 (and names c/gw-9, which does not exist): a new weight recompiles both.
        var changed = snapshot.Apply(new ConfigEvent.Upserted("default", Route("c", "r2", [("b", "gw-1", null), ("c", "gw-2", null), ("c", "gw-9", null)], "s2", null, 0)));
        var next = compiler.Compile(changed, Options, ListenerBindings.AssumeAllBound);

        Assert.True(compiler.LastWasPerGateway);
        Assert.Equal(3, compiler.LastRecompiledGateways);
        Assert.Equal(2, next.Statuses.Routes[new ResourceKey(ResourceKind.TcpRoute, "c", "r2")].Parents.Length);
        Assert.Equal(CompilationResultJson.ToJson(RouteCompiler.Compile(changed, Options, ListenerBindings.AssumeAllBound)), CompilationResultJson.ToJson(next));
    }

    [Fact]
    public void ClosureTracker_ARouteOrGatewayOfAnotherGateway_DoesNotReachTheGateway()
    {
        var snapshot = ConfigSnapshot.From(Cluster());
        var gateway = new ResourceKey(ResourceKind.Gateway, "a", "gw-0");
        var tracker = new GatewayClosureTracker(null, GatewayApi.DefaultControllerName);
        tracker.Advance(snapshot);
        var closure = tracker.Of(gateway);

        var changed = snapshot
            .Apply(new ConfigEvent.Upserted("default", Route("b", "r0", [("b", "gw-1", null)], "s2", null, 3)))
            .Apply(new ConfigEvent.Upserted("default", Gateway("c", "gw-2", "fsm", 9005, fromAll: false, conflict: false)));
        var reached = tracker.Advance(changed);

        Assert.NotNull(reached);
        Assert.DoesNotContain(gateway, reached);
        Assert.Contains(new ResourceKey(ResourceKind.Gateway, "c", "gw-2"), reached);
        Assert.Equal(closure.ToList(), tracker.Of(gateway).ToList());
        Assert.Equal(GatewayClosure.Of(changed, gateway, null, GatewayApi.DefaultControllerName).ToList(), tracker.Of(gateway).ToList());
    }

    [Fact]
    public void ClosureTracker_ARouteThatNamesTheGateway_ReachesItAndItsClosureGainsTheRoute()
    {
        var snapshot = ConfigSnapshot.From(Cluster());
        var gateway = new ResourceKey(ResourceKind.Gateway, "a", "gw-0");
        var tracker = new GatewayClosureTracker(null, GatewayApi.DefaultControllerName);
        tracker.Advance(snapshot);

        // A route of b's that now names a's Gateway as well.
        var changed = snapshot.Apply(new ConfigEvent.Upserted("default", Route("b", "r0", [("b", "gw-1", null), ("a", "gw-0", null)], "s2", null, 3)));
        var reached = tracker.Advance(changed);

        Assert.NotNull(reached);
        Assert.Contains(gateway, reached);
        Assert.Contains(new ResourceKey(ResourceKind.TcpRoute, "b", "r0"), tracker.Of(gateway).Keys);
        Assert.Equal(GatewayClosure.Of(changed, gateway, null, GatewayApi.DefaultControllerName).ToList(), tracker.Of(gateway).ToList());
    }

    [Fact]
    public void Compile_WithoutOwnAddresses_ARouteChangeCompilesInFull()
    {
        var snapshot = ConfigSnapshot.From(Cluster());
        var compiler = new IncrementalRouteCompiler();
        compiler.Compile(snapshot, CompilerOptions.Default, ListenerBindings.AssumeAllBound);

        compiler.Compile(snapshot.Apply(new ConfigEvent.Upserted("default", Route("b", "r1", [("b", "gw-1", null)], "s2", null, 3))), CompilerOptions.Default, ListenerBindings.AssumeAllBound);

        Assert.False(compiler.LastWasIncremental);
    }

    private static ListenerBindings Report(Random random, ListenerBindings bindings)
    {
        var gateway = new ResourceKey(ResourceKind.Gateway, Namespaces[random.Next(Namespaces.Length)], GatewayNames[random.Next(GatewayNames.Length)]);
        var byGateway = bindings.ByGateway!;
        if (random.Next(4) == 0)
        {
            return ListenerBindings.Reported(byGateway.Remove(gateway), bindings.Unreported);
        }

        var ports = ImmutableSortedDictionary<int, BindOutcome>.Empty;
        foreach (var port in new[] { 9000, 9001, 9002, 9100 })
        {
            ports = random.Next(3) switch
            {
                0 => ports.Add(port, BindOutcome.Bound),
                1 => ports.Add(port, BindOutcome.Failed("address already in use")),
                _ => ports,
            };
        }

        return ListenerBindings.Reported(byGateway.SetItem(gateway, ports), bindings.Unreported);
    }

    private static ProvisionedDataPlanes Provision(Random random, ProvisionedDataPlanes dataPlanes)
    {
        var gateway = new ResourceKey(ResourceKind.Gateway, Namespaces[random.Next(Namespaces.Length)], GatewayNames[random.Next(GatewayNames.Length)]);
        if (random.Next(4) == 0)
        {
            return new ProvisionedDataPlanes(dataPlanes.ByGateway.Remove(gateway));
        }

        EquatableArray<GatewayAddress> addresses = random.Next(2) == 0 ? [] : [new GatewayAddress(GatewayAddress.IPAddressType, $"192.0.2.{random.Next(1, 5)}")];
        return new ProvisionedDataPlanes(dataPlanes.ByGateway.SetItem(gateway, new ProvisionedDataPlane($"{gateway.Namespace}/{gateway.Name}", random.Next(2), addresses)));
    }

    private static ConfigEvent RandomEvent(Random random)
    {
        var ns = Namespaces[random.Next(Namespaces.Length)];
        var service = ServiceNames[random.Next(ServiceNames.Length)];
        var roll = random.Next(100);
        if (roll < 25)
        {
            return random.Next(6) == 0
                ? new ConfigEvent.Deleted("default", new ResourceKey(ResourceKind.EndpointSlice, ns, $"{service}-0"))
                : new ConfigEvent.Upserted("default", Slice(ns, service, $"{service}-{random.Next(2)}", $"10.{ns[0] - 'a'}.{random.Next(4)}.{random.Next(1, 4)}", random.Next(4) != 0));
        }

        if (roll < 37)
        {
            return random.Next(4) == 0
                ? new ConfigEvent.Deleted("default", new ResourceKey(ResourceKind.Service, ns, service))
                : new ConfigEvent.Upserted("default", new Service(new ObjectMeta(ns, service), [new ServicePort("tcp", random.Next(3) == 0 ? 81 : 80, "TCP")]));
        }

        if (roll < 67)
        {
            var name = $"r{random.Next(4)}";
            if (random.Next(6) == 0)
            {
                return new ConfigEvent.Deleted("default", new ResourceKey(ResourceKind.TcpRoute, ns, name));
            }

            var parents = Enumerable.Range(0, random.Next(1, 3))
                .Select(_ => (random.Next(3) == 0 ? Namespaces[random.Next(Namespaces.Length)] : ns, random.Next(5) == 0 ? "gw-9" : GatewayNames[random.Next(GatewayNames.Length)], random.Next(3) == 0 ? $"l{random.Next(2)}" : null))
                .ToList();
            return new ConfigEvent.Upserted("default", Route(ns, name, parents, service, random.Next(4) == 0 ? Namespaces[random.Next(Namespaces.Length)] : null, random.Next(3), random.Next(3) == 0 ? null : $"rule-{random.Next(2)}"));
        }

        if (roll < 72)
        {
            // Two grants a namespace, each for TCPRoutes or a policy kind from some namespace, to every Service or one.
            var name = random.Next(3) == 0 ? "grant-1" : "grant";
            if (random.Next(2) == 0)
            {
                return new ConfigEvent.Deleted("default", new ResourceKey(ResourceKind.ReferenceGrant, ns, name));
            }

            var (group, kind) = random.Next(4) switch
            {
                0 => (PolicyApi.FsmGroup, "HealthCheckPolicy"),
                1 => (PolicyApi.FsmGroup, "BackendLBPolicy"),
                _ => (GatewayApi.Group, "TCPRoute"),
            };
            return new ConfigEvent.Upserted("default", new ReferenceGrant(
                new ObjectMeta(ns, name),
                [new ReferenceGrantFrom(group, kind, Namespaces[random.Next(Namespaces.Length)])],
                [new ReferenceGrantTo(string.Empty, "Service", random.Next(3) == 0 ? service : null)]));
        }

        if (roll < 94)
        {
            var name = GatewayNames[random.Next(GatewayNames.Length)];
            if (random.Next(8) == 0)
            {
                return new ConfigEvent.Deleted("default", new ResourceKey(ResourceKind.Gateway, ns, name));
            }

            return new ConfigEvent.Upserted("default", Gateway(ns, name, random.Next(8) == 0 ? "other" : "fsm", random.Next(2) == 0 ? 9000 : 9001, random.Next(4) == 0, random.Next(6) == 0));
        }

        if (roll < 97)
        {
            return new ConfigEvent.Upserted("default", new KubernetesNamespace(new ObjectMeta(string.Empty, ns) { Labels = ImmutableSortedDictionary<string, string>.Empty.Add("team", random.Next(2) == 0 ? "x" : "y") }));
        }

        return new ConfigEvent.Upserted("default", new GatewayClass(new ObjectMeta(string.Empty, "other"), random.Next(2) == 0 ? GatewayApi.DefaultControllerName : "example.com/else"));
    }

    private static bool IsPolicyOrFilter(ResourceKind kind) => kind is ResourceKind.HealthCheckPolicy or ResourceKind.BackendLbPolicy
        or ResourceKind.BackendTrafficPolicy or ResourceKind.ClientTrafficPolicy or ResourceKind.RouteRuleFilterPolicy or ResourceKind.RateLimitPolicy
        or ResourceKind.ListenerFilter or ResourceKind.Filter or ResourceKind.ConcurrencyLimit or ResourceKind.IPRestriction;

    /// <summary>A policy on a Service, one on a Gateway, a listener filter and its config: so every step has policies around.</summary>
    private static IEnumerable<Resource> InitialPolicies()
    {
        yield return new BackendLbPolicy(new ObjectMeta("a", "p0"), [new PolicyTargetReference(GatewayApi.CoreGroup, "Service", "s0")], "LeastLoad");
        yield return new HealthCheckPolicy(new ObjectMeta("c", "p0"), [new PolicyTargetReference(GatewayApi.CoreGroup, "Service", "s2")], [], new FsmHealthCheck(TimeSpan.FromSeconds(5), 3, null, null, []));
        yield return new ClientTrafficPolicy(new ObjectMeta("b", "p0"), [new PolicyTargetReference(GatewayApi.Group, "Gateway", "gw-1")]) { IdleTimeout = TimeSpan.FromSeconds(60) };
        yield return new ListenerFilter(new ObjectMeta("c", "p0"), "ConcurrencyLimit", 100, "Listener", [new PortTargetReference(GatewayApi.Group, "Gateway", "gw-2", 9002)])
        {
            ConfigRef = new LocalObjectReference(PolicyApi.FsmExtensionGroup, "ConcurrencyLimit", "c0"),
        };
        yield return new ConcurrencyLimitConfig(new ObjectMeta("c", "c0"), 10);
    }

    /// <summary>A random policy or filter object of any kind, created, changed or deleted, with random targets.</summary>
    private static ConfigEvent PolicyEvent(Random random)
    {
        var ns = Namespaces[random.Next(Namespaces.Length)];
        var kind = (ResourceKind)random.Next((int)ResourceKind.HealthCheckPolicy, (int)ResourceKind.ClientTrafficPolicy + 1);
        var name = kind switch
        {
            ResourceKind.Filter => $"f{random.Next(2)}",
            ResourceKind.ConcurrencyLimit or ResourceKind.IPRestriction => $"c{random.Next(2)}",
            _ => $"p{random.Next(2)}",
        };
        if (random.Next(6) == 0)
        {
            return new ConfigEvent.Deleted("default", new ResourceKey(kind, ns, name));
        }

        // Same-second timestamps too, so conflicts are settled by namespace and name as well as by age.
        var meta = new ObjectMeta(ns, name) { CreationTimestamp = new DateTimeOffset(2024, 1, 1, 0, 2, random.Next(3), TimeSpan.Zero), Generation = random.Next(1, 3) };
        EquatableArray<PolicyTargetReference> Targets(params string[] kinds) =>
            [.. Enumerable.Range(0, random.Next(4) == 0 ? 2 : 1).Select(_ => Target(random, ns, kinds[random.Next(kinds.Length)]))];
        TimeSpan? Seconds(int max) => random.Next(2) == 0 ? null : TimeSpan.FromSeconds(random.Next(max + 1));
        ConfigEvent Upsert(Resource resource) => new ConfigEvent.Upserted("default", resource);
        LocalObjectReference ConfigRef() =>
            new(random.Next(8) == 0 ? "example.com" : PolicyApi.FsmExtensionGroup, random.Next(2) == 0 ? "ConcurrencyLimit" : "IPRestriction", $"c{random.Next(3)}");
        string FilterType() => random.Next(6) switch { 0 => "Script", < 3 => "IPRestriction", _ => "ConcurrencyLimit" };

        return kind switch
        {
            ResourceKind.HealthCheckPolicy => Upsert(new HealthCheckPolicy(
                meta,
                Targets("Service", "Service", "Service", "Gateway"),
                random.Next(3) == 0 ? [new PortHealthCheck(random.Next(2) == 0 ? 80 : 81, null)] : [],
                random.Next(5) == 0 ? null : new FsmHealthCheck(TimeSpan.FromSeconds(random.Next(3)), random.Next(3), Seconds(2), null, []))),
            ResourceKind.BackendLbPolicy => Upsert(new BackendLbPolicy(meta, Targets("Service", "Service", "Service", "TCPRoute"), random.Next(3) switch { 0 => "RoundRobin", 1 => "LeastLoad", _ => null })),
            ResourceKind.BackendTrafficPolicy => Upsert(new BackendTrafficPolicy(meta, Targets("Gateway", "TCPRoute", "Service"))
            {
                LoadBalancer = random.Next(3) == 0 ? new LoadBalancerSpec(random.Next(4) == 0 ? "Maglev" : "LeastRequest", null, null) : null,
                ConnectTimeout = Seconds(3),
                ProxyProtocolVersion = random.Next(3) == 0 ? "V2" : null,
                PassiveHealthCheck = random.Next(3) == 0 ? new PassiveHealthCheckSpec(random.Next(3), null, null, null) : null,
            }),
            ResourceKind.ClientTrafficPolicy => Upsert(new ClientTrafficPolicy(meta, Targets("Gateway", "Gateway", "TCPRoute"))
            {
                ProxyProtocol = random.Next(3) == 0 ? new ProxyProtocolSpec(random.Next(2) == 0) : null,
                ConnectionInspectionTimeout = random.Next(3) == 0 ? TimeSpan.FromSeconds(2) : null,
                IdleTimeout = Seconds(90),
                UploadBandwidth = random.Next(3) == 0 ? new BandwidthLimitSpec(1000 * random.Next(1, 4), null) : null,
                BufferLimit = random.Next(6) == 0 ? 10 : null,
            }),
            ResourceKind.RouteRuleFilterPolicy => Upsert(new RouteRuleFilterPolicy(
                meta,
                Targets("TCPRoute", "TCPRoute", "Gateway"),
                [.. Enumerable.Range(0, random.Next(1, 3)).Select(_ => new FilterReference(PolicyApi.FsmExtensionGroup, "Filter", $"f{random.Next(3)}", random.Next(200)))])),
            ResourceKind.RateLimitPolicy => Upsert(new RateLimitPolicy(
                meta,
                Target(random, ns, random.Next(5) == 0 ? "TCPRoute" : "Gateway"),
                random.Next(2) == 0 ? null : 1000,
                [new PortRateLimit(random.Next(3) switch { 0 => 9000, 1 => 9001, _ => 9100 }, random.Next(2) == 0 ? null : 500)])),
            ResourceKind.ListenerFilter => Upsert(new ListenerFilter(
                meta,
                FilterType(),
                random.Next(3) * 50,
                random.Next(6) switch { 0 => "Elsewhere", < 3 => "Route", _ => "Listener" },
                [.. Enumerable.Range(0, random.Next(1, 3)).Select(_ => new PortTargetReference(
                    GatewayApi.Group,
                    random.Next(8) == 0 ? "HTTPRoute" : "Gateway",
                    random.Next(5) == 0 ? "gw-9" : GatewayNames[random.Next(GatewayNames.Length)],
                    random.Next(3) switch { 0 => 9000, 1 => 9001, _ => 9100 }))])
            {
                ConfigRef = random.Next(8) == 0 ? null : ConfigRef(),
            }),
            ResourceKind.Filter => Upsert(new FsmFilter(meta, FilterType()) { ConfigRef = random.Next(8) == 0 ? null : ConfigRef() }),
            ResourceKind.ConcurrencyLimit => Upsert(new ConcurrencyLimitConfig(meta, random.Next(1, 50))),
            _ => Upsert(new IPRestrictionConfig(meta, random.Next(4) == 0 ? ["not-an-ip"] : ["10.0.0.0/8"], random.Next(2) == 0 ? [] : ["10.1.2.3"])),
        };
    }

    /// <summary>A targetRef of <paramref name="kind"/>: existing or missing objects, now and then in another namespace, of a wrong group, or to a listener or rule by name.</summary>
    private static PolicyTargetReference Target(Random random, string ns, string kind)
    {
        var group = kind == "Service" ? GatewayApi.CoreGroup : GatewayApi.Group;
        if (random.Next(10) == 0)
        {
            group = "example.com";
        }

        var name = kind switch
        {
            "Service" => random.Next(6) == 0 ? "s9" : ServiceNames[random.Next(ServiceNames.Length)],
            "Gateway" => random.Next(6) == 0 ? "gw-9" : GatewayNames[random.Next(GatewayNames.Length)],
            _ => random.Next(6) == 0 ? "r9" : $"r{random.Next(4)}",
        };
        var section = kind switch
        {
            "Gateway" => random.Next(3) switch { 0 => "l0", 1 when random.Next(3) == 0 => "lx", _ => null },
            "TCPRoute" => random.Next(3) switch { 0 => null, 1 => "rule-0", _ => random.Next(3) == 0 ? "rule-x" : "rule-1" },
            _ => null,
        };
        return new PolicyTargetReference(group, kind, name)
        {
            Namespace = random.Next(4) == 0 ? Namespaces[random.Next(Namespaces.Length)] : null,
            SectionName = section,
        };
    }

    private static IEnumerable<Resource> Cluster()
    {
        yield return new GatewayClass(new ObjectMeta(string.Empty, "fsm"), GatewayApi.DefaultControllerName);
        for (var n = 0; n < Namespaces.Length; n++)
        {
            var ns = Namespaces[n];
            yield return Gateway(ns, GatewayNames[n], "fsm", 9000 + n, fromAll: n == 2, conflict: false);
            foreach (var service in ServiceNames)
            {
                yield return new Service(new ObjectMeta(ns, service), [new ServicePort("tcp", 80, "TCP")]);
                yield return Slice(ns, service, $"{service}-0", $"10.{n}.0.1", ready: true);
                yield return Slice(ns, service, $"{service}-1", $"10.{n}.0.2", ready: true);
            }

            yield return Route(ns, "r0", [(ns, GatewayNames[n], null)], "s0", null, 1);
            yield return Route(ns, "r1", [(ns, GatewayNames[n], "l1")], "s1", ns == "a" ? "b" : null, 1);
        }

        // Spanning two Gateways (b's and c's, which allows every namespace), and naming one that does not exist.
        yield return Route("c", "r2", [("b", "gw-1", null), ("c", "gw-2", null), ("c", "gw-9", null)], "s2", null, 2);
        yield return Grant("b", "a");
    }

    private static Gateway Gateway(string ns, string name, string className, int port, bool fromAll, bool conflict) =>
        new(
            new ObjectMeta(ns, name) { CreationTimestamp = new DateTimeOffset(2024, 1, 1, 0, 0, name[^1] - '0', TimeSpan.Zero) },
            className,
            [
                new Listener("l0", port, "TCP") { AllowedRoutes = fromAll ? new AllowedRoutes(FromNamespaces.All, null, null) : AllowedRoutes.Default },
                new Listener("l1", conflict ? port : 9100, "TCP"),
            ]);

    private static TcpRoute Route(string ns, string name, List<(string Namespace, string Gateway, string? Section)> parents, string service, string? serviceNamespace, int weight, string? rule = null) =>
        new(
            new ObjectMeta(ns, name) { CreationTimestamp = new DateTimeOffset(2024, 1, 1, 0, 1, name[1] - '0', TimeSpan.Zero) },
            [.. parents.Select(static p => new ParentReference(null, null, p.Namespace, p.Gateway, p.Section, null))],
            [new TcpRouteRule([new BackendReference(null, null, serviceNamespace, service, 80, weight)]) { Name = rule }]);

    private static ReferenceGrant Grant(string ns, string from) =>
        new(new ObjectMeta(ns, "grant"), [new ReferenceGrantFrom(GatewayApi.Group, "TCPRoute", from)], [new ReferenceGrantTo(string.Empty, "Service", null)]);

    private static EndpointSlice Slice(string ns, string service, string name, string address, bool ready) =>
        new(new ObjectMeta(ns, name), service, "IPv4", [new EndpointPort("tcp", 8080, "TCP")], [new Endpoint([address], ready)]);
}
