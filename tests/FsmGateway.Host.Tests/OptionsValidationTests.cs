using FsmGateway.Configuration;
using FsmGateway.Kubernetes;
using FsmGateway.Transport;
using FsmGateway.Transport.Hosting;
using FsmGateway.Transport.Proxy;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FsmGateway.Host.Tests;

/// <summary>
/// Embedders get the command line's checks: out-of-range options fail the host's start with every bad option named,
/// before a socket is bound (IValidateOptions + ValidateOnStart), through the real DI composition and generic host.
/// </summary>
public sealed class OptionsValidationTests
{
    private static async Task<OptionsValidationException> StartFailsAsync(Action<IFsmGatewayBuilder> configure, Action<FsmGatewayOptions>? options = null)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        var gateway = builder.Services.AddFsmGateway(options).LoadFromMemory([]);
        configure(gateway);
        using var host = builder.Build();
        return await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
    }

    [Fact]
    public async Task ProxyOptions_ZeroBufferSize_FailsTheStartNamingTheOption()
    {
        // A zero-byte buffer used to close every connection without relaying a byte.
        var error = await StartFailsAsync(g => g.ConfigureProxy(o => o.BufferSize = 0));

        Assert.Contains(error.Failures, f => f.Contains("ProxyOptions.BufferSize", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ProxyOptions_EveryBadValue_IsNamed()
    {
        var error = await StartFailsAsync(g => g.ConfigureProxy(o =>
        {
            o.ConnectTimeout = TimeSpan.Zero;
            o.ConnectAttempts = 0;
            o.IdleTimeout = TimeSpan.Zero;
            o.DrainTimeout = TimeSpan.FromSeconds(-1);
        }));

        foreach (var option in new[] { "ConnectTimeout", "ConnectAttempts", "IdleTimeout", "DrainTimeout" })
        {
            Assert.Contains(error.Failures, f => f.Contains($"ProxyOptions.{option}", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void GatewayProxy_BuiltByHandWithZeroBufferSize_IsRefused()
    {
        var error = Assert.Throws<OptionsValidationException>(() => GatewayProxy.CreateDefault(new ProxyOptions { BufferSize = 0 }));

        Assert.Contains("ProxyOptions.BufferSize", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FsmGatewayOptions_MaxDelayBelowDebounce_FailsTheStart()
    {
        var error = await StartFailsAsync(_ => { }, o =>
        {
            o.Debounce = TimeSpan.FromSeconds(2);
            o.MaxDelay = TimeSpan.FromSeconds(1);
        });

        Assert.Contains(error.Failures, f => f.Contains("FsmGatewayOptions.MaxDelay", StringComparison.Ordinal));
    }

    [Fact]
    public async Task KubernetesControllerOptions_RenewDeadlineNotBelowLease_FailsTheStart()
    {
        var error = await StartFailsAsync(g => g.AddKubernetes(k => k.ClientConfiguration = new k8s.KubernetesClientConfiguration { Host = "http://127.0.0.1:1" }).AddKubernetesController(o =>
        {
            o.LeaseDuration = TimeSpan.FromSeconds(10);
            o.RenewDeadline = TimeSpan.FromSeconds(10);
            o.RetryPeriod = TimeSpan.FromSeconds(2);
        }));

        Assert.Contains(error.Failures, f => f.Contains("LeaseDuration", StringComparison.Ordinal) && f.Contains("RenewDeadline", StringComparison.Ordinal));
    }

    [Fact]
    public async Task KubernetesOptions_ZeroPageSize_FailsTheStart()
    {
        var error = await StartFailsAsync(g => g.AddKubernetes(o =>
        {
            o.ClientConfiguration = new k8s.KubernetesClientConfiguration { Host = "http://127.0.0.1:1" };
            o.PageSize = 0;
        }));

        Assert.Contains(error.Failures, f => f.Contains("KubernetesOptions.PageSize", StringComparison.Ordinal));
    }
}
