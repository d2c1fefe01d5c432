using System.Net;
using System.Net.Sockets;
using FsmGateway.Host.Tests.Support;

namespace FsmGateway.Host.Tests;

/// <summary>
/// What a user sees when an option or the admin port is wrong: one line naming the option or port and the exit code
/// README promises; never a stack trace. Real processes.
/// </summary>
public sealed class StartupErrorsTests
{
    private static void AssertNoStackTrace(string output)
    {
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", output, StringComparison.Ordinal);
        Assert.DoesNotContain("--- End of", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("99999")]
    [InlineData("-1")]
    public async Task Run_AdminPortOutOfRange_ExitsOneNamingTheOption_WithoutAStackTrace(string port)
    {
        await using var gateway = GatewayProcess.Start("run", "--admin-port", port);

        Assert.Equal(1, await gateway.WaitForExitAsync());
        Assert.Contains($"--admin-port: {port} is not a port", gateway.Output, StringComparison.Ordinal);
        AssertNoStackTrace(gateway.Output);
    }

    [Fact]
    public async Task Run_AdminPortBusy_ExitsThreeWithOneMessageNamingThePort_WithoutAStackTrace()
    {
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var port = ((IPEndPoint)squatter.LocalEndpoint).Port;

        await using var gateway = GatewayProcess.Start("run", "--admin-port", port.ToString(System.Globalization.CultureInfo.InvariantCulture));

        Assert.Equal(3, await gateway.WaitForExitAsync());
        Assert.Contains($"cannot serve the admin endpoints on 127.0.0.1:{port}", gateway.Output, StringComparison.Ordinal);
        AssertNoStackTrace(gateway.Output);
        Assert.DoesNotContain("Exception", gateway.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_MetricsPortBusy_ExitsThreeNamingTheMetricsPortNotTheAdminPort()
    {
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var port = ((IPEndPoint)squatter.LocalEndpoint).Port;

        await using var gateway = GatewayProcess.Start("run", "--admin-port", "0", "--metrics-port", port.ToString(System.Globalization.CultureInfo.InvariantCulture));

        Assert.Equal(3, await gateway.WaitForExitAsync());
        Assert.Contains($"cannot serve the metrics endpoint on 127.0.0.1:{port}", gateway.Output, StringComparison.Ordinal);
        Assert.Contains("(choose another with --metrics-port)", gateway.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("admin endpoints", gateway.Output, StringComparison.Ordinal);
        AssertNoStackTrace(gateway.Output);
    }

    [Fact]
    public async Task Run_EmptyControllerName_ExitsOneNamingTheOption()
    {
        await using var gateway = GatewayProcess.Start("run", "--admin-port", "0", "--controller-name", " ");

        Assert.Equal(1, await gateway.WaitForExitAsync());
        Assert.Contains("--controller-name: must not be empty", gateway.Output, StringComparison.Ordinal);
        AssertNoStackTrace(gateway.Output);
    }
}
