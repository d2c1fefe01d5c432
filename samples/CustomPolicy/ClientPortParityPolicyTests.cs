using System.Net;
using System.Net.Sockets;
using System.Text;
using FsmGateway;
using FsmGateway.Configuration;
using FsmGateway.Transport;
using FsmGateway.Transport.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit;

namespace CustomPolicy;

public sealed class ClientPortParityPolicyTests
{
    [Fact]
    public async Task Gateway_WithThePolicyRegisteredThroughDI_SendsEachClientByItsPortParity()
    {
        using var low = new TcpListener(IPAddress.Loopback, 0);
        using var high = new TcpListener(IPAddress.Loopback, 0);
        low.Start();
        high.Start();
        var ports = new[] { Port(low), Port(high) }.Order().ToArray();
        using var stop = new CancellationTokenSource();
        var servers = new[] { Serve(low, stop.Token), Serve(high, stop.Token) };
        var gatewayPort = FreePort();

        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddFsmGateway()
            .LoadFromMemory(new ResourceSetBuilder()
                .Gateway("gw", g => g.Address("127.0.0.1").Listener("tcp", gatewayPort))
                .TcpRoute("route", r => r.Parent("gw").Backend("pair", 80))
                .Service("pair", 80, $"127.0.0.1:{ports[0]}", $"127.0.0.1:{ports[1]}")
                .Build())
            .AddLoadBalancingPolicy<ClientPortParityPolicy>()
            .ConfigureProxy(o => o.LoadBalancingPolicy = ClientPortParityPolicy.PolicyName);
        using var app = builder.Build();
        await app.StartAsync();
        var state = app.Services.GetRequiredService<GatewayRuntimeState>();
        for (var i = 0; i < 200 && !state.IsReady; i++)
        {
            await Task.Delay(50);
        }

        for (var i = 0; i < 20; i++)
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, gatewayPort);
            var clientPort = ((IPEndPoint)client.Client.LocalEndPoint!).Port;
            using var reader = new StreamReader(client.GetStream());

            var answeredBy = int.Parse(await reader.ReadToEndAsync(), System.Globalization.CultureInfo.InvariantCulture);

            Assert.Equal(ports[clientPort % 2], answeredBy);
        }

        await app.StopAsync();
        await stop.CancelAsync();
        low.Stop();
        high.Stop();
        await Task.WhenAll(servers.Select(s => s.ContinueWith(static _ => { }, TaskScheduler.Default)));
    }

    private static int Port(TcpListener listener) => ((IPEndPoint)listener.LocalEndpoint).Port;

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return Port(probe);
    }

    /// <summary>Answers every connection with the port it listens on.</summary>
    private static async Task Serve(TcpListener listener, CancellationToken cancellationToken)
    {
        var reply = Encoding.UTF8.GetBytes(Port(listener).ToString(System.Globalization.CultureInfo.InvariantCulture));
        while (!cancellationToken.IsCancellationRequested)
        {
            using var client = await listener.AcceptTcpClientAsync(cancellationToken);
            await client.GetStream().WriteAsync(reply, cancellationToken);
        }
    }
}
