using System.Text.Json.Nodes;
using FsmGateway.Testing.Kubernetes;

namespace FsmGateway.Host.Tests.Support;

/// <summary>
/// The FSM guide's cluster on the fake API server, as the end-to-end Kubernetes tests start from it: the Gateway API
/// CRDs, the GatewayClass from <c>deploy/</c>, namespace <c>httpbin</c>, and the seed manifest
/// (<c>kubectl apply -n httpbin -f tcp-routing.yaml</c>) with its two listeners moved to free ports.
/// </summary>
internal sealed class SeedCluster : IAsyncDisposable
{
    public const string GatewayApi = "gateway.networking.k8s.io/v1";
    public const string Namespace = "httpbin";
    public const string GatewayName = "simple-fsm-gateway";

    private SeedCluster(FakeApiServer server, DirectoryInfo directory, int foo, int bar)
    {
        Server = server;
        Directory = directory;
        Foo = foo;
        Bar = bar;
        Kubeconfig = server.WriteKubeconfig(Path.Combine(directory.FullName, "kubeconfig"));
    }

    public FakeApiServer Server { get; }

    /// <summary>A temporary directory for the test's files, deleted with the cluster.</summary>
    public DirectoryInfo Directory { get; }

    /// <summary>The kubeconfig of a client with the server's token.</summary>
    public string Kubeconfig { get; }

    /// <summary>The port of the seed's listener <c>foo</c> (8000 in the manifest).</summary>
    public int Foo { get; }

    /// <summary>The port of the seed's listener <c>bar</c> (8001 in the manifest).</summary>
    public int Bar { get; }

    /// <param name="token">The bearer token the server accepts (and the kubeconfig carries).</param>
    /// <param name="chunkedAbove">Frame responses above this size as kube-apiserver does (chunked, the final chunk late).</param>
    public static async Task<SeedCluster> StartAsync(string token, int? chunkedAbove = null)
    {
        var server = await FakeApiServer.StartAsync(new FakeApiServerOptions { BookmarkInterval = TimeSpan.FromSeconds(2), Token = token, ChunkedAbove = chunkedAbove });
        var cluster = new SeedCluster(server, System.IO.Directory.CreateTempSubdirectory("fsm-cluster-"), Net.FreePort(), Net.FreePort());
        server.InstallGatewayApiCrds(tcpRouteVersion: "v1alpha2", referenceGrantVersion: "v1beta1");
        server.ApplyYaml(File.ReadAllText(RepoPaths.Of("deploy/30-gatewayclass.yaml")));
        server.ApplyYaml($"apiVersion: v1\nkind: Namespace\nmetadata: {{ name: {Namespace} }}\n");
        var seed = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "seed/tcp-routing.yaml"))
            .Replace("port: 8000", $"port: {cluster.Foo}", StringComparison.Ordinal)
            .Replace("port: 8001", $"port: {cluster.Bar}", StringComparison.Ordinal);
        server.ApplyYaml(seed, Namespace);
        return cluster;
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        Directory.Delete(recursive: true);
    }

    /// <summary>
    /// The Service's endpoints: one ready 127.0.0.1 endpoint per port, one EndpointSlice each (EndpointSlice ports are
    /// the endpoints' own ports); slices beyond the ports given are deleted.
    /// </summary>
    public void ApplyEndpoints(params int[] ports) => ApplyEndpoints(Namespace, "httpbin", ports);

    /// <inheritdoc cref="ApplyEndpoints(int[])"/>
    public void ApplyEndpoints(string ns, string service, params int[] ports)
    {
        var existing = Server.List("discovery.k8s.io/v1", "EndpointSlice", ns)
            .Where(s => s["metadata"]?["labels"]?["kubernetes.io/service-name"]?.GetValue<string>() == service)
            .ToList();
        for (var i = 0; i < ports.Length; i++)
        {
            Server.ApplyYaml($$"""
                apiVersion: discovery.k8s.io/v1
                kind: EndpointSlice
                metadata:
                  name: {{service}}-{{i}}
                  namespace: {{ns}}
                  labels: { kubernetes.io/service-name: {{service}} }
                addressType: IPv4
                ports: [{ port: {{ports[i]}}, protocol: TCP }]
                endpoints: [{ addresses: [127.0.0.1], conditions: { ready: true } }]
                """);
        }

        foreach (var stale in existing.Where(s => !Enumerable.Range(0, ports.Length).Any(i => s["metadata"]!["name"]!.GetValue<string>() == $"{service}-{i}")))
        {
            Server.Delete("discovery.k8s.io/v1", "EndpointSlice", ns, stale["metadata"]!["name"]!.GetValue<string>());
        }
    }

    /// <summary>The seed Gateway's status (or another Gateway's in the namespace), as last written.</summary>
    public JsonNode? GatewayStatus(string name = GatewayName) => Server.Get(GatewayApi, "Gateway", Namespace, name)?["status"];

    /// <summary>The object once it exists (the controller provisions it), failing with the controller's output.</summary>
    public async Task<JsonObject> EventuallyGetAsync(string apiVersion, string kind, string ns, string name, GatewayProcess controller)
    {
        JsonObject? found = null;
        await Net.EventuallyAsync(
            () => Task.FromResult((found = Server.Get(apiVersion, kind, ns, name)) is not null),
            $"{kind} {ns}/{name} is provisioned; controller output:\n{controller.Output}",
            TimeSpan.FromSeconds(30));
        return found!;
    }

    public static JsonNode? Listener(JsonNode status, string name) =>
        status["listeners"]?.AsArray().FirstOrDefault(l => l?["name"]?.GetValue<string>() == name);

    public static JsonNode? Condition(JsonNode owner, string type) =>
        owner["conditions"]?.AsArray().FirstOrDefault(c => c?["type"]?.GetValue<string>() == type);

    public static bool Is(JsonNode owner, string type, string status, string reason) =>
        Condition(owner, type) is { } c && c["status"]?.GetValue<string>() == status && c["reason"]?.GetValue<string>() == reason;
}
