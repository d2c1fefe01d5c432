using System.Collections.Immutable;
using FsmGateway.Configuration;
using FsmGateway.Resources;

namespace FsmGateway.Routing.Tests;

/// <summary>
/// Incremental work equals a full recomputation, over random event sequences on a small cluster built to cover what an
/// endpoint change can touch (routes attached to two Gateways, so route status spans Gateways; several slices per
/// Service, unready endpoints, named ports, cross-namespace references with and without a grant, missing Services,
/// ExternalName, weight 0, a second source overriding the first): the reducer's merged view derived from its change log,
/// the changed keys it reports, the incremental compiler's result, and each Gateway's closure as the tracker keeps it.
/// </summary>
public sealed class IncrementalCompileTests
{
    private static readonly CompilerOptions Options = CompilerOptions.Default with { ImplicitGatewayClassName = "fsm" };
    private static readonly string[] Namespaces = ["a", "b"];
    private static readonly string[] ServiceNames = ["s0", "s1", "s2", "s3"];
    private static readonly string[] Sources = ["k8s", "files"];

    public static TheoryData<int> Seeds => [.. Enumerable.Range(1, 40)];

    [Theory]
    [MemberData(nameof(Seeds))]
    public void RandomEvents_IncrementalCompileAndClosures_EqualAFullRecomputation(int seed) => RandomEvents(seed, Options);

    /// <summary>The same with the controller's choice not to list endpoints: an endpoint change then says anew whether a backend has a ready one.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void RandomEvents_WithoutEndpointsListed_EqualAFullRecomputation(int seed) => RandomEvents(seed, Options with { ListEndpoints = false });

    private static void RandomEvents(int seed, CompilerOptions options)
    {
        var random = new Random(seed);
        var held = Sources.ToDictionary(static s => s, static _ => new Dictionary<ResourceKey, Resource>());
        var snapshot = ConfigSnapshot.Empty;
        foreach (var resource in Cluster())
        {
            snapshot = Apply(snapshot, held, new ConfigEvent.Upserted("k8s", resource));
        }

        snapshot = snapshot.Apply(new ConfigEvent.SourceSynced("k8s")).Apply(new ConfigEvent.SourceSynced("files"));
        var compiler = new IncrementalRouteCompiler();
        var bindings = ListenerBindings.AssumeAllBound;
        var compiled = compiler.Compile(snapshot, options, bindings);
        var gateways = snapshot.OfType<Gateway>().Select(static g => g.Key).ToList();
        var closures = new TrackedClosures(snapshot, gateways, options);
        var incremental = 0;
        for (var step = 0; step < 150; step++)
        {
            var before = snapshot;
            // Several events per compile now and then, as the debounce gathers them.
            for (var events = random.Next(10) == 0 ? random.Next(2, 6) : 1; events > 0; events--)
            {
                snapshot = Apply(snapshot, held, RandomEvent(random));
            }

            // The merged view derived from the change log is the merge of what each source holds.
            var expected = new Dictionary<ResourceKey, Resource>();
            foreach (var source in Sources.Order(StringComparer.Ordinal))
            {
                foreach (var (key, resource) in held[source])
                {
                    expected.TryAdd(key, resource);
                }
            }

            Assert.Equal(expected.OrderBy(static p => p.Key).ToList(), snapshot.Resources.ToList());

            // Every key whose object differs is among the changed keys.
            Assert.True(snapshot.TryGetChangedKeys(before, out var changed));
            foreach (var key in before.Resources.Keys.Union(snapshot.Resources.Keys))
            {
                if (!Equals(before.Resources.GetValueOrDefault(key), snapshot.Resources.GetValueOrDefault(key)))
                {
                    Assert.Contains(key, changed);
                }
            }

            if (random.Next(20) == 0)
            {
                // A data plane's report: new bindings compile in full.
                bindings = bindings == ListenerBindings.AssumeAllBound ? ListenerBindings.Pending : ListenerBindings.AssumeAllBound;
            }

            compiled = compiler.Compile(snapshot, options, bindings);
            incremental += compiler.LastWasIncremental ? 1 : 0;
            var full = RouteCompiler.Compile(snapshot, options, bindings);
            Assert.Equal(full.Revision, compiled.Revision);
            Assert.Equal(full.Table, compiled.Table);
            Assert.Equal(full.Diagnostics.ToList(), compiled.Diagnostics.ToList());
            Assert.Equal(CompilationResultJson.ToJson(full), CompilationResultJson.ToJson(compiled));

            // The tracker's closures, from its index, are the closures of a pass over the snapshot; and a Gateway it
            // says the change does not reach has the closure it had.
            closures.Check(snapshot, $"step {step}");
        }

        // The incremental paths were really taken (most events are endpoint changes).
        Assert.InRange(incremental, 30, 150);
        Assert.InRange(closures.LeftAlone, 60, 450);
    }

    [Fact]
    public void TryGetChangedKeys_OfAnotherLineage_IsUnknown()
    {
        var one = ConfigSnapshot.From(Cluster());
        var other = ConfigSnapshot.From(Cluster());

        Assert.False(other.Apply(new ConfigEvent.Deleted("default", Cluster().First().Key)).TryGetChangedKeys(one, out _));
        Assert.True(one.TryGetChangedKeys(one, out var none));
        Assert.Empty(none);
    }

    [Fact]
    public void Compile_OneEndpointSliceChanged_RecomputesOnlyThatAndEqualsAFullCompile()
    {
        var snapshot = ConfigSnapshot.From(Cluster());
        var compiler = new IncrementalRouteCompiler();
        var first = compiler.Compile(snapshot, Options, ListenerBindings.AssumeAllBound);

        var changed = snapshot.Apply(new ConfigEvent.Upserted("default", Slice("a", "s0", "s0-x", ready: false, address: "10.0.0.99")));
        var next = compiler.Compile(changed, Options, ListenerBindings.AssumeAllBound);

        Assert.True(compiler.LastWasIncremental);
        Assert.Same(first.Statuses, next.Statuses);
        Assert.Equal(RouteCompiler.Compile(changed, Options, ListenerBindings.AssumeAllBound).Table, next.Table);
    }

    private static ConfigSnapshot Apply(ConfigSnapshot snapshot, Dictionary<string, Dictionary<ResourceKey, Resource>> held, ConfigEvent change)
    {
        switch (change)
        {
            case ConfigEvent.Upserted upserted:
                held[change.Source][upserted.Resource.Key] = upserted.Resource;
                break;
            case ConfigEvent.Deleted deleted:
                held[change.Source].Remove(deleted.Key);
                break;
        }

        return snapshot.Apply(change);
    }

    private static ConfigEvent RandomEvent(Random random)
    {
        var source = random.Next(8) == 0 ? "files" : "k8s";
        var ns = Namespaces[random.Next(Namespaces.Length)];
        var service = ServiceNames[random.Next(ServiceNames.Length)];
        var roll = random.Next(100);
        if (roll < 70)
        {
            var name = $"{service}-{random.Next(3)}";
            if (random.Next(5) == 0)
            {
                return new ConfigEvent.Deleted(source, new ResourceKey(ResourceKind.EndpointSlice, ns, name));
            }

            // Now and then a slice moves to another Service, or names none.
            var owner = random.Next(15) == 0 ? ServiceNames[random.Next(ServiceNames.Length)] : random.Next(30) == 0 ? null : service;
            return new ConfigEvent.Upserted(source, Slice(ns, owner, name, ready: random.Next(4) != 0, address: $"10.{ns.Length}.{random.Next(3)}.{random.Next(1, 4)}", named: random.Next(6) != 0));
        }

        if (roll < 82)
        {
            return random.Next(4) == 0
                ? new ConfigEvent.Deleted(source, new ResourceKey(ResourceKind.Service, ns, service))
                : new ConfigEvent.Upserted(source, new Service(new ObjectMeta(ns, service), [new ServicePort("tcp", random.Next(3) == 0 ? 81 : 80, "TCP")]));
        }

        if (roll < 92)
        {
            return new ConfigEvent.Upserted(source, Route(ns, $"r{random.Next(3)}", ServiceNames[random.Next(ServiceNames.Length)], random.Next(3) == 0 ? Namespaces[random.Next(2)] : null, random.Next(4), random.Next(2) == 0));
        }

        if (roll < 96)
        {
            return random.Next(2) == 0
                ? new ConfigEvent.Deleted(source, new ResourceKey(ResourceKind.ReferenceGrant, "b", "grant"))
                : new ConfigEvent.Upserted(source, Grant());
        }

        return new ConfigEvent.Upserted(source, new Gateway(new ObjectMeta(ns, $"gw-{ns}"), "fsm", [new Listener("l0", random.Next(2) == 0 ? 9000 : 9001, "TCP"), new Listener("l1", 9100, "TCP")]));
    }

    private static IEnumerable<Resource> Cluster()
    {
        yield return new GatewayClass(new ObjectMeta(string.Empty, "fsm"), GatewayApi.DefaultControllerName);
        foreach (var ns in Namespaces)
        {
            yield return new Gateway(new ObjectMeta(ns, $"gw-{ns}"), "fsm", [new Listener("l0", ns == "a" ? 9000 : 9001, "TCP"), new Listener("l1", ns == "a" ? 9100 : 9101, "TCP")]);
            foreach (var service in ServiceNames)
            {
                yield return service == "s3"
                    ? new Service(new ObjectMeta(ns, service), [new ServicePort("tcp", 80, "TCP")]) { Type = Service.ExternalNameType }
                    : new Service(new ObjectMeta(ns, service), [new ServicePort("tcp", 80, "TCP")]);
                yield return Slice(ns, service, $"{service}-0", ready: true, address: $"10.{ns.Length}.0.1");
                yield return Slice(ns, service, $"{service}-1", ready: true, address: $"10.{ns.Length}.0.2");
            }

            yield return Route(ns, "r0", "s0", null, 1, bothGateways: true);
            yield return Route(ns, "r1", "s1", ns == "a" ? "b" : null, 2, bothGateways: false);
            yield return Route(ns, "r2", "s2", null, 0, bothGateways: false);
        }

        yield return Grant();
    }

    private static TcpRoute Route(string ns, string name, string service, string? serviceNamespace, int weight, bool bothGateways) =>
        new(
            new ObjectMeta(ns, name) { CreationTimestamp = new DateTimeOffset(2024, 1, 1, 0, 0, name[1] - '0', TimeSpan.Zero) },
            bothGateways
                ? [new ParentReference(null, null, "a", "gw-a", null, null), new ParentReference(null, null, "b", "gw-b", null, null)]
                : [new ParentReference(null, null, ns, $"gw-{ns}", null, null)],
            [new TcpRouteRule([new BackendReference(null, null, serviceNamespace, service, 80, weight), new BackendReference(null, null, null, "s1", 80, 1)])]);

    private static ReferenceGrant Grant() =>
        new(new ObjectMeta("b", "grant"), [new ReferenceGrantFrom(GatewayApi.Group, "TCPRoute", "a")], [new ReferenceGrantTo(string.Empty, "Service", null)]);

    private static EndpointSlice Slice(string ns, string? service, string name, bool ready, string address, bool named = true) =>
        new(
            new ObjectMeta(ns, name),
            service,
            "IPv4",
            [new EndpointPort(named ? "tcp" : null, 8080, "TCP")],
            [new Endpoint([address], ready), new Endpoint([$"{address}0"], true)]);
}
