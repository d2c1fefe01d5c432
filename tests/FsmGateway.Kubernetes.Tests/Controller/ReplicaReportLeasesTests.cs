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
        var options = new KubernetesControllerOptions
        {
            Identity = "replica-a",
            LeaseNamespace = "fsm-system",
            LeaseDuration = TimeSpan.FromSeconds(3),
            RetryPeriod = TimeSpan.FromMilliseconds(200),
        };
        using var leases = new ReplicaReportLeases(Client, Options.Create(options), TimeProvider.System, new RecordingLogger<ReplicaReportLeases>(logger));
        await leases.StartAsync(CancellationToken.None);
        var name = ReplicaReportLeases.LeaseNameOf("replica-a");
        leases.Publish("[{\"small\":1}]");
        await Eventually(() => Annotation(name) == "[{\"small\":1}]", "the small reports are written");

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
