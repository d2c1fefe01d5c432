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
/// ReferenceGrants changed; data planes reporting other bind outcomes and provisioning finding other replicas and
/// addresses for some Gateways; now and then a GatewayClass or Namespace change, which compiles in full.
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
        var snapshot = ConfigSnapshot.From(Cluster());
        var bindings = ListenerBindings.Reported(ImmutableSortedDictionary<ResourceKey, ImmutableSortedDictionary<int, BindOutcome>>.Empty, BindOutcome.NotYetBound);
        var dataPlanes = ProvisionedDataPlanes.None;
        var compiler = new IncrementalRouteCompiler();
        compiler.Compile(snapshot, Options, bindings, dataPlanes);
        var perGateway = 0;
        var perGatewayByKind = new Dictionary<string, int>();
        for (var step = 0; step < 150; step++)
        {
            var what = "report";
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
                    var change = RandomEvent(random);
                    what = change is ConfigEvent.Upserted u ? u.Resource.Kind.ToString() : ((ConfigEvent.Deleted)change).Key.Kind.ToString();
                    snapshot = snapshot.Apply(change);
                }
            }

            var compiled = compiler.Compile(snapshot, Options, bindings, dataPlanes);
            if (compiler.LastWasPerGateway)
            {
                perGateway++;
                perGatewayByKind[what] = perGatewayByKind.GetValueOrDefault(what) + 1;
            }

            var full = RouteCompiler.Compile(snapshot, Options, bindings, dataPlanes);
            Assert.Equal(full.Revision, compiled.Revision);
            Assert.Equal(full.Table, compiled.Table);
            Assert.Equal(full.Diagnostics.ToList(), compiled.Diagnostics.ToList());
            Assert.Equal(full.RouteApiVersions.OrderBy(static p => p.Key).ToList(), compiled.RouteApiVersions.OrderBy(static p => p.Key).ToList());
            Assert.Equal(CompilationResultJson.ToJson(full), CompilationResultJson.ToJson(compiled));
        }

        // The per-Gateway path really ran, for routes, Gateways and data-plane reports alike.
        Assert.InRange(perGateway, 40, 150);
        Assert.True(perGatewayByKind.GetValueOrDefault("TcpRoute") > 0, string.Join(", ", perGatewayByKind));
        Assert.True(perGatewayByKind.GetValueOrDefault("Gateway") > 0, string.Join(", ", perGatewayByKind));
        Assert.True(perGatewayByKind.GetValueOrDefault("report") > 0, string.Join(", ", perGatewayByKind));
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
    public void ClosureTryUpdate_ARouteOrGatewayOfAnotherGateway_LeavesTheClosureAsItIs()
    {
        var snapshot = ConfigSnapshot.From(Cluster());
        var gateway = new ResourceKey(ResourceKind.Gateway, "a", "gw-0");
        var closure = GatewayClosure.Of(snapshot, gateway, null, GatewayApi.DefaultControllerName);

        var changed = snapshot
            .Apply(new ConfigEvent.Upserted("default", Route("b", "r0", [("b", "gw-1", null)], "s2", null, 3)))
            .Apply(new ConfigEvent.Upserted("default", Gateway("c", "gw-2", "fsm", 9005, fromAll: false, conflict: false)));
        Assert.True(changed.TryGetChangedKeys(snapshot, out var keys));

        Assert.True(GatewayClosure.TryUpdate(closure, changed, keys, out var updated));
        Assert.Same(closure, updated);
        Assert.Equal(GatewayClosure.Of(changed, gateway, null, GatewayApi.DefaultControllerName).ToList(), updated.ToList());
    }

    [Fact]
    public void ClosureTryUpdate_ARouteThatNamesTheGateway_AsksForARecompute()
    {
        var snapshot = ConfigSnapshot.From(Cluster());
        var gateway = new ResourceKey(ResourceKind.Gateway, "a", "gw-0");
        var closure = GatewayClosure.Of(snapshot, gateway, null, GatewayApi.DefaultControllerName);

        // A route of b's that now names a's Gateway as well.
        var changed = snapshot.Apply(new ConfigEvent.Upserted("default", Route("b", "r0", [("b", "gw-1", null), ("a", "gw-0", null)], "s2", null, 3)));
        Assert.True(changed.TryGetChangedKeys(snapshot, out var keys));

        Assert.False(GatewayClosure.TryUpdate(closure, changed, keys, out _));
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
            return new ConfigEvent.Upserted("default", Route(ns, name, parents, service, random.Next(4) == 0 ? Namespaces[random.Next(Namespaces.Length)] : null, random.Next(3)));
        }

        if (roll < 72)
        {
            return random.Next(2) == 0
                ? new ConfigEvent.Deleted("default", new ResourceKey(ResourceKind.ReferenceGrant, ns, "grant"))
                : new ConfigEvent.Upserted("default", Grant(ns, Namespaces[random.Next(Namespaces.Length)]));
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

    private static TcpRoute Route(string ns, string name, List<(string Namespace, string Gateway, string? Section)> parents, string service, string? serviceNamespace, int weight) =>
        new(
            new ObjectMeta(ns, name) { CreationTimestamp = new DateTimeOffset(2024, 1, 1, 0, 1, name[1] - '0', TimeSpan.Zero) },
            [.. parents.Select(static p => new ParentReference(null, null, p.Namespace, p.Gateway, p.Section, null))],
            [new TcpRouteRule([new BackendReference(null, null, serviceNamespace, service, 80, weight)])]);

    private static ReferenceGrant Grant(string ns, string from) =>
        new(new ObjectMeta(ns, "grant"), [new ReferenceGrantFrom(GatewayApi.Group, "TCPRoute", from)], [new ReferenceGrantTo(string.Empty, "Service", null)]);

    private static EndpointSlice Slice(string ns, string service, string name, string address, bool ready) =>
        new(new ObjectMeta(ns, name), service, "IPv4", [new EndpointPort("tcp", 8080, "TCP")], [new Endpoint([address], ready)]);
}
