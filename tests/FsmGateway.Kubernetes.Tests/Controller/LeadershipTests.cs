using FsmGateway.Kubernetes.Api;
using FsmGateway.Kubernetes.Controller;
using FsmGateway.Kubernetes.Tests.Support;
using FsmGateway.Testing.Kubernetes;
using k8s;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FsmGateway.Kubernetes.Tests.Controller;

/// <summary>Leader election through the Lease, against the fake API server going away and coming back.</summary>
public sealed class LeadershipTests : FakeApiServerTest
{
    [Fact]
    public async Task The_leader_keeps_leading_through_an_outage_shorter_than_the_renew_deadline_and_steps_down_only_after_a_longer_one()
    {
        var logger = new RecordingLogger();
        var options = new KubernetesControllerOptions
        {
            Identity = "replica-a",
            LeaseDuration = TimeSpan.FromSeconds(8),
            RenewDeadline = TimeSpan.FromSeconds(6),
            RetryPeriod = TimeSpan.FromMilliseconds(200),
        };
        using var meters = new TestMeterFactory();
        var reachability = new ApiServerReachability(TimeProvider.System, meters);
        using var client = new k8s.Kubernetes(Server.ClientConfiguration(), new ReachabilityHandler(reachability));
        using var leadership = new Leadership(client, Options.Create(options), reachability, TimeProvider.System, new RecordingLogger<Leadership>(logger), meters);
        var changes = new List<bool>();
        leadership.Changed += changes.Add;
        await leadership.StartAsync(CancellationToken.None);
        await Eventually(() => leadership.IsLeader, "leads");
        Assert.Equal([1L], meters.Observe("fsmgateway.controller.leader"));
        Assert.Equal([1L], meters.Observe("fsmgateway.kubernetes.api_server.reachable"));

        // Every request fails (connection refused) for a second: renewals fail, leadership holds.
        await Server.StopAsync();
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(1);
        while (DateTime.UtcNow < until)
        {
            Assert.True(leadership.IsLeader, "stepped down at a failed renewal, long before the renew deadline");
            await Task.Delay(50);
        }

        Assert.Equal([0L], meters.Observe("fsmgateway.kubernetes.api_server.reachable"));
        Assert.True(meters.Observe("fsmgateway.kubernetes.api_server.failures").Single() >= 2);
        Assert.NotNull(reachability.Outage);

        await Server.RestartAsync();
        await Eventually(() => logger.Entries.Any(e => e.Message.Contains("can be read and written again", StringComparison.Ordinal)), "renews again");
        Assert.Equal([true], changes);
        Assert.Contains(logger.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("still leading", StringComparison.Ordinal) && e.Exception is null);

        // An outage past the renew deadline: it steps down, keeps trying, and leads again once the server is back.
        await Server.StopAsync();
        await Eventually(() => !leadership.IsLeader, "steps down after the renew deadline");
        Assert.Equal([0L], meters.Observe("fsmgateway.controller.leader"));
        Assert.False(leadership.ExecuteTask!.IsCompleted, "the election loop ended");
        await Server.RestartAsync();
        await Eventually(() => leadership.IsLeader, "leads again");
        Assert.Equal([true, false, true], changes);
        Assert.Equal("replica-a", Server.Get("coordination.k8s.io/v1", "Lease", options.LeaseNamespace, options.LeaseName)?["spec"]?["holderIdentity"]?.GetValue<string>());

        await leadership.StopAsync(CancellationToken.None);
        Assert.Equal(string.Empty, Server.Get("coordination.k8s.io/v1", "Lease", options.LeaseNamespace, options.LeaseName)?["spec"]?["holderIdentity"]?.GetValue<string>());
    }

    [Fact]
    public async Task A_subscriber_that_throws_on_a_change_does_not_end_the_election()
    {
        var logger = new RecordingLogger();
        var options = new KubernetesControllerOptions
        {
            Identity = "replica-a",
            LeaseDuration = TimeSpan.FromSeconds(8),
            RenewDeadline = TimeSpan.FromSeconds(6),
            RetryPeriod = TimeSpan.FromMilliseconds(200),
        };
        using var leadership = new Leadership(Client, Options.Create(options), new ApiServerReachability(TimeProvider.System), TimeProvider.System, new RecordingLogger<Leadership>(logger));
        leadership.Changed += static _ => throw new InvalidOperationException("a broken subscriber");
        await leadership.StartAsync(CancellationToken.None);

        await Eventually(() => leadership.IsLeader, "leads");
        await Eventually(() => logger.Entries.Any(e => e.Message.Contains("InvalidOperationException: a broken subscriber", StringComparison.Ordinal)), "the subscriber's fault is logged");

        // The loop goes on renewing: the Lease's renew time moves.
        string? RenewTime() => Server.Get("coordination.k8s.io/v1", "Lease", options.LeaseNamespace, options.LeaseName)?["spec"]?["renewTime"]?.GetValue<string>();
        var renewed = RenewTime();
        await Eventually(() => RenewTime() != renewed, "renews after the subscriber threw");
        Assert.False(leadership.ExecuteTask!.IsCompleted, "the election loop ended");
        Assert.True(leadership.IsLeader);

        await leadership.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task A_candidate_takes_the_Lease_only_once_its_holder_stopped_renewing_for_the_lease_duration()
    {
        var options = new KubernetesControllerOptions
        {
            Identity = "replica-b",
            LeaseDuration = TimeSpan.FromSeconds(2),
            RenewDeadline = TimeSpan.FromSeconds(1),
            RetryPeriod = TimeSpan.FromMilliseconds(100),
        };
        var now = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", System.Globalization.CultureInfo.InvariantCulture);
        Server.ApplyYaml($$"""
            apiVersion: coordination.k8s.io/v1
            kind: Lease
            metadata: { name: {{options.LeaseName}}, namespace: {{options.LeaseNamespace}} }
            spec: { holderIdentity: replica-a, leaseDurationSeconds: 2, acquireTime: "{{now}}", renewTime: "{{now}}", leaseTransitions: 3 }
            """);
        using var leadership = new Leadership(Client, Options.Create(options), new ApiServerReachability(TimeProvider.System), TimeProvider.System, new RecordingLogger<Leadership>(new RecordingLogger()));
        var started = DateTime.UtcNow;
        await leadership.StartAsync(CancellationToken.None);
        await Eventually(() => leadership.IsLeader, "takes the expired Lease");

        // Not before two seconds (the holder's lease duration) from when it first saw the Lease.
        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromSeconds(2), $"took a live Lease after {DateTime.UtcNow - started}");
        var spec = Server.Get("coordination.k8s.io/v1", "Lease", options.LeaseNamespace, options.LeaseName)!["spec"]!;
        Assert.Equal("replica-b", spec["holderIdentity"]!.GetValue<string>());
        Assert.Equal(4, spec["leaseTransitions"]!.GetValue<int>());
        await leadership.StopAsync(CancellationToken.None);
    }

    private static async Task Eventually(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not true in time: {what}");
            await Task.Delay(20);
        }
    }
}
