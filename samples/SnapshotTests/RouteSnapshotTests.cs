using FsmGateway.Configuration;
using FsmGateway.Kubernetes.Manifests;
using FsmGateway.Routing;
using Newtonsoft.Json.Linq;
using Snapshooter;
using Snapshooter.Xunit;
using Xunit;

namespace SnapshotTests;

/// <summary>
/// What a user's repository does with FsmGateway.Routing: compile its own manifests and snapshot the routing table and
/// the statuses, so a change that detaches a route or moves a port shows up in review.
/// </summary>
public sealed class RouteSnapshotTests
{
    public static TheoryData<string> Manifests =>
        [.. Directory.EnumerateFiles(Path.Combine(AppContext.BaseDirectory, "manifests"), "*.yaml").Select(static f => Path.GetFileNameWithoutExtension(f)).Order()];

    [Theory]
    [MemberData(nameof(Manifests))]
    public void Manifest_CompilesToTheReviewedSnapshot(string name)
    {
        var manifests = ManifestReader.ReadFile(Path.Combine(AppContext.BaseDirectory, "manifests", name + ".yaml"), "shop");
        Assert.True(manifests.Succeeded, string.Join("\n", manifests.Errors));

        var result = RouteCompiler.Compile(
            ConfigSnapshot.From(manifests.Resources),
            new CompilerOptions { ImplicitGatewayClassName = "fsm" },
            ListenerBindings.AssumeAllBound);

        Snapshot.Match(JToken.Parse(CompilationResultJson.ToJson(result)), SnapshotNameExtension.Create(name));
    }

    [Fact]
    public void Production_EveryRouteIsAcceptedOnEveryParent()
    {
        var manifests = ManifestReader.ReadFile(Path.Combine(AppContext.BaseDirectory, "manifests", "production.yaml"), "shop");

        var result = RouteCompiler.Compile(ConfigSnapshot.From(manifests.Resources), new CompilerOptions { ImplicitGatewayClassName = "fsm" });

        Assert.All(result.Statuses.Routes.Values.SelectMany(r => r.Parents).SelectMany(p => p.Conditions),
            c => Assert.Equal(FsmGateway.Status.ConditionStatus.True, c.Status));
    }
}
