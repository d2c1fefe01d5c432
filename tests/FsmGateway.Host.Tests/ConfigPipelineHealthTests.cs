using System.Net;
using System.Net.Http;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using FsmGateway.Configuration;
using FsmGateway.Host.Admin;
using FsmGateway.Host.Tests.Support;
using FsmGateway.Resources;
using FsmGateway.Transport;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Host.Tests;

/// <summary>
/// The config pipeline outlives whatever a source does, and the liveness probe tells the truth when it cannot: the
/// real gateway composition and admin endpoints in a web host on loopback, probed over real HTTP.
/// </summary>
public sealed class ConfigPipelineHealthTests
{
    private static ResourceSetBuilder EchoConfig(int port, int backendPort) => new ResourceSetBuilder("apps")
        .Gateway("gw", g => g.Address("127.0.0.1").Listener("tcp", port))
        .TcpRoute("route", r => r.Parent("gw").Backend("echo", 80))
        .Service("echo", 80, $"127.0.0.1:{backendPort}");

    private static async Task<(WebApplication App, HttpClient Admin)> StartAsync(params IConfigSource[] sources)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var gateway = builder.Services.AddFsmGateway(o => o.Debounce = TimeSpan.FromMilliseconds(20));
        foreach (var source in sources)
        {
            gateway.AddConfigSource(source);
        }

        var app = builder.Build();
        app.Run(AdminEndpoints.CreatePipeline(app.Services, metrics: false));
        await app.StartAsync();
        return (app, new HttpClient { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromSeconds(10) });
    }

    /// <summary>A source whose every subscription gets a subject of its own, as a source that reconnects does.</summary>
    private sealed class ReconnectingSource(string name) : IConfigSource
    {
        private readonly List<ReplaySubject<ConfigEvent>> _subscriptions = [];

        public string Name { get; } = name;

        public IObservable<ConfigEvent> Events => Observable.Defer(() =>
        {
            var subject = new ReplaySubject<ConfigEvent>();
            lock (_subscriptions)
            {
                _subscriptions.Add(subject);
            }

            return subject;
        });

        public int Subscriptions
        {
            get
            {
                lock (_subscriptions)
                {
                    return _subscriptions.Count;
                }
            }
        }

        public ReplaySubject<ConfigEvent> Current
        {
            get
            {
                lock (_subscriptions)
                {
                    return _subscriptions[^1];
                }
            }
        }
    }

    [Fact]
    public async Task SourceThatFaults_IsSubscribedAgain_AndItsNextConfigIsApplied_WhileHealthzStaysOk()
    {
        await using var backend = new EchoServer();
        var (first, second) = (Net.FreePort(), Net.FreePort());
        var source = new ReconnectingSource("api");
        var (app, admin) = await StartAsync(source);
        await using var _ = app;
        using var __ = admin;
        await Net.EventuallyAsync(() => Task.FromResult(source.Subscriptions == 1), "the source is subscribed");
        source.Current.OnNext(new ConfigEvent.SourceReset("api", [.. EchoConfig(first, backend.Port).Build()]));
        await Net.EventuallyAsync(async () => (await admin.GetAsync(new Uri("/readyz", UriKind.Relative))).IsSuccessStatusCode, "ready");

        source.Current.OnError(new HttpRequestException("the API server went away"));

        Assert.Equal("ok\n", await admin.GetStringAsync(new Uri("/healthz", UriKind.Relative)));
        Assert.Equal("still", await Net.EchoOnceAsync(first, "still"));
        await Net.EventuallyAsync(() => Task.FromResult(source.Subscriptions == 2), "the source is subscribed again", TimeSpan.FromSeconds(30));
        foreach (var resource in EchoConfig(second, backend.Port).Build())
        {
            source.Current.OnNext(new ConfigEvent.Upserted("api", resource));
        }

        source.Current.OnNext(new ConfigEvent.SourceSynced("api"));
        await Net.EventuallyAsync(async () => !await Net.IsRefusedAsync(second), "the config sent after the fault is applied");
        Assert.Equal("moved", await Net.EchoOnceAsync(second, "moved"));
        Assert.Equal("ok\n", await admin.GetStringAsync(new Uri("/healthz", UriKind.Relative)));
    }

    [Fact]
    public async Task PipelineThatEnds_FailsHealthzWith503AndTheReason()
    {
        // Two sources with one name: the pipeline cannot even start. The process keeps running (it may be serving),
        // so the liveness probe must fail for Kubernetes to restart it.
        using var one = new InMemoryConfigSource("same", []);
        using var other = new InMemoryConfigSource("same", []);
        var (app, admin) = await StartAsync(one, other);
        await using var _ = app;
        using var __ = admin;

        await Net.EventuallyAsync(
            async () => (await admin.GetAsync(new Uri("/healthz", UriKind.Relative))).StatusCode == HttpStatusCode.ServiceUnavailable,
            "/healthz fails");
        using var response = await admin.GetAsync(new Uri("/healthz", UriKind.Relative));
        var body = await response.Content.ReadAsStringAsync();
        Assert.Contains("config pipeline ended", body, StringComparison.Ordinal);
        Assert.Contains("'same'", body, StringComparison.Ordinal);
    }
}
