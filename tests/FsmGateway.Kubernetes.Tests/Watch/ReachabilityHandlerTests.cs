using System.Net;
using System.Net.Sockets;
using FsmGateway.Kubernetes.Api;
using k8s;

namespace FsmGateway.Kubernetes.Tests.Watch;

/// <summary>What the reachability handler counts: a blackholed API server is unreachable; the caller's own cancellation is not.</summary>
public sealed class ReachabilityHandlerTests
{
    [Fact]
    public async Task A_blackholed_API_server_whose_requests_time_out_counts_as_unreachable()
    {
        // Accepts connections (the kernel's backlog) and never answers.
        using var blackhole = new TcpListener(IPAddress.Loopback, 0);
        blackhole.Start();
        var reachability = new ApiServerReachability(TimeProvider.System);
        using var client = Client(blackhole, reachability, TimeSpan.FromMilliseconds(300));

        var failure = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.CoreV1.ListNamespaceAsync());

        Assert.IsType<TimeoutException>(failure.InnerException);
        Assert.NotNull(reachability.Outage);
        Assert.Contains("no response within", reachability.Outage!.Value.Failure, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_request_the_caller_cancels_does_not_count_as_unreachable()
    {
        using var blackhole = new TcpListener(IPAddress.Loopback, 0);
        blackhole.Start();
        var reachability = new ApiServerReachability(TimeProvider.System);
        using var client = Client(blackhole, reachability, TimeSpan.FromMinutes(5));
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.CoreV1.ListNamespaceAsync(cancellationToken: cancel.Token));

        Assert.Null(reachability.Outage);
    }

    private static k8s.Kubernetes Client(TcpListener blackhole, ApiServerReachability reachability, TimeSpan responseTimeout) =>
        new(
            new KubernetesClientConfiguration { Host = $"http://127.0.0.1:{((IPEndPoint)blackhole.LocalEndpoint).Port}" },
            new ReachabilityHandler(reachability, TimeProvider.System, responseTimeout));
}
