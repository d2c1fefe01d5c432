using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using FsmGateway.Host.Tests.Support;

namespace FsmGateway.Host.Tests;

/// <summary>
/// FSM's health-check guide, written for our TCP Gateway, end to end: <c>fsm-gateway run</c> in its own process, a
/// <c>HealthCheckPolicy</c> as FSM's guide writes it (an HTTP check of <c>/status/200</c> expecting 200) on the Service
/// behind a TCPRoute, two real HTTP servers as its endpoints (127.0.0.1 and 127.0.0.2, one port). <c>/status</c> shows
/// each endpoint's health and why; an endpoint that starts failing its check stops getting connections, and gets
/// them again once it passes.
/// </summary>
public sealed class EndpointHealthStatusTests : IDisposable
{
    private readonly DirectoryInfo _config = Directory.CreateTempSubdirectory("fsm-health-");

    public void Dispose() => _config.Delete(recursive: true);

    [Fact]
    public async Task FsmHealthCheckPolicy_HttpCheckOnATcpRoutesBackend_StatusShowsWhy_AndAFailingEndpointGetsNoConnections()
    {
        await using var one = new HealthHttpServer("one", IPAddress.Loopback);
        await using var two = new HealthHttpServer("two", IPAddress.Parse("127.0.0.2"), one.Port);
        var port = Net.FreePort();
        File.WriteAllText(Path.Combine(_config.FullName, "gateway.yaml"), Manifests.Gateway(("tcp", port)));
        File.WriteAllText(Path.Combine(_config.FullName, "app.yaml"), $$"""
            apiVersion: gateway.networking.k8s.io/v1alpha2
            kind: TCPRoute
            metadata: { name: httpbin }
            spec:
              parentRefs: [{ name: gw }]
              rules:
                - backendRefs: [{ name: httpbin, port: 8080 }]
            ---
            apiVersion: v1
            kind: Service
            metadata: { name: httpbin }
            spec:
              ports: [{ port: 8080 }]
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: httpbin-1
              labels: { kubernetes.io/service-name: httpbin }
            addressType: IPv4
            ports: [{ port: {{one.Port}} }]
            endpoints:
              - addresses: [127.0.0.1]
              - addresses: [127.0.0.2]
            ---
            apiVersion: gateway.flomesh.io/v1alpha2
            kind: HealthCheckPolicy
            metadata: { name: health-check-policy-sample }
            spec:
              targetRefs:
                - { group: "", kind: Service, name: httpbin }
              ports:
                - port: 8080
                  healthCheck:
                    interval: 1s
                    maxFails: 3
                    failTimeout: 1s
                    path: /status/200
                    matches:
                      - statusCodes: [200]
            """);
        await using var gateway = GatewayProcess.Start(["run", "--config", _config.FullName, "--admin-port", "0", "--drain-timeout", "1s"]);
        await gateway.WaitUntilReadyAsync();
        using var http = new HttpClient { BaseAddress = gateway.AdminUri, Timeout = TimeSpan.FromSeconds(10) };

        // Accepted, and both endpoints probed with GET /status/200 and healthy.
        var status = await StatusAsync(http);
        var policy = status["resources"]!.AsArray().Single(r => (string?)r!["kind"] == "HealthCheckPolicy")!;
        var ancestor = Assert.Single(policy["status"]!["ancestors"]!.AsArray())!;
        Assert.Equal("True", (string?)ancestor["conditions"]!.AsArray().Single(c => (string?)c!["type"] == "Accepted")!["status"]);
        await Net.EventuallyAsync(async () => Endpoints(await StatusAsync(http)).All(e => (bool?)e["active"]?["lastProbePassed"] == true), "both endpoints passed a probe", TimeSpan.FromSeconds(30));
        var healthy = Endpoint(await StatusAsync(http), "127.0.0.2");
        Assert.Equal((true, "healthy", "HTTP", true), ((bool)healthy["healthy"]!, (string?)healthy["reason"], (string?)healthy["active"]!["protocol"], (bool)healthy["active"]!["up"]!));
        Assert.Equal(("default", "httpbin", 8080), ((string?)healthy["backend"]!["namespace"], (string?)healthy["backend"]!["name"], (int)healthy["backend"]!["port"]!));
        Assert.True(two.Requests("/status/200") > 0);
        Assert.Contains("two", await ServedByAsync(port, 8));

        // Two starts failing its check: after maxFails probes it is down, /status says why, connections go to one.
        two.Status = "503 Service Unavailable";
        await Net.EventuallyAsync(async () => !(bool)Endpoint(await StatusAsync(http), "127.0.0.2")["healthy"]!, "127.0.0.2 marked down", TimeSpan.FromSeconds(30));
        var down = Endpoint(await StatusAsync(http), "127.0.0.2");
        Assert.Equal((false, "HTTP status 503: the status is not one of 200"), ((bool)down["active"]!["up"]!, (string?)down["active"]!["lastError"]));
        Assert.True((int)down["active"]!["consecutiveFailures"]! >= 3);
        Assert.Matches(@"^down: \d+ failed HTTP probe\(s\) in a row \(last: HTTP status 503", (string?)down["reason"]);
        Assert.True((bool)Endpoint(await StatusAsync(http), "127.0.0.1")["healthy"]!);
        Assert.DoesNotContain("two", await ServedByAsync(port, 8));
        await gateway.WaitForLineAsync("Endpoint 127.0.0.2:");

        // One passing probe brings it back (FSM: a success marks a down endpoint up).
        two.Status = "200 OK";
        await Net.EventuallyAsync(async () => (bool)Endpoint(await StatusAsync(http), "127.0.0.2")["healthy"]!, "127.0.0.2 back up", TimeSpan.FromSeconds(30));
        Assert.Contains("two", await ServedByAsync(port, 8));
        Assert.Contains("is up again", gateway.Output, StringComparison.Ordinal);
    }

    private static async Task<JsonNode> StatusAsync(HttpClient http) =>
        JsonNode.Parse(await http.GetStringAsync(new Uri("/status", UriKind.Relative)))!;

    private static IEnumerable<JsonNode> Endpoints(JsonNode status) => status["endpoints"]!.AsArray().Select(static e => e!);

    private static JsonNode Endpoint(JsonNode status, string address) => Endpoints(status).Single(e => (string?)e["address"] == address);

    /// <summary>Sends an HTTP request through the gateway on <paramref name="count"/> connections; returns which server answered each.</summary>
    private static async Task<List<string>> ServedByAsync(int port, int count)
    {
        var names = new List<string>();
        for (var i = 0; i < count; i++)
        {
            using var socket = await Net.ConnectAsync(port);
            await socket.SendAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: test\r\n\r\n"), SocketFlags.None);
            var answer = new StringBuilder();
            var buffer = new byte[1024];
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            int read;
            while ((read = await socket.ReceiveAsync(buffer, SocketFlags.None, deadline.Token)) > 0)
            {
                answer.Append(Encoding.ASCII.GetString(buffer, 0, read));
            }

            names.Add(answer.ToString().Split("\r\n\r\n")[^1]);
        }

        return names;
    }
}
