using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using FsmGateway.Host.Tests.Support;

namespace FsmGateway.Host.Tests;

/// <summary>
/// The access log of the real process: a scripted set of connections (each way of ending), read back line by line in
/// both formats; a sink that never drains while traffic goes on; log rotation by rename and by SIGHUP.
/// </summary>
public sealed partial class AccessLogTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("fsm-accesslog-");
    private readonly DirectoryInfo _config;

    public AccessLogTests() => _config = _dir.CreateSubdirectory("config");

    public void Dispose() => _dir.Delete(recursive: true);

    [Theory]
    [InlineData("json")]
    [InlineData("text")]
    public async Task AccessLog_ScriptedConnections_OneLineEachWithItsFieldsAndReason(string format)
    {
        await using var traffic = new KnownTraffic();
        await using var resetBackend = new ResetServer();
        var resetPort = Net.FreePort();
        File.WriteAllText(Path.Combine(_config.FullName, "gateway.yaml"), traffic.Manifests);
        File.WriteAllText(Path.Combine(_config.FullName, "reset.yaml"), ResetManifests(resetPort, resetBackend.Port));
        var log = Path.Combine(_dir.FullName, "access.log");
        var before = DateTimeOffset.UtcNow;
        await using var gateway = GatewayProcess.Start(
            "run", "--config", _config.FullName, "--admin-port", "0", "--idle-timeout", "3s", "--drain-timeout", "500ms",
            "--access-log", log, "--access-log-format", format);
        await gateway.WaitUntilReadyAsync();

        await traffic.EchoAsync(connections: 1, bytes: 1000);
        await traffic.BannerAsync(1);
        await KnownTraffic.RefusedAsync(traffic.NoRoutePort, 1);
        await KnownTraffic.RefusedAsync(traffic.EmptyPort, 1);
        await KnownTraffic.RefusedAsync(traffic.DeadPort, 1);
        await traffic.IdleAsync(1);
        using (var socket = await Net.ConnectAsync(resetPort))
        {
            await socket.SendAsync("x"u8.ToArray());
            await ReadUntilClosedAsync(socket);
        }

        // Open and busy (so never idle) when the gateway is stopped: closed at the drain deadline.
        using var busy = await Net.ConnectAsync(traffic.EchoPort);
        using var stopChatting = new CancellationTokenSource();
        var chatting = ChatAsync(busy, stopChatting.Token);
        await Net.EventuallyAsync(() => Task.FromResult(Volatile.Read(ref _chatted) > 0), "the busy connection echoes");
        Assert.Equal(0, await gateway.TerminateAsync());
        await stopChatting.CancelAsync();
        await chatting;
        var after = DateTimeOffset.UtcNow;

        var lines = File.ReadAllLines(log).Select(line => Parse(line, format)).ToList();
        Assert.True(lines.Count == 8, $"{lines.Count} lines, expected 8:\n{File.ReadAllText(log)}");
        foreach (var line in lines)
        {
            Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", line["start_time"]);
            var start = DateTimeOffset.Parse(line["start_time"]!, CultureInfo.InvariantCulture);
            Assert.InRange(start, before.AddSeconds(-1), after.AddSeconds(1));
            Assert.Equal("end", line["event"]);
            Assert.Equal("127.0.0.1", line["client_address"]);
            Assert.InRange(int.Parse(line["client_port"]!, CultureInfo.InvariantCulture), 1, 65535);
            Assert.True(double.Parse(line["duration_ms"]!, CultureInfo.InvariantCulture) >= 0);
        }

        var echo = Single(lines, traffic.EchoPort, "client_closed");
        Assert.Equal("apps/gw", echo["gateway"]);
        Assert.Equal("echo", echo["listener"]);
        Assert.Equal("apps/echo", echo["route"]);
        Assert.Equal("apps/echo", echo["backend"]);
        Assert.Equal("9000", echo["backend_port"]);
        Assert.Equal($"127.0.0.1:{traffic.EchoBackendPort}", echo["endpoint"]);
        Assert.True(double.Parse(echo["upstream_connect_ms"]!, CultureInfo.InvariantCulture) >= 0);
        Assert.Equal("1000", echo["bytes_upstream"]);
        Assert.Equal("1000", echo["bytes_downstream"]);
        Assert.Equal("client", echo["closed_by"]);

        var banner = Single(lines, traffic.BannerPort, "backend_closed");
        Assert.Equal(("0", "6", "backend"), (banner["bytes_upstream"], banner["bytes_downstream"], banner["closed_by"]));

        var noRoute = Single(lines, traffic.NoRoutePort, "refused_no_route");
        Assert.Equal((null, null, null, "gateway"), (noRoute["route"], noRoute["backend"], noRoute["endpoint"], noRoute["closed_by"]));

        var empty = Single(lines, traffic.EmptyPort, "refused_no_healthy_endpoint");
        Assert.Equal(("apps/empty", "apps/empty", null, "gateway"), (empty["route"], empty["backend"], empty["endpoint"], empty["closed_by"]));

        var dead = Single(lines, traffic.DeadPort, "refused_upstream_connect_failed");
        Assert.Equal(("apps/dead", null, null, "0", "gateway"), (dead["backend"], dead["endpoint"], dead["upstream_connect_ms"], dead["bytes_upstream"], dead["closed_by"]));

        var idle = Single(lines, traffic.EchoPort, "idle_timeout");
        Assert.Equal("gateway", idle["closed_by"]);
        Assert.True(double.Parse(idle["duration_ms"]!, CultureInfo.InvariantCulture) >= 3000, $"closed as idle after {idle["duration_ms"]} ms");

        var reset = Single(lines, resetPort, "backend_reset");
        Assert.Equal(("apps/rgw", "reset", "apps/reset", "1", "backend"), (reset["gateway"], reset["listener"], reset["route"], reset["bytes_upstream"], reset["closed_by"]));

        var drained = Single(lines, traffic.EchoPort, "drain");
        Assert.Equal("gateway", drained["closed_by"]);
        Assert.NotEqual("0", drained["bytes_downstream"]);
    }

    [Fact]
    public async Task AccessLog_SinkNeverRead_ProxyKeepsRelaying_AndTheDropsAreCounted()
    {
        await using var traffic = new KnownTraffic();
        File.WriteAllText(Path.Combine(_config.FullName, "gateway.yaml"), traffic.Manifests);
        var fifo = Path.Combine(_dir.FullName, "access.fifo");
        using (var mkfifo = Process.Start("mkfifo", [fifo]))
        {
            await mkfifo.WaitForExitAsync();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        // Opened read-write (which never blocks on a FIFO) and never read: the pipe fills, then the writer blocks.
        using var neverRead = File.OpenHandle(fifo, FileMode.Open, FileAccess.ReadWrite);
        await using var gateway = GatewayProcess.Start(
            "run", "--config", _config.FullName, "--admin-port", "0", "--access-log", fifo, "--access-log-queue", "16");
        await gateway.WaitUntilReadyAsync();

        const int Connections = 600; // ~250 KB of lines: far more than a pipe (64 KiB) and the queue hold
        await traffic.EchoAsync(Connections, bytes: 100);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var exposition = await MetricsTests.WhenIdleAsync(http, new Uri(gateway.AdminUri!, "/metrics"));
        var dropped = exposition.Sum("fsmgateway_access_log_dropped_total");
        var written = exposition.Sum("fsmgateway_access_log_written_total");
        Assert.True(dropped > 0, $"no line dropped: written {written}\n{exposition.Text}");
        Assert.True(written + dropped <= Connections, $"written {written} + dropped {dropped} > {Connections}");
        Assert.Equal(Connections, exposition.Sum("fsmgateway_connections_closed_total", ("reason", "client_closed")));

        // A writer blocked for good does not hold up shutdown.
        Assert.Equal(0, await gateway.TerminateAsync());
    }

    [Fact]
    public async Task AccessLog_FileRenamed_NextLinesGoToANewFileAtThePath()
    {
        await using var traffic = new KnownTraffic();
        File.WriteAllText(Path.Combine(_config.FullName, "gateway.yaml"), traffic.Manifests);
        var log = Path.Combine(_dir.FullName, "access.log");
        await using var gateway = GatewayProcess.Start("run", "--config", _config.FullName, "--admin-port", "0", "--access-log", log);
        await gateway.WaitUntilReadyAsync();

        await traffic.EchoAsync(connections: 2, bytes: 10);
        await Net.EventuallyAsync(() => Task.FromResult(LineCount(log) == 2), "two lines in the access log");
        var rotated = log + ".1";
        File.Move(log, rotated);

        // Within the check interval (1 s) lines may still reach the renamed file; after it, the new file.
        var total = 2;
        await Net.EventuallyAsync(
            async () =>
            {
                await traffic.EchoAsync(connections: 1, bytes: 10);
                total++;
                return LineCount(log) > 0;
            },
            "a line in a new file at the path",
            TimeSpan.FromSeconds(30));
        await Net.EventuallyAsync(() => Task.FromResult(LineCount(rotated) + LineCount(log) == total), $"{total} lines across both files");
        Assert.True(LineCount(rotated) >= 2);

        // The console logger writes on its own queue: the log line may trail the access-log line it announced.
        await gateway.WaitForLineAsync("Reopening the access log");
    }

    [Fact]
    public async Task AccessLog_SigHup_ReopensTheFile_AndTheProcessRunsOn()
    {
        await using var traffic = new KnownTraffic();
        File.WriteAllText(Path.Combine(_config.FullName, "gateway.yaml"), traffic.Manifests);
        var log = Path.Combine(_dir.FullName, "access.log");
        await using var gateway = GatewayProcess.Start("run", "--config", _config.FullName, "--admin-port", "0", "--access-log", log, "--access-log-format", "text");
        await gateway.WaitUntilReadyAsync();
        await traffic.EchoAsync(connections: 1, bytes: 10);
        await Net.EventuallyAsync(() => Task.FromResult(LineCount(log) == 1), "a line in the access log");

        var rotated = log + ".1";
        File.Move(log, rotated);
        using (var hangUp = Process.Start("kill", ["-HUP", gateway.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await hangUp.WaitForExitAsync();
        }

        await gateway.WaitForLineAsync("Reopening the access log .*SIGHUP");
        Assert.True(File.Exists(log), "SIGHUP did not create a new file at the path");
        await traffic.EchoAsync(connections: 1, bytes: 10);
        await Net.EventuallyAsync(() => Task.FromResult(LineCount(log) == 1), "the next line in the new file");
        Assert.Equal(1, LineCount(rotated));
        Assert.False(gateway.HasExited, "SIGHUP ended the process");
    }

    [Fact]
    public async Task AccessLog_ToStdout_WritesItsLinesThere()
    {
        await using var traffic = new KnownTraffic();
        File.WriteAllText(Path.Combine(_config.FullName, "gateway.yaml"), traffic.Manifests);
        await using var gateway = GatewayProcess.Start("run", "--config", _config.FullName, "--admin-port", "0", "--access-log", "stdout", "--access-log-start");
        await gateway.WaitUntilReadyAsync();
        await traffic.EchoAsync(connections: 1, bytes: 10);

        var end = Parse(await gateway.WaitForLineAsync("^\\{.*\"event\":\"end\""), "json");
        var start = Parse(await gateway.WaitForLineAsync("^\\{.*\"event\":\"start\""), "json");
        Assert.Equal(("client_closed", "10"), (end["reason"], end["bytes_upstream"]));
        Assert.Equal((end["start_time"], end["client_port"], "echo"), (start["start_time"], start["client_port"], start["listener"]));
    }

    [Theory]
    [InlineData("run")]
    [InlineData("gateway")]
    public async Task Help_ListsTheAccessLogOptions(string mode)
    {
        await using var gateway = GatewayProcess.Start(mode, "--help");
        Assert.Equal(0, await gateway.WaitForExitAsync());
        foreach (var option in new[] { "--access-log ", "--access-log-format", "--access-log-queue", "--access-log-start" })
        {
            Assert.Contains(option, gateway.Output, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("--access-log", "/no/such/folder/access.log", "--access-log: the folder of '/no/such/folder/access.log' does not exist")]
    [InlineData("--access-log", "/tmp", "--access-log: '/tmp' is a folder, not a file")]
    [InlineData("--access-log-queue", "0", "--access-log-queue: '0' is not between 1 and 1000000")]
    [InlineData("--access-log-format", "yaml", "--access-log-format")]
    public async Task AccessLogOptions_Invalid_ExitWithAnErrorNamingTheOption(string option, string value, string error)
    {
        string[] args = option == "--access-log" ? ["run", "--admin-port", "0", option, value] : ["run", "--admin-port", "0", "--access-log", "stdout", option, value];
        await using var gateway = GatewayProcess.Start(args);
        Assert.Equal(1, await gateway.WaitForExitAsync());
        Assert.Contains(error, gateway.Output, StringComparison.Ordinal);
    }

    private int _chatted;

    /// <summary>Echoes a byte every 100 ms until the gateway closes the connection or <paramref name="stop"/>.</summary>
    private async Task ChatAsync(Socket socket, CancellationToken stop)
    {
        var buffer = new byte[1];
        try
        {
            while (!stop.IsCancellationRequested)
            {
                await socket.SendAsync("."u8.ToArray());
                if (await socket.ReceiveAsync(buffer, stop) == 0)
                {
                    return;
                }

                Interlocked.Increment(ref _chatted);
                await Task.Delay(100, stop);
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            // Closed by the drain, or stopped.
        }
    }

    private static async Task ReadUntilClosedAsync(Socket socket)
    {
        var buffer = new byte[256];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            while (await socket.ReceiveAsync(buffer, timeout.Token) > 0)
            {
            }
        }
        catch (SocketException)
        {
            // The backend's reset, passed on.
        }
    }

    private static Dictionary<string, string?> Single(List<Dictionary<string, string?>> lines, int port, string reason)
    {
        var portText = port.ToString(CultureInfo.InvariantCulture);
        var matching = lines.Where(l => l["port"] == portText && l["reason"] == reason).ToList();
        Assert.True(matching.Count == 1, $"{matching.Count} lines for port {port} with reason {reason}; all: {string.Join("; ", lines.Select(static l => $"{l["port"]}={l["reason"]}"))}");
        return matching[0];
    }

    private static int LineCount(string path) => File.Exists(path) ? File.ReadAllLines(path).Length : 0;

    /// <summary>One line as key → value (null for JSON null or text "-"), from either format.</summary>
    private static Dictionary<string, string?> Parse(string line, string format)
    {
        if (format == "json")
        {
            using var document = JsonDocument.Parse(line);
            return document.RootElement.EnumerateObject().ToDictionary(
                static p => p.Name,
                static p => p.Value.ValueKind switch
                {
                    JsonValueKind.Null => null,
                    JsonValueKind.String => p.Value.GetString(),
                    _ => p.Value.GetRawText(),
                });
        }

        var pairs = TextPair().Matches(line);
        Assert.True(string.Join(' ', pairs.Select(static m => m.Value)) == line, $"not key=value pairs: {line}");
        return pairs.ToDictionary(static m => m.Groups[1].Value, static m => m.Groups[2].Value == "-" ? null : m.Groups[2].Value);
    }

    [GeneratedRegex("""([a-z_]+)=("(?:[^"\\]|\\.)*"|[^ ]+)""")]
    private static partial Regex TextPair();

    private static string ResetManifests(int listenerPort, int backendPort) => $"""
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata:
          name: rgw
          namespace: apps
        spec:
          gatewayClassName: fsm
          addresses:
            - type: IPAddress
              value: 127.0.0.1
          listeners:
            - name: reset
              port: {listenerPort}
              protocol: TCP
        ---
        apiVersion: gateway.networking.k8s.io/v1alpha2
        kind: TCPRoute
        metadata:
          name: reset
          namespace: apps
        spec:
          parentRefs:
            - name: rgw
              sectionName: reset
          rules:
            - backendRefs:
                - name: reset
                  port: 9000
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: reset
          namespace: apps
        spec:
          ports:
            - port: 9000
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: reset-1
          namespace: apps
          labels:
            kubernetes.io/service-name: reset
        addressType: IPv4
        ports:
          - port: {backendPort}
        endpoints:
          - addresses: [127.0.0.1]
        """;
}
