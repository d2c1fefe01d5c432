using FsmGateway.Configuration;
using FsmGateway.Resources;
using FsmGateway.Routing.Compilation;
using FsmGateway.Status;

namespace FsmGateway.Routing.Tests;

/// <summary>
/// The compile's kept collections (<see cref="CompilationContext"/>'s spare buffers), which every compile in the process
/// shares: these tests run alone, so each compile takes what the one before it left.
/// </summary>
[Collection(nameof(CompilerBuffersTests))]
[CollectionDefinition(nameof(CompilerBuffersTests), DisableParallelization = true)]
public sealed class CompilerBuffersTests
{
    private static readonly CompilerOptions Options = CompilerOptions.Default with { GatewaysHaveOwnAddresses = true };

    private static int Count(ConfigSnapshot snapshot, ResourceKind kind) => snapshot.Resources.Keys.Count(k => k.Kind == kind);

    /// <summary>
    /// A compile reuses the large collections the one before it left (the Service and slice indexes, the routes, their
    /// statuses): after a larger cluster, a smaller one compiles to exactly what it compiled to before, nothing of the
    /// larger one left in it, on one thread and on several.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(-1)]
    public void Compile_AfterALargerCluster_KeepsNothingOfIt(int threads)
    {
        var resources = ParallelCompileTests.Cluster(new Random(7)).ToList();
        var larger = ConfigSnapshot.From(resources);
        var smaller = ConfigSnapshot.From(resources.Where((resource, i) => resource is not (TcpRoute or Service or EndpointSlice) || i % 3 != 0));
        var options = Options with { MaxDegreeOfParallelism = threads };

        var before = RouteCompiler.Compile(smaller, options, ListenerBindings.AssumeAllBound);
        for (var i = 0; i < 3; i++)
        {
            var large = RouteCompiler.Compile(larger, options, ListenerBindings.AssumeAllBound);
            var room = CompilationContext.SpareRoom;
            Assert.InRange(room.Routes, Count(larger, ResourceKind.TcpRoute), int.MaxValue);
            var after = RouteCompiler.Compile(smaller, options, ListenerBindings.AssumeAllBound);

            // The smaller compile took the larger one's collections, and kept their room.
            Assert.Equal(room, CompilationContext.SpareRoom);
            Assert.True(large.Statuses.Routes.Count > after.Statuses.Routes.Count);
            Assert.Equal(before.Table, after.Table);
            Assert.Equal(before.Diagnostics.ToList(), after.Diagnostics.ToList());
            Assert.Equal(before.RouteApiVersions.ToList(), after.RouteApiVersions.ToList());
            Assert.Equal(CompilationResultJson.ToJson(before), CompilationResultJson.ToJson(after));
        }

        // Against the smaller cluster itself, since a compile before this test may have left its own collections: only its
        // routes have statuses, and a route whose Service it lacks (the larger one has it) has ResolvedRefs False.
        var routes = smaller.Resources.Values.OfType<TcpRoute>().ToList();
        Assert.Subset(routes.Select(static r => r.Key).ToHashSet(), before.Statuses.Routes.Keys.ToHashSet());
        Assert.Subset(routes.Select(static r => r.Key).ToHashSet(), before.RouteApiVersions.Keys.ToHashSet());
        var missing = routes.Where(r => before.Statuses.Routes.TryGetValue(r.Key, out var status) && status.Parents.Any(p => p.ControllerName == Options.ControllerName) && r.Rules.Length == 1 && r.Rules[0].BackendRefs.Any(b =>
            b.Kind is null or "Service" && b.Group is null or "" && larger.Resources.ContainsKey(new ResourceKey(ResourceKind.Service, b.Namespace ?? r.Metadata.Namespace, b.Name))
            && !smaller.Resources.ContainsKey(new ResourceKey(ResourceKind.Service, b.Namespace ?? r.Metadata.Namespace, b.Name)))).ToList();
        Assert.NotEmpty(missing);
        Assert.All(missing, r => Assert.Contains(before.Statuses.Routes[r.Key].Parents, p => p.ControllerName == Options.ControllerName
            && p.Conditions.Any(static c => c is { Type: ConditionTypes.ResolvedRefs, Status: ConditionStatus.False })));
    }

    /// <summary>
    /// After a cluster shrinks to a fraction of its size, the collections give back the room its largest compile took (one
    /// that shrinks by a third keeps it, as the test above shows); a per-Gateway recompile, which reads a small part of
    /// the snapshot, uses collections of its own and leaves the spare ones as they are.
    /// </summary>
    [Fact]
    public void Compile_AfterTheClusterShrinksForGood_GivesBackTheRoom_AndAPartialCompileLeavesIt()
    {
        var resources = ParallelCompileTests.Cluster(new Random(7)).ToList();
        var larger = ConfigSnapshot.From(resources);
        var tiny = ConfigSnapshot.From(resources.Where((resource, i) => resource is not (TcpRoute or Service or EndpointSlice) || i % 50 == 0));

        RouteCompiler.Compile(larger, Options, ListenerBindings.AssumeAllBound);
        var room = CompilationContext.SpareRoom;
        Assert.InRange(room.Services, Count(larger, ResourceKind.Service), int.MaxValue);
        Assert.InRange(room.Slices, larger.Resources.Count / 3, int.MaxValue);
        Assert.InRange(room.Routes, Count(larger, ResourceKind.TcpRoute), int.MaxValue);
        Assert.InRange(room.Statuses, Count(larger, ResourceKind.TcpRoute), int.MaxValue);

        var part = RouteCompiler.CompileResources(tiny.Resources.Values, tiny.Revision, Options, ListenerBindings.AssumeAllBound, dataPlanes: null);
        Assert.NotEmpty(part.Statuses.Routes);
        Assert.Equal(room, CompilationContext.SpareRoom);

        var result = RouteCompiler.Compile(tiny, Options, ListenerBindings.AssumeAllBound);
        var shrunk = CompilationContext.SpareRoom;
        Assert.InRange(shrunk.Services, 0, room.Services / 4);
        Assert.InRange(shrunk.Slices, 0, room.Slices / 4);
        Assert.InRange(shrunk.Routes, 0, Math.Max(1024, result.Statuses.Routes.Count));
        Assert.Equal(0, shrunk.Statuses);

        // And the next larger compile grows them again, to be kept.
        Assert.Equal(
            CompilationResultJson.ToJson(RouteCompiler.Compile(larger, Options with { MaxDegreeOfParallelism = 1 }, ListenerBindings.AssumeAllBound)),
            CompilationResultJson.ToJson(RouteCompiler.Compile(larger, Options, ListenerBindings.AssumeAllBound)));
        Assert.InRange(CompilationContext.SpareRoom.Routes, Count(larger, ResourceKind.TcpRoute), int.MaxValue);
    }
}
