using System.Collections.Immutable;
using FsmGateway.Configuration;
using FsmGateway.Resources;
using FsmGateway.Routing.Compilation;
using FsmGateway.Status;

namespace FsmGateway.Routing.Tests;

/// <summary>
/// A compile on several threads equals one on the calling thread alone, byte for byte, over random clusters large
/// enough to take every parallel path (the snapshot indexed on two threads, routes attached in ranges, the table and
/// the statuses written side by side): routes with one to three parentRefs (to Gateways of ours, of another class, that
/// do not exist, of another kind, by listener name or port, the same one twice), listeners that refuse them (by
/// namespace, selector or kind), several routes on one listener (the oldest wins, same-second timestamps settled by
/// name), backendRefs across namespaces with and without grants, to missing Services, other kinds, missing ports and
/// weight 0, slices with unready and duplicate endpoints, statuses other controllers wrote, and policies of several
/// kinds on Services, Gateways and routes. On the same clusters, a compile that lists no endpoints (the controller's)
/// decides every status and diagnostic as one that lists them.
/// </summary>
public sealed class ParallelCompileTests
{
    private static readonly CompilerOptions Options = CompilerOptions.Default with { GatewaysHaveOwnAddresses = true };

    public static TheoryData<int> Seeds => [.. Enumerable.Range(1, 6)];

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Compile_OnSeveralThreads_EqualsOneThread(int seed)
    {
        var snapshot = ConfigSnapshot.From(Cluster(new Random(seed)));
        var routes = snapshot.Resources.Keys.Count(static k => k.Kind == ResourceKind.TcpRoute);
        Assert.True(routes >= 4 * CompilationContext.RangeSize, $"{routes} routes: too few to attach on several threads");
        Assert.True(snapshot.Resources.Count >= 4096, $"{snapshot.Resources.Count} objects: too few to index on two threads");

        var one = RouteCompiler.Compile(snapshot, Options with { MaxDegreeOfParallelism = 1 }, ListenerBindings.AssumeAllBound);
        var expected = CompilationResultJson.ToJson(one);
        foreach (var threads in new[] { -1, 2, 3, -1, -1 })
        {
            var many = RouteCompiler.Compile(snapshot, Options with { MaxDegreeOfParallelism = threads }, ListenerBindings.AssumeAllBound);
            Assert.Equal(one.Table, many.Table);
            Assert.Equal(one.Diagnostics.ToList(), many.Diagnostics.ToList());
            Assert.Equal(one.RouteApiVersions.OrderBy(static p => p.Key).ToList(), many.RouteApiVersions.OrderBy(static p => p.Key).ToList());
            Assert.Equal(expected, CompilationResultJson.ToJson(many));
        }

        // Not a cluster where nothing happens: routes attach, win and lose, and are refused in every way generated.
        Assert.Contains(one.Statuses.Routes.Values, static s => s.Parents.Any(static p => p.Conditions.Any(static c => c is { Type: ConditionTypes.Accepted, Status: ConditionStatus.True })));
        Assert.Contains(one.Statuses.Routes.Values, static s => s.Parents.Any(static p => p.Conditions.Any(static c => c.Reason == ConditionReasons.NotAllowedByListeners)));
        Assert.Contains(one.Statuses.Routes.Values, static s => s.Parents.Any(static p => p.Conditions.Any(static c => c.Reason == ConditionReasons.RefNotPermitted)));
        Assert.Contains(one.Diagnostics, static d => d.Message.Contains("is the oldest attached route", StringComparison.Ordinal));
        Assert.Contains(one.Table.Listeners, static l => l.Backends.Any(static b => b.Policy.Sources.Length > 0));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Compile_WithoutEndpointsListed_DecidesTheSame_AndSaysWhichBackendsHaveReadyOnes(int seed)
    {
        var snapshot = ConfigSnapshot.From(Cluster(new Random(seed)));
        var listed = RouteCompiler.Compile(snapshot, Options, ListenerBindings.AssumeAllBound);
        var omitted = RouteCompiler.Compile(snapshot, Options with { ListEndpoints = false }, ListenerBindings.AssumeAllBound);

        Assert.Equal(listed.Statuses.GatewayClasses.ToList(), omitted.Statuses.GatewayClasses.ToList());
        Assert.Equal(listed.Statuses.Gateways.ToList(), omitted.Statuses.Gateways.ToList());
        Assert.Equal(listed.Statuses.Routes.ToList(), omitted.Statuses.Routes.ToList());
        Assert.Equal(listed.Statuses.Policies.ToList(), omitted.Statuses.Policies.ToList());
        Assert.Equal(listed.Statuses.Conditions.ToList(), omitted.Statuses.Conditions.ToList());
        Assert.Equal(listed.Diagnostics.ToList(), omitted.Diagnostics.ToList());
        Assert.Equal(listed.Table.Listeners.Length, omitted.Table.Listeners.Length);
        foreach (var (with, without) in listed.Table.Listeners.Zip(omitted.Table.Listeners))
        {
            Assert.Equal(with.RejectedWeight, without.RejectedWeight);
            Assert.Equal(with.Backends.Length, without.Backends.Length);
            foreach (var (backend, bare) in with.Backends.Zip(without.Backends))
            {
                // The same backend, with no endpoints listed and a flag that says it had ready ones.
                Assert.False(backend.ReadyEndpointsOmitted);
                Assert.Empty(bare.Endpoints);
                Assert.Equal(backend.Problem is null && !backend.Endpoints.IsEmpty, bare.ReadyEndpointsOmitted);
                Assert.Equal(backend.CanServe, bare.CanServe);
                Assert.Equal(backend with { Endpoints = [], ReadyEndpointsOmitted = bare.ReadyEndpointsOmitted }, bare);
            }

            Assert.Equal(with with { Backends = without.Backends }, without);
        }

        // Both kinds were there: backends with ready endpoints, and resolved ones without (which get a note).
        var backends = omitted.Table.Listeners.SelectMany(static l => l.Backends).ToList();
        Assert.Contains(backends, static b => b.ReadyEndpointsOmitted);
        Assert.Contains(backends, static b => b.Problem is null && !b.ReadyEndpointsOmitted && b.Weight > 0);
        Assert.Contains(omitted.Diagnostics, static d => d.Message.Contains("has no ready endpoints", StringComparison.Ordinal));
        Assert.Contains("\"readyEndpointsOmitted\": true", CompilationResultJson.ToJson(omitted), StringComparison.Ordinal);
        Assert.DoesNotContain("readyEndpointsOmitted", CompilationResultJson.ToJson(listed), StringComparison.Ordinal);
    }

    [Fact]
    public void RouteApiVersions_NameEveryRouteWithAStatus_AndNoOther()
    {
        var snapshot = ConfigSnapshot.From(Cluster(new Random(7)));
        var result = RouteCompiler.Compile(snapshot, Options, ListenerBindings.AssumeAllBound);
        var versions = result.RouteApiVersions;

        // In key order, as the statuses are; every one found by key, with the apiVersion its route was read in.
        Assert.Equal(result.Statuses.Routes.Keys.ToList(), versions.Keys.ToList());
        Assert.Equal(versions.Count, versions.Count());
        foreach (var (key, version) in versions)
        {
            Assert.True(versions.TryGetValue(key, out var found));
            Assert.Equal(((TcpRoute)snapshot.Resources[key]).ApiVersion, found);
            Assert.Equal(version, versions[key]);
        }

        // Routes with no status of ours (parents only elsewhere), and keys of other kinds, are not in it.
        var without = snapshot.Resources.Keys.Where(k => k.Kind == ResourceKind.TcpRoute && !result.Statuses.Routes.ContainsKey(k)).ToList();
        Assert.NotEmpty(without);
        foreach (var key in without.Append(new ResourceKey(ResourceKind.Service, "a", "b")).Append(new ResourceKey(ResourceKind.TcpRoute, "zzz", "zzz")))
        {
            Assert.False(versions.ContainsKey(key));
            Assert.False(versions.TryGetValue(key, out _));
            Assert.Throws<KeyNotFoundException>(() => versions[key]);
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-2)]
    public void MaxDegreeOfParallelism_NeitherMinusOneNorPositive_IsRefused(int value)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => CompilerOptions.Default with { MaxDegreeOfParallelism = value });
        Assert.Contains("MaxDegreeOfParallelism", error.Message, StringComparison.Ordinal);
    }

    internal static IEnumerable<Resource> Cluster(Random random)
    {
        const int namespaces = 40;
        string Ns(int n) => $"ns-{n}";
        yield return new GatewayClass(new ObjectMeta(string.Empty, "fsm"), GatewayApi.DefaultControllerName);
        yield return new GatewayClass(new ObjectMeta(string.Empty, "other"), "example.com/else");
        for (var n = 0; n < namespaces; n++)
        {
            var ns = Ns(n);
            if (n % 2 == 0)
            {
                yield return new KubernetesNamespace(new ObjectMeta(string.Empty, ns) { Labels = ImmutableSortedDictionary<string, string>.Empty.Add("team", n % 4 == 0 ? "x" : "y") });
            }

            for (var g = 0; g < 3; g++)
            {
                yield return new Gateway(
                    new ObjectMeta(ns, $"gw-{g}") { CreationTimestamp = Time(random.Next(3)) },
                    g == 2 && n % 5 == 0 ? "other" : "fsm",
                    [.. Enumerable.Range(0, random.Next(2, 6)).Select(l => new Listener($"l{l}", 9000 + (random.Next(8) == 0 ? 0 : l), "TCP") { AllowedRoutes = Allowed(random) })]);
            }

            for (var s = 0; s < 40; s++)
            {
                yield return new Service(new ObjectMeta(ns, $"s{s}"), [new ServicePort("tcp", 80, "TCP")]);
                for (var slice = 0; slice < (s % 7 == 0 ? 2 : 1); slice++)
                {
                    yield return new EndpointSlice(
                        new ObjectMeta(ns, $"s{s}-{slice}"),
                        $"s{s}",
                        "IPv4",
                        [new EndpointPort("tcp", 8080, "TCP")],
                        [.. Enumerable.Range(0, random.Next(0, 4)).Select(e => new Endpoint([$"10.{n}.{s}.{random.Next(1, 4)}"], random.Next(4) != 0))]);
                }
            }

            for (var r = 0; r < 36; r++)
            {
                yield return Route(random, ns, $"r{r}", n, namespaces);
            }

            if (n % 3 == 0)
            {
                yield return new ReferenceGrant(new ObjectMeta(ns, "grant"), [new ReferenceGrantFrom(GatewayApi.Group, "TCPRoute", Ns((n + 1) % namespaces))], [new ReferenceGrantTo(string.Empty, "Service", n % 2 == 0 ? null : "s1")]);
            }

            yield return new BackendLbPolicy(new ObjectMeta(ns, "lb") { CreationTimestamp = Time(0) }, [new PolicyTargetReference(GatewayApi.CoreGroup, "Service", $"s{random.Next(40)}")], "LeastLoad");
            yield return new HealthCheckPolicy(new ObjectMeta(ns, "hc") { CreationTimestamp = Time(0) }, [new PolicyTargetReference(GatewayApi.CoreGroup, "Service", $"s{random.Next(40)}")], [], new FsmHealthCheck(TimeSpan.FromSeconds(5), 3, null, null, []));
            yield return new BackendTrafficPolicy(new ObjectMeta(ns, "bt") { CreationTimestamp = Time(1) }, [new PolicyTargetReference(GatewayApi.Group, random.Next(2) == 0 ? "Gateway" : "TCPRoute", random.Next(2) == 0 ? "gw-0" : $"r{random.Next(36)}")])
            {
                ConnectTimeout = TimeSpan.FromSeconds(random.Next(1, 4)),
                LoadBalancer = random.Next(2) == 0 ? new LoadBalancerSpec("LeastRequest", null, null) : null,
            };
            yield return new ClientTrafficPolicy(new ObjectMeta(ns, "ct") { CreationTimestamp = Time(1) }, [new PolicyTargetReference(GatewayApi.Group, "Gateway", $"gw-{random.Next(3)}")]) { IdleTimeout = TimeSpan.FromSeconds(random.Next(30, 90)) };
        }
    }

    private static AllowedRoutes Allowed(Random random) => random.Next(8) switch
    {
        0 => new AllowedRoutes(FromNamespaces.All, null, null),
        1 => new AllowedRoutes(FromNamespaces.Selector, new LabelSelector(ImmutableSortedDictionary<string, string>.Empty.Add("team", "x"), []), null),
        2 => new AllowedRoutes(FromNamespaces.Same, null, [new RouteGroupKind(GatewayApi.Group, "HTTPRoute")]),
        _ => AllowedRoutes.Default,
    };

    private static TcpRoute Route(Random random, string ns, string name, int n, int namespaces)
    {
        var parents = Enumerable.Range(0, random.Next(6) == 0 ? random.Next(2, 4) : 1).Select(_ => random.Next(20) switch
        {
            0 => new ParentReference(null, null, null, "gw-9", null, null),
            1 => new ParentReference(GatewayApi.Group, "Service", null, "gw-0", null, null),
            2 or 3 => new ParentReference(null, null, $"ns-{random.Next(namespaces)}", $"gw-{random.Next(3)}", null, null),
            4 or 5 => new ParentReference(null, null, null, $"gw-{random.Next(3)}", $"l{random.Next(6)}", null),
            6 => new ParentReference(null, null, null, $"gw-{random.Next(3)}", null, 9000 + random.Next(6)),
            _ => new ParentReference(null, null, null, $"gw-{random.Next(3)}", null, null),
        }).ToList();
        if (random.Next(15) == 0)
        {
            parents.Add(parents[0]);
        }

        var rules = random.Next(25) switch
        {
            0 => [],
            1 => [Rule(random, n, namespaces), Rule(random, n, namespaces)],
            _ => new[] { Rule(random, n, namespaces) },
        };
        return new TcpRoute(new ObjectMeta(ns, name) { CreationTimestamp = Time(random.Next(4)), Generation = random.Next(1, 3) }, [.. parents], [.. rules])
        {
            ExistingParentStatuses = random.Next(10) switch
            {
                0 => [new RouteParentStatus(parents[0], "example.com/else", [])],
                1 => [new RouteParentStatus(new ParentReference(GatewayApi.Group, "Gateway", ns, "gw-gone", null, null), GatewayApi.DefaultControllerName, [])],
                _ => [],
            },
        };
    }

    private static TcpRouteRule Rule(Random random, int n, int namespaces) =>
        new([.. Enumerable.Range(0, random.Next(5) == 0 ? 2 : 1).Select(_ => random.Next(16) switch
        {
            0 => new BackendReference(null, null, null, "missing", 80, 1),
            1 => new BackendReference("example.com", "Bucket", null, "s1", 80, 1),
            2 => new BackendReference(null, null, null, $"s{random.Next(40)}", null, 1),
            3 => new BackendReference(null, null, null, $"s{random.Next(40)}", 81, 1),
            4 => new BackendReference(null, null, null, $"s{random.Next(40)}", 80, 0),
            5 or 6 => new BackendReference(null, null, $"ns-{(n + namespaces - 1) % namespaces}", $"s{random.Next(3)}", 80, 1),
            7 => new BackendReference(null, null, $"ns-{random.Next(namespaces)}", $"s{random.Next(40)}", 80, 1),
            _ => new BackendReference(null, null, null, $"s{random.Next(40)}", 80, random.Next(1, 4)),
        })]);

    private static DateTimeOffset Time(int second) => new(2024, 1, 1, 0, 0, second, TimeSpan.Zero);
}
