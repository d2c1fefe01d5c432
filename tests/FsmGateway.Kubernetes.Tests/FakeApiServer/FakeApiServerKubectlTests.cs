using System.Text.Json.Nodes;
using FsmGateway.Testing.Kubernetes;
using Xunit.Abstractions;

namespace FsmGateway.Kubernetes.Tests.FakeApi;

/// <summary>The real kubectl (discovery, create, get, delete) against the fake.</summary>
public sealed class FakeApiServerKubectlTests(ITestOutputHelper output) : IAsyncLifetime
{
    private FakeApiServer _server = null!;
    private Kubectl _kubectl = null!;

    public async Task InitializeAsync()
    {
        // No token: kubectl (client-go's clientcmd) only sends a kubeconfig's user credentials to TLS servers, and this one is plain HTTP.
        _server = await FakeApiServer.StartAsync();
        _server.InstallGatewayApiCrds(tcpRouteVersion: "v1alpha2");
        _kubectl = new Kubectl(_server);
    }

    public async Task DisposeAsync()
    {
        foreach (var r in _server.Requests)
        {
            output.WriteLine($"{r.Method} {r.Path} -> {r.StatusCode} ({r.Verb} {r.Resource}) [{r.UserAgent}]");
        }
        _kubectl.Dispose();
        await _server.DisposeAsync();
    }

    [KubectlFact]
    public async Task FakeApiServer_kubectl_creates_the_seed_and_gets_it_back()
    {
        var created = await _kubectl.RunOkAsync("create", "-n", "httpbin", "-f", RepoPaths.Of("samples/tcp-routing/seed/tcp-routing.yaml"), "--validate=false");
        Assert.Contains("tcproute.gateway.networking.k8s.io/tcp-route created", created, StringComparison.Ordinal);
        Assert.Contains("service/httpbin created", created, StringComparison.Ordinal);

        var json = JsonNode.Parse(await _kubectl.RunOkAsync("get", "tcproutes", "-A", "-o", "json"))!;
        var route = Assert.Single(json["items"]!.AsArray())!;
        Assert.Equal("tcp-route", route["metadata"]!["name"]!.ToString());
        Assert.Equal("httpbin", route["metadata"]!["namespace"]!.ToString());
        Assert.Equal(8001, route["spec"]!["parentRefs"]![1]!["port"]!.GetValue<int>());

        Assert.NotNull(_server.Get("apps/v1", "Deployment", "httpbin", "httpbin"));
        Assert.NotNull(_server.Get("gateway.networking.k8s.io/v1", "Gateway", "httpbin", "simple-fsm-gateway"));

        // kubectl asked for aggregated discovery, got plain APIGroupList JSON, and fell back to legacy discovery per group/version
        Assert.Contains(_server.Requests, r => r.Path.StartsWith("/apis?", StringComparison.Ordinal));
        Assert.Contains(_server.Requests, r => r.Path.StartsWith("/apis/gateway.networking.k8s.io/v1alpha2?", StringComparison.Ordinal) && r.StatusCode == 200);
        Assert.Contains(_server.Requests, r => r.Verb == "create" && r.Resource == "tcproutes" && r.Version == "v1alpha2" && r.UserAgent!.StartsWith("kubectl", StringComparison.Ordinal));
    }

    [KubectlFact]
    public async Task FakeApiServer_kubectl_label_selection_jsonpath_and_delete()
    {
        _server.ApplyYaml("""
            apiVersion: v1
            kind: Service
            metadata: {name: a, labels: {app: x}}
            spec: {ports: [{port: 8080}]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: b, labels: {app: y}}
            spec: {ports: [{port: 9090}]}
            """, "default");
        var names = await _kubectl.RunOkAsync("get", "svc", "-l", "app=x", "-o", "jsonpath={.items[*].metadata.name}:{.items[*].spec.ports[0].port}");
        Assert.Equal("a:8080", names.Trim());

        var deleted = await _kubectl.RunOkAsync("delete", "svc", "a", "--timeout=20s");
        Assert.Contains("service \"a\" deleted", deleted, StringComparison.Ordinal);
        Assert.Null(_server.Get("v1", "Service", "default", "a"));

        var (code, _, stderr) = await _kubectl.RunAsync("get", "svc", "a");
        Assert.NotEqual(0, code);
        Assert.Contains("NotFound", stderr, StringComparison.Ordinal);

        var table = await _kubectl.RunOkAsync("get", "svc");
        Assert.Contains("b", table, StringComparison.Ordinal);
    }

    [KubectlFact]
    public async Task FakeApiServer_kubectl_sees_crds_come_and_go()
    {
        Assert.Contains("tcproutes", await _kubectl.RunOkAsync("api-resources", "--api-group=gateway.networking.k8s.io", "-o", "name"), StringComparison.Ordinal);
        _server.RemoveCrd("gateway.networking.k8s.io", "tcproutes");
        var (code, _, stderr) = await _kubectl.RunAsync("get", "tcproutes", "-A");
        Assert.NotEqual(0, code);
        Assert.Contains("tcproutes", stderr, StringComparison.Ordinal);
    }
}
