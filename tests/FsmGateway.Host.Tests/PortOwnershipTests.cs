using System.Globalization;
using System.Net.Http;
using FsmGateway.Host.Tests.Support;

namespace FsmGateway.Host.Tests;

/// <summary>
/// A listener port belongs to one gateway process: a second <c>fsm-gateway run</c> on the same port must not share it
/// (the kernel would split connections between the two), yet a restarted gateway must bind again at once, over its
/// predecessor's connections in TIME_WAIT. Real processes, real ports.
/// </summary>
public sealed class PortOwnershipTests : IDisposable
{
    private readonly DirectoryInfo _config = Directory.CreateTempSubdirectory("fsm-ports-");

    public void Dispose() => _config.Delete(recursive: true);

    private void Write(string file, string text)
    {
        var temp = Path.Combine(_config.FullName, "." + file + ".tmp");
        File.WriteAllText(temp, text);
        File.Move(temp, Path.Combine(_config.FullName, file), overwrite: true);
    }

    private GatewayProcess StartGateway(string folder) =>
        GatewayProcess.Start("run", "--config", folder, "--admin-port", "0", "--drain-timeout", "2s");

    [Fact]
    public async Task Run_SecondGatewayOnTheSamePort_ExitsThreeNamingThePort_AndTheFirstKeepsEveryConnection()
    {
        await using var backend = new BannerServer("first");
        var port = Net.FreePort();
        Write("gateway.yaml", Manifests.Gateway(("tcp", port)));
        Write("route.yaml", Manifests.RouteAndBackend(backend.Port));
        await using var first = StartGateway(_config.FullName);
        await first.WaitUntilReadyAsync();

        await using var second = StartGateway(_config.FullName);

        Assert.Equal(3, await second.WaitForExitAsync());
        Assert.Contains($"port {port}: address already in use", second.Output, StringComparison.Ordinal);
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal("first", await BannerServer.ReadBannerAsync(port));
        }
    }

    [Fact]
    public async Task Run_SecondGatewaySharingOnePort_ServesItsOtherPort_AndReportsThePortUnavailable()
    {
        await using var backend = new BannerServer("backend");
        var (shared, own) = (Net.FreePort(), Net.FreePort());
        Write("gateway.yaml", Manifests.Gateway(("shared", shared)));
        Write("route.yaml", Manifests.RouteAndBackend(backend.Port));
        await using var first = StartGateway(_config.FullName);
        await first.WaitUntilReadyAsync();
        var secondConfig = _config.CreateSubdirectory("second");
        File.WriteAllText(Path.Combine(secondConfig.FullName, "gateway.yaml"), Manifests.Gateway(("shared", shared), ("own", own)));
        File.WriteAllText(Path.Combine(secondConfig.FullName, "route.yaml"), Manifests.RouteAndBackend(backend.Port));

        await using var second = StartGateway(secondConfig.FullName);
        await second.WaitUntilReadyAsync();

        Assert.Equal("backend", await BannerServer.ReadBannerAsync(own));
        Assert.Contains($"port {shared}", second.Output, StringComparison.Ordinal);
        Assert.Contains("address already in use", second.Output, StringComparison.Ordinal);
        Assert.DoesNotContain($"Listening on 127.0.0.1:{shared}", second.Output, StringComparison.Ordinal);
        using var http = new HttpClient { BaseAddress = second.AdminUri, Timeout = TimeSpan.FromSeconds(10) };
        var status = await http.GetStringAsync(new Uri("/status", UriKind.Relative));
        Assert.Contains("\"reason\": \"PortUnavailable\"", status, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_RestartedRightAfterClosingConnections_BindsTheSamePortAgain()
    {
        await using var backend = new BannerServer("backend");
        var port = Net.FreePort();
        Write("gateway.yaml", Manifests.Gateway(("tcp", port)));
        Write("route.yaml", Manifests.RouteAndBackend(backend.Port));
        await using (var before = StartGateway(_config.FullName))
        {
            await before.WaitUntilReadyAsync();

            // The backend closes first, so the gateway closes its client side first: those sockets sit in TIME_WAIT
            // on the listener's port, which is what an exclusive bind without SO_REUSEADDR would trip over.
            for (var i = 0; i < 5; i++)
            {
                Assert.Equal("backend", await BannerServer.ReadBannerAsync(port));
            }

            Assert.Equal(0, await before.TerminateAsync());
        }

        if (OperatingSystem.IsLinux())
        {
            Assert.True(HasTimeWaitOn(port), $"expected connections in TIME_WAIT on port {port} for the test to mean anything");
        }

        await using var after = StartGateway(_config.FullName);
        await after.WaitUntilReadyAsync();

        Assert.Equal("backend", await BannerServer.ReadBannerAsync(port));
    }

    /// <summary>Whether /proc/net/tcp lists a connection in TIME_WAIT (state 06) with local port <paramref name="port"/>.</summary>
    private static bool HasTimeWaitOn(int port)
    {
        var local = ":" + port.ToString("X4", CultureInfo.InvariantCulture);
        return File.ReadLines("/proc/net/tcp").Skip(1)
            .Select(static line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Any(fields => fields[1].EndsWith(local, StringComparison.Ordinal) && fields[3] == "06");
    }
}
