using System.Net;
using System.Net.Http;
using FsmGateway.Host.Tests.Support;

namespace FsmGateway.Host.Tests;

/// <summary>
/// Ready means serving: <c>fsm-gateway run</c> with nothing to serve stays up and watching, answers <c>/readyz</c> with
/// 503 and the reason, keeps <c>/healthz</c> at 200, and becomes ready when a good file arrives. Real processes, real
/// HTTP to the probes.
/// </summary>
public sealed class ReadinessTests : IDisposable
{
    private readonly DirectoryInfo _config = Directory.CreateTempSubdirectory("fsm-ready-");

    public void Dispose() => _config.Delete(recursive: true);

    private void Write(string file, string text)
    {
        var temp = Path.Combine(_config.FullName, "." + file + ".tmp");
        File.WriteAllText(temp, text);
        File.Move(temp, Path.Combine(_config.FullName, file), overwrite: true);
    }

    public static TheoryData<string, string, string> NothingToServe => new()
    {
        { "an empty folder", string.Empty, "the config holds no Gateway" },
        {
            "a misspelt kind",
            """
            apiVersion: gateway.networking.k8s.io/v1
            kind: Gatway
            metadata:
              name: gw
            spec:
              gatewayClassName: fsm
              listeners:
                - name: tcp
                  port: 8000
                  protocol: TCP
            """,
            "the config holds no Gateway"
        },
        {
            "a Gateway of another class",
            """
            apiVersion: gateway.networking.k8s.io/v1
            kind: Gateway
            metadata:
              name: gw
            spec:
              gatewayClassName: someone-else
              listeners:
                - name: tcp
                  port: 8000
                  protocol: TCP
            """,
            "Gateway default/gw"
        },
        {
            "a Gateway whose only listener is invalid",
            """
            apiVersion: gateway.networking.k8s.io/v1
            kind: Gateway
            metadata:
              name: gw
            spec:
              gatewayClassName: fsm
              listeners:
                - name: udp
                  port: 8000
                  protocol: UDP
            """,
            "UnsupportedProtocol"
        },
    };

    [Theory]
    [MemberData(nameof(NothingToServe))]
    public async Task Run_ServingNothing_ReadyzAnswers503WithTheReason_HealthzStaysOk_AndTheProcessKeepsRunning(string what, string manifest, string reason)
    {
        if (manifest.Length > 0)
        {
            Write("gateway.yaml", manifest);
        }

        await using var gateway = GatewayProcess.Start("run", "--config", _config.FullName, "--admin-port", "0");
        await gateway.WaitForAdminAsync();
        await gateway.WaitForLineAsync("Not ready, serving nothing");
        using var http = new HttpClient { BaseAddress = gateway.AdminUri, Timeout = TimeSpan.FromSeconds(10) };

        using var ready = await http.GetAsync(new Uri("/readyz", UriKind.Relative));
        var body = await ready.Content.ReadAsStringAsync();

        Assert.True(ready.StatusCode == HttpStatusCode.ServiceUnavailable, $"{what}: /readyz answered {(int)ready.StatusCode} {body}");
        Assert.Contains(reason, body, StringComparison.Ordinal);
        Assert.Equal("ok\n", await http.GetStringAsync(new Uri("/healthz", UriKind.Relative)));
        Assert.DoesNotContain("Gateway ready", gateway.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_EmptyFolder_BecomesReadyWhenAGoodFileArrives()
    {
        await using var backend = new EchoServer();
        var port = Net.FreePort();
        await using var gateway = GatewayProcess.Start("run", "--config", _config.FullName, "--admin-port", "0");
        await gateway.WaitForAdminAsync();
        await gateway.WaitForLineAsync("Not ready, serving nothing");
        using var http = new HttpClient { BaseAddress = gateway.AdminUri, Timeout = TimeSpan.FromSeconds(10) };
        using (var before = await http.GetAsync(new Uri("/readyz", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, before.StatusCode);
        }

        Write("route.yaml", Manifests.RouteAndBackend(backend.Port));
        Write("gateway.yaml", Manifests.Gateway(("tcp", port)));

        await gateway.WaitForLineAsync("Gateway ready");
        Assert.Equal("ready\n", await http.GetStringAsync(new Uri("/readyz", UriKind.Relative)));
        Assert.Equal("after", await Net.EchoOnceAsync(port, "after"));
    }

    [Fact]
    public async Task Run_GatewayRemoved_ReadyzTurns503_AndTheProcessKeepsRunning()
    {
        await using var backend = new EchoServer();
        var port = Net.FreePort();
        Write("route.yaml", Manifests.RouteAndBackend(backend.Port));
        Write("gateway.yaml", Manifests.Gateway(("tcp", port)));
        await using var gateway = GatewayProcess.Start("run", "--config", _config.FullName, "--admin-port", "0");
        await gateway.WaitUntilReadyAsync();
        using var http = new HttpClient { BaseAddress = gateway.AdminUri, Timeout = TimeSpan.FromSeconds(10) };

        File.Delete(Path.Combine(_config.FullName, "gateway.yaml"));

        await Net.EventuallyAsync(
            async () =>
            {
                using var response = await http.GetAsync(new Uri("/readyz", UriKind.Relative));
                return response.StatusCode == HttpStatusCode.ServiceUnavailable
                    && (await response.Content.ReadAsStringAsync()).Contains("the config holds no Gateway", StringComparison.Ordinal);
            },
            "/readyz answers 503 once nothing is served");
        Assert.Equal("ok\n", await http.GetStringAsync(new Uri("/healthz", UriKind.Relative)));
    }
}
