using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using FsmGateway.Host.Tests.Support;

namespace FsmGateway.Host.Tests;

/// <summary>
/// <c>--log-format json|text</c> on the real process: in JSON every line of output is one object with the event id of
/// its <c>[LoggerMessage]</c> definition and a UTC timestamp; in text every entry stays one line, an exception's stack
/// included.
/// </summary>
public sealed partial class LogFormatTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("fsm-log-format-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public async Task Run_with_json_logs_writes_only_json_objects_with_the_event_ids_of_the_startup_events()
    {
        await using var echo = new EchoServer();
        var port = Net.FreePort();
        File.WriteAllText(Path.Combine(_dir.FullName, "gateway.yaml"), Manifests.Gateway(("tcp", port)) + "\n---\n" + Manifests.RouteAndBackend(echo.Port));
        await using var gateway = GatewayProcess.Start("run", "--config", _dir.FullName, "--admin-port", "0", "--log-format", "json");
        var ready = await gateway.WaitForLineAsync("Gateway ready");
        Assert.Equal("hello", await Net.EchoOnceAsync(port, "hello"));
        Assert.Equal(0, await gateway.TerminateAsync());

        var lines = gateway.Output.Split('\n');
        var entries = lines.Select(Parse).ToList();
        foreach (var entry in entries)
        {
            Assert.Equal(JsonValueKind.Number, entry.GetProperty("EventId").ValueKind);
            Assert.Contains(entry.GetProperty("LogLevel").GetString(), new[] { "Trace", "Debug", "Information", "Warning", "Error", "Critical" });
            Assert.False(string.IsNullOrEmpty(entry.GetProperty("Category").GetString()));
            Assert.False(string.IsNullOrEmpty(entry.GetProperty("Message").GetString()));
            var timestamp = entry.GetProperty("Timestamp").GetString()!;
            Assert.Matches(UtcTimestamp(), timestamp);
            Assert.InRange(DateTimeOffset.Parse(timestamp, CultureInfo.InvariantCulture), DateTimeOffset.UtcNow.AddMinutes(-10), DateTimeOffset.UtcNow.AddMinutes(1));
        }

        // The known events, each with the id of its [LoggerMessage] definition and its values in State.
        AssertEvent(entries, "FsmGateway.Transport.Hosting.GatewayHostedService", 1, "Waiting for every config source to sync");
        AssertEvent(entries, "FsmGateway.Transport.Proxy.GatewayProxy", 1, $"Listening on 127.0.0.1:{port}");
        var readyEntry = AssertEvent(entries, "FsmGateway.Transport.Hosting.GatewayHostedService", 4, "Gateway ready: 1 listener(s) serving");
        Assert.Equal("1", readyEntry.GetProperty("State").GetProperty("Listeners").GetRawText());
        Assert.Equal(4, Parse(ready).GetProperty("EventId").GetInt32());
        var admin = AssertEvent(entries, "fsm-gateway", 1, "Admin endpoints on http://127.0.0.1:");
        Assert.StartsWith("http://127.0.0.1:", admin.GetProperty("State").GetProperty("Urls").GetString(), StringComparison.Ordinal);
        AssertEvent(entries, "FsmGateway.Transport.Hosting.GatewayHostedService", 5, "Stopping: no new connections");
        AssertEvent(entries, "FsmGateway.Transport.Hosting.GatewayHostedService", 6, "Stopped");
    }

    [Fact]
    public async Task A_failure_logged_at_warning_is_one_line_in_text_and_one_object_in_json_with_its_stack_only_at_debug()
    {
        // An API server where nothing listens: every request fails with HttpRequestException (connection refused).
        var kubeconfig = Path.Combine(_dir.FullName, "kubeconfig");
        File.WriteAllText(kubeconfig, $$"""
            apiVersion: v1
            kind: Config
            clusters: [{ name: c, cluster: { server: "http://127.0.0.1:{{Net.FreePort()}}" } }]
            users: [{ name: u, user: { token: t } }]
            contexts: [{ name: x, context: { cluster: c, user: u } }]
            current-context: x
            """);
        string[] args = ["gateway", "--gateway", "apps/gw", "--kubeconfig", kubeconfig, "--admin-port", "0"];

        // Text, Information: the warning is one line, the exception's type and message; no stack anywhere.
        await using (var text = GatewayProcess.Start(args))
        {
            var warning = await text.WaitForLineAsync("the API server failed");
            Assert.Contains("warn:", warning, StringComparison.Ordinal);
            Assert.Contains("HttpRequestException", warning, StringComparison.Ordinal);
            Assert.Equal(0, await text.TerminateAsync());
            Assert.All(text.Output.Split('\n'), line => Assert.Matches(TextEntry(), line));
            Assert.DoesNotMatch(StackFrame(), text.Output);
        }

        // Text, Debug: the stack is there, and still on its entry's single line.
        await using (var debug = GatewayProcess.Start([.. args, "--log-level", "Debug"]))
        {
            var detail = await debug.WaitForLineAsync("the failure in full");
            Assert.Contains("HttpRequestException", detail, StringComparison.Ordinal);
            Assert.Matches(StackFrame(), detail);
            Assert.Equal(0, await debug.TerminateAsync());
            Assert.All(debug.Output.Split('\n'), line => Assert.Matches(TextEntry(), line));
        }

        // JSON, Debug: each entry one object; the warning names the exception without its stack, the detail has it.
        await using (var json = GatewayProcess.Start([.. args, "--log-level", "Debug", "--log-format", "json"]))
        {
            await json.WaitForLineAsync("the failure in full");
            Assert.Equal(0, await json.TerminateAsync());
            var entries = json.Output.Split('\n').Select(Parse).ToList();
            var warning = entries.First(e => e.GetProperty("Message").GetString()!.Contains("the API server failed", StringComparison.Ordinal));
            Assert.Equal("Warning", warning.GetProperty("LogLevel").GetString());
            Assert.Equal(5, warning.GetProperty("EventId").GetInt32());
            Assert.Contains("HttpRequestException", warning.GetProperty("Message").GetString(), StringComparison.Ordinal);
            Assert.False(warning.TryGetProperty("Exception", out _));
            var detail = entries.First(e => e.GetProperty("Message").GetString()!.Contains("the failure in full", StringComparison.Ordinal));
            Assert.Equal("Debug", detail.GetProperty("LogLevel").GetString());
            Assert.Contains("HttpRequestException", detail.GetProperty("Exception").GetString(), StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("run")]
    [InlineData("controller")]
    [InlineData("gateway")]
    public async Task Log_format_that_is_neither_json_nor_text_exits_1_naming_the_option(string command)
    {
        string[] args = command == "gateway" ? [command, "--gateway", "a/b"] : [command];
        await using var process = GatewayProcess.Start([.. args, "--admin-port", "0", "--log-format", "yaml"]);
        Assert.Equal(1, await process.WaitForExitAsync());
        Assert.Contains("--log-format: 'yaml' is not a log format (json or text)", process.Output, StringComparison.Ordinal);
    }

    private static JsonElement AssertEvent(List<JsonElement> entries, string category, int eventId, string message)
    {
        var found = entries.Where(e => e.GetProperty("Category").GetString() == category && e.GetProperty("Message").GetString()!.StartsWith(message, StringComparison.Ordinal)).ToList();
        Assert.True(found.Count == 1, $"one entry {category}[{eventId}] '{message}…' expected, {found.Count} found");
        Assert.Equal(eventId, found[0].GetProperty("EventId").GetInt32());
        return found[0];
    }

    private static JsonElement Parse(string line)
    {
        try
        {
            using var document = JsonDocument.Parse(line);
            Assert.Equal(JsonValueKind.Object, document.RootElement.ValueKind);
            return document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new Xunit.Sdk.XunitException($"not a JSON object: {line} ({e.Message})");
        }
    }

    /// <summary>A frame of a .NET stack trace, e.g. <c> at System.Net.Sockets.Socket.Connect(</c>.</summary>
    [GeneratedRegex(@" at [A-Za-z_][\w.`<>]*\.[\w<>`]+\(")]
    private static partial Regex StackFrame();

    [GeneratedRegex(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")]
    private static partial Regex UtcTimestamp();

    /// <summary>A text entry's line: time, level, category and event id.</summary>
    [GeneratedRegex(@"^\d{2}:\d{2}:\d{2}\.\d{3} (trce|dbug|info|warn|fail|crit): [^ ]+\[\d+\] ")]
    private static partial Regex TextEntry();
}
