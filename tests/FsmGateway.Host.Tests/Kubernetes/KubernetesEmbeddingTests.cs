using FsmGateway.Configuration;
using FsmGateway.Host.Tests.Support;
using FsmGateway.Kubernetes;
using FsmGateway.Status;
using FsmGateway.Testing.Kubernetes;
using FsmGateway.Transport;
using FsmGateway.Transport.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Host.Tests.Kubernetes;

/// <summary><c>AddKubernetes()</c> and <c>AddKubernetesController()</c> through the real DI composition and a real generic host.</summary>
public sealed class KubernetesEmbeddingTests
{
    [Fact]
    public async Task AddKubernetes_ServesTheClustersGatewayAndFollowsItsChanges()
    {
        await using var server = await FakeApiServer.StartAsync(new FakeApiServerOptions { InstallGatewayApiCrds = true, Token = "embed" });
        await using var backend = new EchoServer();
        var (port, moved) = (Net.FreePort(), Net.FreePort());
        server.ApplyYaml(Config(port, backend.Port));

        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddFsmGateway().AddKubernetes(o => o.ClientConfiguration = server.ClientConfiguration());
        using var host = builder.Build();
        await host.StartAsync();

        // Seven Gateway API and core kinds, the three backend-policy kinds (issue 15) and the seven client-policy kinds (issue 10).
        Assert.Equal(17, host.Services.GetServices<IConfigSource>().Count(s => s.Name.StartsWith("kubernetes/", StringComparison.Ordinal)));
        await Net.EventuallyAsync(() => Task.FromResult(host.Services.GetRequiredService<GatewayRuntimeState>().IsReady), "ready after every kind synced");
        Assert.Equal("from the cluster", await Net.EchoOnceAsync(port, "from the cluster"));

        server.ApplyYaml(Config(moved, backend.Port));
        await Net.EventuallyAsync(async () => !await Net.IsRefusedAsync(moved), "the listener follows the Gateway's edit");
        Assert.Equal("moved", await Net.EchoOnceAsync(moved, "moved"));
        await host.StopAsync();
    }

    [Fact]
    public void AddKubernetesController_AddsTheWatchOnceAndOneStatusSink()
    {
        var services = new ServiceCollection();
        var gateway = services.AddFsmGateway();

        gateway.AddKubernetesController().AddKubernetes().AddKubernetesController();

        using var provider = services.BuildServiceProvider();
        Assert.Equal(17, services.Count(d => d.ServiceType == typeof(IConfigSource)));
        Assert.Single(services, d => d.ServiceType == typeof(IStatusSink) && d.ImplementationFactory is not null && d.ImplementationType is null);
    }

    [Fact]
    public async Task ControllerName_set_once_is_the_compilers_the_status_writers_and_the_provisioners()
    {
        // One option: before, the compiler's name (FsmGatewayOptions) and the status writer's (KubernetesControllerOptions)
        // were set apart, and when they differed the writer dropped every route parent entry the compiler made.
        const string Custom = "example.com/custom-controller";
        await using var server = await FakeApiServer.StartAsync(new FakeApiServerOptions { InstallGatewayApiCrds = true, Token = "embed" });
        server.ApplyYaml($$"""
            apiVersion: gateway.networking.k8s.io/v1
            kind: GatewayClass
            metadata: { name: fsm }
            spec: { controllerName: {{Custom}} }
            ---
            {{Config(Net.FreePort(), 9)}}
            """);

        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.Configure<GatewayControllerOptions>(o => o.ControllerName = Custom);
        builder.Services.AddFsmGateway(o => o.Mode = GatewayMode.Controller)
            .AddKubernetes(o => o.ClientConfiguration = server.ClientConfiguration())
            .AddKubernetesController(o => o.LeaderElection = false);
        using var host = builder.Build();
        await host.StartAsync();

        await Net.EventuallyAsync(
            () => Task.FromResult(server.Get("gateway.networking.k8s.io/v1", "TCPRoute", "apps", "route")?["status"]?["parents"]?[0] is { } parent
                && parent["controllerName"]?.GetValue<string>() == Custom
                && parent["conditions"]?.AsArray().Any(c => c?["type"]?.GetValue<string>() == "Accepted" && c["status"]?.GetValue<string>() == "True") == true),
            "the route's parent entry written, in the controller's name");
        Assert.Equal("True", server.Get("gateway.networking.k8s.io/v1", "GatewayClass", null, "fsm")?["status"]?["conditions"]?.AsArray()
            .FirstOrDefault(c => c?["type"]?.GetValue<string>() == "Accepted")?["status"]?.GetValue<string>());
        await host.StopAsync();
    }

    private static string Config(int port, int backendPort) => $$"""
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata: { name: gw, namespace: apps }
        spec:
          gatewayClassName: fsm
          addresses: [{ type: IPAddress, value: 127.0.0.1 }]
          listeners: [{ name: tcp, port: {{port}}, protocol: TCP }]
        ---
        apiVersion: gateway.networking.k8s.io/v1
        kind: TCPRoute
        metadata: { name: route, namespace: apps }
        spec:
          parentRefs: [{ name: gw }]
          rules: [{ backendRefs: [{ name: echo, port: 80 }] }]
        ---
        apiVersion: v1
        kind: Service
        metadata: { name: echo, namespace: apps }
        spec: { ports: [{ port: 80, protocol: TCP }] }
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata: { name: echo-1, namespace: apps, labels: { kubernetes.io/service-name: echo } }
        addressType: IPv4
        ports: [{ port: {{backendPort}}, protocol: TCP }]
        endpoints: [{ addresses: [127.0.0.1], conditions: { ready: true } }]
        """;
}
