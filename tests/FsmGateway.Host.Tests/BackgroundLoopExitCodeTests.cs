using FsmGateway.Host.Cli;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Host.Tests;

/// <summary>How the process ends when one of its background loops ends without a shutdown being asked for.</summary>
public sealed class BackgroundLoopExitCodeTests
{
    [Fact]
    public async Task A_background_loop_cancelled_without_a_shutdown_request_exits_4_not_0()
    {
        using var error = new StringWriter();
        var settings = new ServeSettings("example.com/fsm-gateway", "127.0.0.1", 0, TimeSpan.FromSeconds(1), TimeSpan.Zero, TimeSpan.FromSeconds(5), LogLevel.Warning);

        var exit = await GatewayServer.RunAsync(
            "run",
            settings,
            _ => { },
            gateway => gateway.Services.AddHostedService<CancelsItself>(),
            error,
            CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(4, exit);
        Assert.Contains("CancelsItself failed, which stopped the process: it was cancelled", error.ToString(), StringComparison.Ordinal);
    }

    /// <summary>A loop that ends by a cancellation of its own (a timeout it took for shutdown), shortly after start.</summary>
    private sealed class CancelsItself : BackgroundService
    {
        protected override async Task ExecuteAsync(CancellationToken stoppingToken)
        {
            using var own = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
            await Task.Delay(Timeout.InfiniteTimeSpan, own.Token);
        }
    }
}
