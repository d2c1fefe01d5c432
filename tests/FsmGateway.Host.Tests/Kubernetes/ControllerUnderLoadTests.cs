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

    /// <summary>
    /// A user who deletes a Gateway and creates it again under the same name gets a new object: provisioned for it
    /// (owned by its uid, following its spec) and given a status, even when that status is the same as the old
    /// object's. Until the status writer checked the uid, a re-created Gateway whose deletion the controller never saw
    /// in a status set (a pass was busy, or both fell within one debounce window) was taken for written: no status
    /// until the 5-minute resync.
    /// </summary>
    [Fact]
    public async Task Gateways_deleted_and_created_again_at_once_under_the_same_names_are_provisioned_and_given_status_as_new_objects()
    {
        await using var controller = GatewayProcess.Start(
            new Dictionary<string, string?> { ["DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS"] = "1" },
            "controller", "--stream-port", "0", "--kubeconfig", _kubeconfig, "--image", "example.com/fsm-gateway:test", "--admin-port", "0", "--leader-election-namespace", "fsm-system");
        await controller.WaitForLineAsync("leads: it writes status", TimeSpan.FromSeconds(60));
        for (var i = 0; i < Gateways; i++)
        {
            _server.ApplyYaml(Gateway(i, incarnation: 1));
        }

        await AllServedAsync(1, "created", controller);

        // All deleted, then all created again at once, while the controller still handles the deletions. Each new object
        // has the same listener (so the same compiled status as the old one) and another infrastructure label.
        for (var i = 0; i < Gateways; i++)
        {
            _server.Delete(GatewayApi, "Gateway", Ns(i), $"gw-{i}");
        }

        for (var i = 0; i < Gateways; i++)
        {
            _server.ApplyYaml(Gateway(i, incarnation: 2));
        }

        await AllServedAsync(2, "all deleted, then all created again", controller);

        // Each deleted and created again back to back: both within one debounce window, so no snapshot ever lacks it.
        for (var i = 0; i < Gateways; i++)
        {
            _server.Delete(GatewayApi, "Gateway", Ns(i), $"gw-{i}");
            _server.ApplyYaml(Gateway(i, incarnation: 3));
        }

        await AllServedAsync(3, "each deleted and created again within one debounce window", controller);
        Assert.Equal(0, await controller.TerminateAsync());
    }

    /// <summary>Waits until every Gateway is provisioned for the object it is now (its <paramref name="incarnation"/>) and has its status.</summary>
    private Task AllServedAsync(int incarnation, string what, GatewayProcess controller) => KeepsUpAsync(
        () => Enumerable.Range(0, Gateways).All(i => WhyNotServed(i, incarnation) is null),
        $"{what}: all {Gateways} Gateways provisioned for the new objects and with their status",
        controller,
        () => Enumerable.Range(0, Gateways).Select(i => WhyNotServed(i, incarnation)).FirstOrDefault(w => w is not null));

    /// <summary>
    /// Null when Gateway <paramref name="i"/> is provisioned for the object it is now (Deployment and Service owned by its
    /// uid, the Deployment with its infrastructure label <c>incarnation</c>) and has its status (Accepted,
    /// Programmed=False/Pending: no replica is available in the fake); else why not.
    /// </summary>
    private string? WhyNotServed(int i, int incarnation)
    {
        var gateway = _server.Get(GatewayApi, "Gateway", Ns(i), $"gw-{i}");
        if (gateway?["metadata"]?["uid"]?.GetValue<string>() is not { } uid)
        {
            return $"gw-{i} does not exist";
        }

        foreach (var (apiVersion, kind) in new[] { ("apps/v1", "Deployment"), ("v1", "Service") })
        {
            var owners = _server.Get(apiVersion, kind, Ns(i), $"fsm-gateway-gw-{i}")?["metadata"]?["ownerReferences"]?.AsArray().Select(o => o?["uid"]?.GetValue<string>()).ToList();
            if (owners is null || owners.Count != 1 || owners[0] != uid)
            {
                return $"gw-{i}: {kind} {(owners is null ? "missing" : $"owned by [{string.Join(", ", owners)}], not {uid}")}";
            }
        }

        var label = _server.Get("apps/v1", "Deployment", Ns(i), $"fsm-gateway-gw-{i}")!["metadata"]?["labels"]?["incarnation"]?.GetValue<string>();
        if (label != $"{incarnation}")
        {
            return $"gw-{i}: Deployment label incarnation={label}, not {incarnation}";
        }

        var status = gateway["status"];
        string? Condition(string type) => status?["conditions"]?.AsArray().FirstOrDefault(c => c?["type"]?.GetValue<string>() == type) is { } c
            ? $"{c["status"]?.GetValue<string>()}/{c["reason"]?.GetValue<string>()}"
            : null;
        return status?["listeners"]?[0]?["name"]?.GetValue<string>() == "tcp" && Condition("Accepted") == "True/Accepted" && Condition("Programmed") == "False/Pending"
            ? null
            : $"gw-{i}: status {status?.ToJsonString() ?? "none"}";
    }

    private async Task KeepsUpAsync(Func<bool> condition, string what, GatewayProcess controller, Func<string?>? whyNot = null)
    {
        try
        {
            await Net.EventuallyAsync(() => Task.FromResult(condition()), what, CatchUp);
        }
        catch (TimeoutException e)
        {
            var requests = _server.Requests.Where(r => r.UserAgent?.Contains("(controller)", StringComparison.Ordinal) == true).ToList();
            throw new TimeoutException($"{e.Message} ({whyNot?.Invoke()}); the controller made {requests.Count} request(s), the last: {requests.LastOrDefault()?.Path}. Output:\n{controller.Output}", e);
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

    private static string Gateway(int i, int incarnation) => Gateway(i) + $"""

          infrastructure: {"{"} labels: {"{"} incarnation: "{incarnation}" {"}"} {"}"}
        """;
}
