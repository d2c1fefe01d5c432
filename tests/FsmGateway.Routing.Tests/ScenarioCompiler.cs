using System.Text.Json.Nodes;
using FsmGateway.Configuration;
using FsmGateway.Kubernetes.Manifests;
using FsmGateway.Resources;

namespace FsmGateway.Routing.Tests;

/// <summary>Compiles a scenario fixture exactly as <c>fsm-gateway compile</c> does.</summary>
internal static class ScenarioCompiler
{
    public static string Directory => Path.Combine(AppContext.BaseDirectory, "Scenarios");

    public static IEnumerable<string> Names =>
        System.IO.Directory.EnumerateFiles(Directory, "*.yaml").Select(Path.GetFileNameWithoutExtension).Order(StringComparer.Ordinal)!;

    public static CompilerOptions Options { get; } = new() { ImplicitGatewayClassName = GatewayApi.DefaultGatewayClassName };

    public static ManifestSet Read(string name)
    {
        var manifests = ManifestReader.ReadFile(Path.Combine(Directory, name + ".yaml"));
        Assert.True(manifests.Succeeded, $"{name}: {string.Join("; ", manifests.Errors)}");
        return manifests;
    }

    public static JsonObject CompileToJson(IEnumerable<Resource> resources, IEnumerable<string> notes)
    {
        var result = RouteCompiler.Compile(ConfigSnapshot.From(resources), Options, ListenerBindings.AssumeAllBound);
        var json = CompilationResultJson.ToJsonNode(result);
        // Notes start with the fixture's path; keep only its file name so snapshots do not depend on the machine.
        json["manifestNotes"] = new JsonArray([.. notes.Select(n => JsonValue.Create(n.Replace(Directory + Path.DirectorySeparatorChar, string.Empty, StringComparison.Ordinal)))]);
        return json;
    }
}
