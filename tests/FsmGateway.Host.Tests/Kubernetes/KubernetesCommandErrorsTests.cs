using FsmGateway.Host.Tests.Support;

namespace FsmGateway.Host.Tests.Kubernetes;

/// <summary>Mistakes on the <c>controller</c> and <c>gateway</c> command lines: a clear message naming the option, exit 1, nothing started.</summary>
public sealed class KubernetesCommandErrorsTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("fsm-cli-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string Kubeconfig(string text)
    {
        var path = Path.Combine(_dir.FullName, "kubeconfig");
        File.WriteAllText(path, text);
        return path;
    }

    private string ValidKubeconfig() => Kubeconfig("""
        apiVersion: v1
        kind: Config
        clusters: [{ name: c, cluster: { server: "http://127.0.0.1:1" } }]
        users: [{ name: u, user: { token: t } }]
        contexts: [{ name: x, context: { cluster: c, user: u } }]
        current-context: x
        """);

    private static async Task AssertFailsAsync(string message, params string[] args)
    {
        await using var process = GatewayProcess.Start(args);
        Assert.Equal(1, await process.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains(message, process.Output, StringComparison.Ordinal);
    }

    [Fact]
    public Task Controller_LeaseTimingsOutOfOrder_FailsNamingTheRule() =>
        AssertFailsAsync("leader election needs --lease-duration > --renew-deadline > --retry-period",
            "controller", "--kubeconfig", ValidKubeconfig(), "--admin-port", "0", "--lease-duration", "2s", "--renew-deadline", "5s");

    [Fact]
    public Task Controller_LeaseDurationNotADuration_FailsNamingTheOption() =>
        AssertFailsAsync("--lease-duration: 'soon' is not a duration",
            "controller", "--kubeconfig", ValidKubeconfig(), "--admin-port", "0", "--lease-duration", "soon");

    [Fact]
    public Task Controller_RetryPeriodZero_FailsNamingTheOption() =>
        AssertFailsAsync("--retry-period: '0s' is not a positive duration",
            "controller", "--kubeconfig", ValidKubeconfig(), "--admin-port", "0", "--retry-period", "0s");

    [Fact]
    public Task Controller_PreStopDelayNotADuration_FailsNamingTheOption() =>
        AssertFailsAsync("--data-plane-pre-stop-delay: 'later' is not a duration",
            "controller", "--kubeconfig", ValidKubeconfig(), "--admin-port", "0", "--data-plane-pre-stop-delay", "later");

    [Fact]
    public Task Controller_PreStopDelayOverFiveMinutes_FailsNamingTheLimit() =>
        AssertFailsAsync("DataPlanePreStopDelay must be between 0 and 5 min",
            "controller", "--kubeconfig", ValidKubeconfig(), "--admin-port", "0", "--image", "example.com/fsm-gateway:test", "--data-plane-pre-stop-delay", "10m");

    [Fact]
    public async Task Controller_StreamPortBusy_ExitsThreeNamingTheStreamPortNotTheAdminPort()
    {
        using var squatter = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        squatter.Start();
        var port = ((System.Net.IPEndPoint)squatter.LocalEndpoint).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);

        await using var process = GatewayProcess.Start(
            "controller", "--kubeconfig", ValidKubeconfig(), "--admin-port", "0", "--stream-insecure", "--stream-address", "127.0.0.1", "--stream-port", port);

        Assert.Equal(3, await process.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains($"cannot serve the config stream on 127.0.0.1:{port}", process.Output, StringComparison.Ordinal);
        Assert.Contains("(choose another with --stream-port)", process.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("admin endpoints", process.Output, StringComparison.Ordinal);
    }

    [Fact]
    public Task Gateway_NameWithoutNamespace_FailsNamingTheOption() =>
        AssertFailsAsync("--gateway 'simple-fsm-gateway' is not NAMESPACE/NAME",
            "gateway", "--gateway", "simple-fsm-gateway", "--kubeconfig", ValidKubeconfig(), "--admin-port", "0");

    [Fact]
    public Task Gateway_BrokenKubeconfig_FailsNamingTheFile() =>
        AssertFailsAsync("cannot load the Kubernetes client configuration from",
            "gateway", "--gateway", "a/b", "--kubeconfig", Kubeconfig("not: [valid"), "--admin-port", "0");
}
