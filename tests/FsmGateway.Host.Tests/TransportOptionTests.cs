using FsmGateway.Host.Tests.Support;

namespace FsmGateway.Host.Tests;

/// <summary><c>--transport</c> and <c>--listener-shards</c> on the real process: each transport serves; bad values exit 1 naming the option.</summary>
public sealed class TransportOptionTests : IDisposable
{
    private readonly DirectoryInfo _config = Directory.CreateTempSubdirectory("fsm-transport-");

    public void Dispose() => _config.Delete(recursive: true);

    [Theory]
    [InlineData("sockets")]
    [InlineData("linux", "--listener-shards", "2")]
    [InlineData("auto")]
    public async Task Run_EachTransport_ServesTheRoute(string transport, params string[] more)
    {
        await using var backend = new BannerServer("served");
        var port = Net.FreePort();
        File.WriteAllText(Path.Combine(_config.FullName, "gateway.yaml"), Manifests.Gateway(("tcp", port)));
        File.WriteAllText(Path.Combine(_config.FullName, "route.yaml"), Manifests.RouteAndBackend(backend.Port));
        await using var gateway = GatewayProcess.Start(["run", "--config", _config.FullName, "--admin-port", "0", "--transport", transport, .. more]);
        await gateway.WaitUntilReadyAsync();

        for (var i = 0; i < 10; i++)
        {
            Assert.Equal("served", await BannerServer.ReadBannerAsync(port));
        }
    }

    [Theory]
    [InlineData("--transport", "epoll", "--transport: 'epoll' is not a transport (auto, sockets or linux)")]
    [InlineData("--listener-shards", "0", "--listener-shards: 0 is out of range (1 to 1024)")]
    public async Task Run_BadTransportOption_ExitsOneNamingTheOption(string option, string value, string error)
    {
        await using var gateway = GatewayProcess.Start("run", "--admin-port", "0", option, value);
        Assert.Equal(1, await gateway.WaitForExitAsync());
        Assert.Contains(error, gateway.Output, StringComparison.Ordinal);
    }
}
