using FsmGateway.Host.Tests.Support;
using FsmGateway.Testing.Kubernetes;

namespace FsmGateway.Host.Tests.Kubernetes;

/// <summary>
/// The controller as a process, with inline socket completions on (as the host runs the modes that proxy, and as an
/// embedder may run it), against an API server that frames responses as kube-apiserver does: Content-Length up to
/// 2 KiB, chunked above, the final chunk written separately a little later. A synchronous read of such a body on an
/// epoll thread blocks the thread that would deliver the final chunk, and every socket of the process stops.
/// </summary>
public sealed class ControllerUnderLoadTests : IAsyncLifetime
{
    private const string GatewayApi = "gateway.networking.k8s.io/v1";
    private const int Gateways = 50;
    private const int Namespaces = 5;
    private const int Cycles = 3;
    private static readonly TimeSpan CatchUp = TimeSpan.FromSeconds(120);

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("fsm-load-");
    private FakeApiServer _server = null!;
    private string _kubeconfig = null!;

    public async Task InitializeAsync()
    {
        _server = await FakeApiServer.StartAsync(new FakeApiServerOptions
        {
            Token = "load-token",
            ChunkedAbove = 2048,
            FinalChunkDelay = TimeSpan.FromMilliseconds(20),
            BookmarkInterval = TimeSpan.FromSeconds(2),
        });
        _server.InstallGatewayApiCrds();
        _kubeconfig = _server.WriteKubeconfig(Path.Combine(_dir.FullName, "kubeconfig"));
        _server.ApplyYaml(File.ReadAllText(RepoPaths.Of("deploy/30-gatewayclass.yaml")));
        for (var n = 0; n < Namespaces; n++)
        {
            _server.ApplyYaml($"apiVersion: v1\nkind: Namespace\nmetadata: {{ name: load-{n} }}\n");
        }
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _dir.Delete(recursive: true);
    }

    [Fact]
    public async Task Fifty_gateways_added_and_removed_in_a_loop_never_stall_the_controller_with_inline_completions_on()
    {
        await using var controller = GatewayProcess.Start(
            new Dictionary<string, string?> { ["DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS"] = "1" },
            "controller", "--stream-port", "0", "--kubeconfig", _kubeconfig, "--image", "example.com/fsm-gateway:test", "--admin-port", "0", "--leader-election-namespace", "fsm-system");
        await controller.WaitForLineAsync("leads: it writes status", TimeSpan.FromSeconds(60));
        await controller.WaitForAdminAsync();
        using var status = new HttpClient { BaseAddress = controller.AdminUri, Timeout = TimeSpan.FromSeconds(30) };

        for (var cycle = 0; cycle < Cycles; cycle++)
        {
            for (var i = 0; i < Gateways; i++)
            {
                _server.ApplyYaml(Gateway(i));
            }

            // Every Gateway gets its data plane and its status, written by the controller.
            await KeepsUpAsync(
                () => Enumerable.Range(0, Gateways).All(i =>
                    _server.Get("apps/v1", "Deployment", Ns(i), $"fsm-gateway-gw-{i}") is not null
                    && _server.Get("v1", "Service", Ns(i), $"fsm-gateway-gw-{i}") is not null
                    && _server.Get(GatewayApi, "Gateway", Ns(i), $"gw-{i}")?["status"]?["listeners"]?[0]?["name"]?.GetValue<string>() == "tcp"),
                $"cycle {cycle}: all {Gateways} Gateways provisioned and with status",
                controller);

            for (var i = 0; i < Gateways; i++)
            {
                _server.Delete(GatewayApi, "Gateway", Ns(i), $"gw-{i}");
            }

            // The controller notices: its compiled view (/status) holds none of the deleted Gateways, no data-plane
            // Deployment is left, and no role was ever bound to a data plane. (Until the secured config stream this
            // waited for the controller to delete the namespaces' data-plane bindings, which no longer exist.)
            try
            {
                await Net.EventuallyAsync(
                    async () => _server.List("apps/v1", "Deployment").Count == 0
                        && _server.List("rbac.authorization.k8s.io/v1", "ClusterRoleBinding").Count == 0
                        && !(await status.GetStringAsync(new Uri("/status", UriKind.Relative))).Contains("/gw-", StringComparison.Ordinal),
                    $"cycle {cycle}: the controller has dropped the deleted Gateways",
                    CatchUp);
            }
            catch (TimeoutException e)
            {
                throw new TimeoutException($"{e.Message}. Output:\n{controller.Output}", e);
            }
        }

        Assert.Equal(0, await controller.TerminateAsync());
    }

    private async Task KeepsUpAsync(Func<bool> condition, string what, GatewayProcess controller)
    {
        try
        {
            await Net.EventuallyAsync(() => Task.FromResult(condition()), what, CatchUp);
        }
        catch (TimeoutException e)
        {
            var requests = _server.Requests.Where(r => r.UserAgent?.Contains("(controller)", StringComparison.Ordinal) == true).ToList();
            throw new TimeoutException($"{e.Message}; the controller made {requests.Count} request(s), the last: {requests.LastOrDefault()?.Path}. Output:\n{controller.Output}", e);
        }
    }

    private static string Ns(int i) => $"load-{i % Namespaces}";

    private static string Gateway(int i) => $"""
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata: {"{"} name: gw-{i}, namespace: {Ns(i)} {"}"}
        spec:
          gatewayClassName: fsm
          listeners: [{"{"} name: tcp, port: {10000 + i}, protocol: TCP {"}"}]
        """;
}
