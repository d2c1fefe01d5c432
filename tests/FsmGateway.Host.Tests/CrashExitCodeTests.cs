using FsmGateway.Host.Cli;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Host.Tests;

/// <summary>A process stopped by a failure never reports success: supervisors restart on a non-zero exit code only.</summary>
public sealed class CrashExitCodeTests
{
    [Fact]
    public async Task A_background_service_that_fails_stops_the_process_with_exit_code_4_not_0()
    {
        var settings = new ServeSettings("flomesh.io/gateway-controller", "127.0.0.1", 0, TimeSpan.FromSeconds(1), TimeSpan.Zero, TimeSpan.FromSeconds(5), LogLevel.None);
        using var error = new StringWriter();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        var code = await GatewayServer.RunAsync("controller", settings, _ => { }, gateway => gateway.Services.AddHostedService<FailingService>(), error, timeout.Token);

        Assert.Equal(ExitCodes.Crashed, code);
        Assert.Contains("controller: FailingService failed, which stopped the process: InvalidOperationException: the loop broke", error.ToString(), StringComparison.Ordinal);
    }

    private sealed class FailingService : BackgroundService
    {
        protected override async Task ExecuteAsync(CancellationToken stoppingToken)
        {
            await Task.Delay(100, stoppingToken);
            throw new InvalidOperationException("the loop broke");
        }
    }
}
