using FsmGateway.Configuration;
using FsmGateway.Kubernetes.Api;
using FsmGateway.Kubernetes.Tests.Support;
using FsmGateway.Testing.Kubernetes;
using k8s;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Kubernetes.Tests.Watch;

/// <summary>How the watch source reports an API server that is away: once per outage at Warning, briefly; the rest at Debug.</summary>
public sealed class WatchRetryLoggingTests() : FakeApiServerTest(new FakeApiServerOptions { BookmarkInterval = TimeSpan.FromMilliseconds(200), InstallGatewayApiCrds = true })
{
    protected override IKubernetes CreateClient(FakeApiServer server) => new k8s.Kubernetes(server.ClientConfiguration(), new CoreGroupPathHandler());

    [Fact]
    public async Task Watch_retries_during_an_outage_log_one_warning_with_type_and_message_and_the_stacks_at_debug()
    {
        var logger = new RecordingLogger();
        var options = new KubernetesOptions { MinRetryDelay = TimeSpan.FromMilliseconds(100), MaxRetryDelay = TimeSpan.FromMilliseconds(400) };
        using var recorder = new EventRecorder(new KubernetesWatchSource(Client, ApiKind.TcpRoute, options, TimeProvider.System, logger));
        await recorder.WaitForAsync(e => e is ConfigEvent.SourceSynced, what: "synced");

        await Server.StopAsync();
        await Eventually(() => logger.Entries.Count(e => e.Level == LogLevel.Debug && e.Exception is not null) >= 5, "five failed attempts");
        await Server.RestartAsync();
        await Eventually(() => logger.Entries.Any(e => e.Message.Contains("answers again", StringComparison.Ordinal)), "the recovery is logged");

        var warnings = logger.Entries.Where(e => e.Level >= LogLevel.Warning && !e.Message.Contains("410", StringComparison.Ordinal)).ToList();
        var warning = Assert.Single(warnings);
        Assert.Null(warning.Exception);
        // Its type and message, and nothing of its stack. Which failure comes first depends on where the source was when
        // the server went: a watch in progress is cut (reset, closed, ended, aborted), one being reopened (a watch ends
        // every few seconds by design) is refused.
        Assert.Matches(@"the watch failed: \w+Exception: .*(reset|closed|ended|aborted|refused)", warning.Message);
        Assert.DoesNotContain("\n", warning.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(" at System.", warning.Message, StringComparison.Ordinal);
        Assert.Contains(logger.Entries, e => e.Level == LogLevel.Debug && e.Message.Contains("Connection refused", StringComparison.Ordinal));
        Assert.All(logger.Entries.Where(e => e.Exception is not null), e => Assert.Equal(LogLevel.Debug, e.Level));

        // A second outage is reported again.
        await Server.StopAsync();
        await Eventually(() => logger.Entries.Count(e => e.Level == LogLevel.Warning && e.Message.Contains("the watch failed", StringComparison.Ordinal)) == 2, "the second outage's warning");
    }

    private static async Task Eventually(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not true in time: {what}");
            await Task.Delay(50);
        }
    }
}
