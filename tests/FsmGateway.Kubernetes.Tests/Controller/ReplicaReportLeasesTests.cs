using FsmGateway.Kubernetes.Controller;
using FsmGateway.Kubernetes.Tests.Support;
using FsmGateway.Testing.Kubernetes;
using k8s;
using Microsoft.Extensions.Options;

namespace FsmGateway.Kubernetes.Tests.Controller;

/// <summary>A replica's report Lease (<see cref="ReplicaReportLeases"/>) against the fake API server.</summary>
public sealed class ReplicaReportLeasesTests : FakeApiServerTest
{
    /// <summary>
    /// Reports too large for the Lease (one bad data plane's, or simply too many) are not written: the Lease is renewed
    /// with the reports last written, so the other replicas keep counting this one's data planes. Before, the write
    /// carried them whatever their size, and when the API server refused it (256 KiB of annotations at most) the Lease
    /// was no longer renewed and every data plane of the replica expired at once.
    /// </summary>
    [Fact]
    public async Task Reports_over_the_limit_are_not_written_and_the_lease_keeps_being_renewed_with_the_last_ones()
    {
        var logger = new RecordingLogger();
        using var leases = await StartWithSmallReportsAsync(logger);
        var name = ReplicaReportLeases.LeaseNameOf("replica-a");

        leases.Publish(new string('x', ReplicaReportLeases.MaxReportsBytes + 1));
        var renewed = RenewTime(name) ?? DateTime.MinValue;
        await Eventually(() => RenewTime(name) is { } at && at > renewed, "the Lease is renewed");
        await Eventually(() => RenewTime(name) is { } at && at > renewed.AddSeconds(1), "and renewed again");
        Assert.Equal("[{\"small\":1}]", Annotation(name));
        Assert.Contains(logger.Entries, e => e.Message.Contains("over the", StringComparison.Ordinal));

        // Once they fit again, they are written.
        leases.Publish("[]");
        await Eventually(() => Annotation(name) == "[]", "reports that fit are written again");
        await leases.StopAsync(CancellationToken.None);
    }

    /// <summary>
    /// Reports the API server refuses (here once, with a 422) are not written and not tried again until they change:
    /// the Lease keeps being renewed with the reports last written.
    /// </summary>
    [Fact]
    public async Task Reports_the_API_server_refuses_are_not_tried_again_and_the_lease_keeps_being_renewed_with_the_last_ones()
    {
        var logger = new RecordingLogger();
        using var leases = await StartWithSmallReportsAsync(logger);
        var name = ReplicaReportLeases.LeaseNameOf("replica-a");

        // The next Lease update (the changed reports, a retry period after the last write, well before the renewal
        // a third of the lease duration after it) is refused.
        var refuse = 1;
        Server.FailRequest = r => r is { Verb: "update", Resource: "leases" } && Interlocked.Exchange(ref refuse, 0) == 1
            ? new FakeApiException(422, "Invalid", "metadata.annotations: Too long")
            : null;
        leases.Publish("[{\"refused\":1}]");
        await Eventually(() => logger.Entries.Any(e => e.Message.Contains("refused this replica's", StringComparison.Ordinal)), "the refusal is logged");
        var renewed = RenewTime(name) ?? DateTime.MinValue;
        await Eventually(() => RenewTime(name) is { } at && at > renewed, "the Lease is renewed");
        await Eventually(() => RenewTime(name) is { } at && at > renewed.AddSeconds(1), "and renewed again");
        Assert.Equal("[{\"small\":1}]", Annotation(name));

        // Once they change, they are written.
        leases.Publish("[]");
        await Eventually(() => Annotation(name) == "[]", "changed reports are written again");
        await leases.StopAsync(CancellationToken.None);
    }

    /// <summary>Starts replica-a's report Lease (renewed every second) and waits until its first, small reports are written.</summary>
    private async Task<ReplicaReportLeases> StartWithSmallReportsAsync(RecordingLogger logger)
    {
        var options = new KubernetesControllerOptions
        {
            Identity = "replica-a",
            LeaseNamespace = "fsm-system",
            LeaseDuration = TimeSpan.FromSeconds(3),
            RetryPeriod = TimeSpan.FromMilliseconds(200),
        };
        var leases = new ReplicaReportLeases(Client, Options.Create(options), TimeProvider.System, new RecordingLogger<ReplicaReportLeases>(logger));
        await leases.StartAsync(CancellationToken.None);
        leases.Publish("[{\"small\":1}]");
        await Eventually(() => Annotation(ReplicaReportLeases.LeaseNameOf("replica-a")) == "[{\"small\":1}]", "the small reports are written");
        return leases;
    }

    private string? Annotation(string name) =>
        Server.Get("coordination.k8s.io/v1", "Lease", "fsm-system", name)?["metadata"]?["annotations"]?[ReplicaReportLeases.ReportsAnnotation]?.ToString();

    private DateTime? RenewTime(string name) =>
        Server.Get("coordination.k8s.io/v1", "Lease", "fsm-system", name)?["spec"]?["renewTime"]?.ToString() is { } text
            ? DateTime.Parse(text, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AdjustToUniversal | System.Globalization.DateTimeStyles.AssumeUniversal)
            : null;

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
