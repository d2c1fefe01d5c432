using System.Text.Json.Nodes;
using FsmGateway.Host.Tests.Support;
using FsmGateway.Testing.Kubernetes;

namespace FsmGateway.Host.Tests.Kubernetes;

/// <summary>
/// The controller watches what it provisions: a Deployment becoming available, a load balancer assigning the Service an
/// address, or a provisioned object deleted by someone is acted on at once, with no other event and long before the
/// periodic resync (5 minutes).
/// </summary>
public sealed class ProvisionedObjectsWatchTests : IAsyncLifetime
{
    private const string GatewayApi = "gateway.networking.k8s.io/v1";
    private const string Namespace = "apps";
    private const string DataPlane = "fsm-gateway-gw";

    /// <summary>Generous for a busy machine, and far below the 5-minute resync the old controller waited for.</summary>
    private static readonly TimeSpan Promptly = TimeSpan.FromSeconds(60);

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("fsm-owned-");
    private readonly int _port = Net.FreePort();
    private readonly int _stream = Net.FreePort();
    private FakeApiServer _server = null!;
    private string _kubeconfig = null!;

    public async Task InitializeAsync()
    {
        _server = await FakeApiServer.StartAsync(new FakeApiServerOptions { Token = "owned-token", BookmarkInterval = TimeSpan.FromSeconds(2) });
        _server.InstallGatewayApiCrds();
        _kubeconfig = _server.WriteKubeconfig(Path.Combine(_dir.FullName, "kubeconfig"));
        _server.ApplyYaml(File.ReadAllText(RepoPaths.Of("deploy/30-gatewayclass.yaml")));
        _server.ApplyYaml($"apiVersion: v1\nkind: Namespace\nmetadata: {{ name: {Namespace} }}\n");
        _server.ApplyYaml($$"""
            apiVersion: gateway.networking.k8s.io/v1
            kind: Gateway
            metadata: { name: gw, namespace: {{Namespace}} }
            spec:
              gatewayClassName: fsm
              listeners: [{ name: tcp, port: {{_port}}, protocol: TCP }]
            """);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _dir.Delete(recursive: true);
    }

    [Fact]
    public async Task Programmed_follows_the_data_plane_becoming_available_and_addressed_with_no_other_event()
    {
        var stream = _stream.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await using var controller = GatewayProcess.Start("controller", "--stream-insecure", "--stream-address", "127.0.0.1", "--stream-port", stream, "--kubeconfig", _kubeconfig, "--image", "example.com/fsm-gateway:test", "--admin-port", "0", "--leader-election-namespace", "fsm-system");

        // Its data plane (as a local process) binds the listener and says so on the config stream: Programmed then
        // depends on the provisioned Deployment and Service alone.
        await using var dataPlane = GatewayProcess.Start("gateway", "--gateway", $"{Namespace}/gw", "--controller-address", $"http://127.0.0.1:{stream}", "--admin-port", "0");
        await dataPlane.WaitUntilReadyAsync();
        await Net.EventuallyAsync(() => Task.FromResult(Status()?["conditions"]?.AsArray().Any(c => c?["message"]?.GetValue<string>().Contains("Deployment", StringComparison.Ordinal) == true) == true), "Programmed=False Pending while the Deployment has no available replica", Promptly);
        await QuietAsync();
        var before = ControllerRequests();

        // The Deployment's first replica becomes available: nothing else changes.
        _server.SetStatus("apps/v1", "Deployment", Namespace, DataPlane, JsonNode.Parse("""{"replicas":1,"availableReplicas":1,"readyReplicas":1}""")!);
        await Net.EventuallyAsync(() => Task.FromResult(ProgrammedReason() == "AddressNotAssigned"), $"Programmed=False AddressNotAssigned once the Deployment is available; controller output:\n{controller.Output}", Promptly);
        Assert.True(ControllerRequests() > before);

        // The cloud's load balancer assigns the Service an address.
        await QuietAsync();
        _server.SetStatus("v1", "Service", Namespace, DataPlane, JsonNode.Parse("""{"loadBalancer":{"ingress":[{"ip":"192.0.2.7"}]}}""")!);
        await Net.EventuallyAsync(
            () => Task.FromResult(ProgrammedReason() == "Programmed" && Status()?["addresses"]?[0]?["value"]?.GetValue<string>() == "192.0.2.7"),
            $"Programmed=True with the load balancer's address; controller output:\n{controller.Output}",
            Promptly);

        // Someone deletes the provisioned Deployment: it is made again.
        await QuietAsync();
        _server.Delete("apps/v1", "Deployment", Namespace, DataPlane);
        await Net.EventuallyAsync(() => Task.FromResult(_server.Get("apps/v1", "Deployment", Namespace, DataPlane) is not null), $"the deleted Deployment provisioned again; controller output:\n{controller.Output}", Promptly);
        await Net.EventuallyAsync(() => Task.FromResult(ProgrammedReason() == "Pending"), "Programmed=False Pending again: the new Deployment has no available replica yet", Promptly);

        Assert.Equal(0, await dataPlane.TerminateAsync());
        Assert.Equal(0, await controller.TerminateAsync());
        Assert.Contains(_server.Requests, r => r.Verb == "watch" && r.Resource == "deployments" && r.Path.Contains("labelSelector=", StringComparison.Ordinal));
    }

    /// <summary>Waits until the controller has made no request (but its watches and Lease renewals) for 3 s: whatever follows has no other cause.</summary>
    private async Task QuietAsync()
    {
        var deadline = DateTime.UtcNow + Promptly;
        var count = ControllerRequests();
        var since = DateTime.UtcNow;
        while (DateTime.UtcNow - since < TimeSpan.FromSeconds(3))
        {
            Assert.True(DateTime.UtcNow < deadline, $"the controller kept making requests with nothing changing: {string.Join(", ", _server.Requests.TakeLast(10).Select(r => $"{r.Verb} {r.Path}"))}");
            await Task.Delay(100);
            if (ControllerRequests() is var now && now != count)
            {
                (count, since) = (now, DateTime.UtcNow);
            }
        }
    }

    private int ControllerRequests() => _server.Requests.Count(r => r.UserAgent?.Contains("(controller)", StringComparison.Ordinal) == true && r.Verb != "watch" && r.Resource != "leases");

    private JsonNode? Status() => _server.Get(GatewayApi, "Gateway", Namespace, "gw")?["status"];

    private string? ProgrammedReason() =>
        Status()?["conditions"]?.AsArray().FirstOrDefault(c => c?["type"]?.GetValue<string>() == "Programmed")?["reason"]?.GetValue<string>();
}
