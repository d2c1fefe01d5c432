using System.Net;
using FsmGateway.Configuration;
using FsmGateway.Host.Admin;
using FsmGateway.Host.Tests.Support;
using FsmGateway.Resources;
using FsmGateway.Transport;
using FsmGateway.Transport.Connections;
using FsmGateway.Transport.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FsmGateway.Host.Tests;

/// <summary>
/// The process mode is one value (<see cref="GatewayMode"/>): a controller compiles and answers <c>/status</c> but
/// builds no proxy (nothing that could bind a socket is even constructed) and lists no endpoints in its table; standalone builds one and binds; a data
/// plane must name its Gateway.
/// </summary>
public sealed class GatewayModeTests
{
    [Fact]
    public async Task Controller_BuildsNoProxy_AndStatusStillAnswers()
    {
        var factories = 0;
        await using var app = await StartAsync(GatewayMode.Controller, () => Interlocked.Increment(ref factories));
        using var admin = new HttpClient { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromSeconds(10) };

        await Net.EventuallyAsync(async () => (await admin.GetAsync("/status")).StatusCode == HttpStatusCode.OK, "/status answers with the compiled config");
        var status = await admin.GetStringAsync("/status");

        Assert.Contains("\"gw\"", status, StringComparison.Ordinal);
        Assert.Equal(0, Volatile.Read(ref factories));

        // A controller's table lists no endpoints (its data planes serve, from their own compiles); it says the backend has one.
        Assert.Contains("\"readyEndpointsOmitted\": true", status, StringComparison.Ordinal);
        Assert.DoesNotContain("127.0.0.1:9", status, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Standalone_BuildsTheProxy()
    {
        var factories = 0;
        await using var app = await StartAsync(GatewayMode.Standalone, () => Interlocked.Increment(ref factories));
        using var admin = new HttpClient { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromSeconds(10) };

        await Net.EventuallyAsync(async () => (await admin.GetAsync("/status")).StatusCode == HttpStatusCode.OK, "/status answers with the compiled config");
        var status = await admin.GetStringAsync("/status");

        Assert.Equal(1, Volatile.Read(ref factories));
        Assert.Contains("\"127.0.0.1:9\"", status, StringComparison.Ordinal);
        Assert.DoesNotContain("readyEndpointsOmitted", status, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DataPlaneWithoutItsGateway_FailsAtStart_NamingTheOption()
    {
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => StartAsync(GatewayMode.DataPlane, () => 0));

        Assert.Contains("FsmGatewayOptions.ServedGateway is required in mode DataPlane", e.Message, StringComparison.Ordinal);
    }

    private static async Task<WebApplication> StartAsync(GatewayMode mode, Func<int> onFactoryBuilt)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.Services
            .AddFsmGateway(o =>
            {
                o.Mode = mode;
                o.Debounce = TimeSpan.FromMilliseconds(20);
            })
            .LoadFromMemory(new ResourceSetBuilder("apps")
                .Gateway("gw", g => g.Address("127.0.0.1").Listener("tcp", Net.FreePort()))
                .TcpRoute("route", r => r.Parent("gw").Backend("echo", 80))
                .Service("echo", 80, "127.0.0.1:9")
                .Build());
        builder.Services.Replace(ServiceDescriptor.Singleton<IListenerFactory>(_ =>
        {
            onFactoryBuilt();
            return new NoListeners();
        }));
        var app = builder.Build();
        app.Run(AdminEndpoints.CreatePipeline(app.Services, metrics: false));
        try
        {
            await app.StartAsync();
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }

        return app;
    }

    /// <summary>A listener factory that binds nothing: every bind fails as a port in use would.</summary>
    private sealed class NoListeners : IListenerFactory
    {
        public ValueTask<IConnectionListener> BindAsync(EndPoint endPoint, CancellationToken cancellationToken) =>
            throw new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.AddressAlreadyInUse);
    }
}
