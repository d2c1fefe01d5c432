using FsmGateway.Configuration;
using FsmGateway.Host.Gateway;
using FsmGateway.Host.Tests.Support;
using FsmGateway.Status;
using FsmGateway.Transport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Host.Tests;

/// <summary>
/// Log lines tell the truth without leaking internals or being forged: at Information and above an exception is its
/// type and message (the trace is at Debug), and input text (object names) is escaped. The real composition and host.
/// </summary>
public sealed class LogHygieneTests
{
    private sealed class ThrowingSink : IStatusSink
    {
        public ValueTask PublishAsync(StatusSet statuses, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("the status store is gone");
    }

    private static async Task<(IHost Host, RecordingLoggerProvider Logs)> StartAsync(Action<IFsmGatewayBuilder> configure)
    {
        var logs = new RecordingLoggerProvider();
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Trace);
        builder.Logging.AddProvider(logs);
        configure(builder.Services.AddFsmGateway());
        var host = builder.Build();
        await host.StartAsync();
        return (host, logs);
    }

    [Fact]
    public async Task FailingStatusSink_IsLoggedWithTypeAndMessage_AndItsTraceOnlyAtDebug()
    {
        var (host, logs) = await StartAsync(g => g.LoadFromMemory([]).AddStatusSink<ThrowingSink>());
        using var _ = host;

        await Net.EventuallyAsync(
            () => Task.FromResult(logs.Entries.Any(e => e.Level == LogLevel.Error && e.Message.Contains("ThrowingSink", StringComparison.Ordinal))),
            "the sink's failure is logged");
        await host.StopAsync();

        var error = logs.Entries.First(e => e.Level == LogLevel.Error && e.Message.Contains("ThrowingSink", StringComparison.Ordinal));
        Assert.Contains("InvalidOperationException: the status store is gone", error.Message, StringComparison.Ordinal);
        Assert.All(logs.Entries.Where(e => e.Level >= LogLevel.Information), e => Assert.Null(e.Exception));
        Assert.Contains(logs.Entries, e => e.Level == LogLevel.Debug && e.Exception is InvalidOperationException);
    }

    [Fact]
    public async Task FaultingSource_IsLoggedWithTypeAndMessage_AndItsTraceOnlyAtDebug()
    {
        var source = new FaultingSource();
        var (host, logs) = await StartAsync(g => g.AddConfigSource(source));
        using var _ = host;

        await Net.EventuallyAsync(
            () => Task.FromResult(logs.Entries.Any(e => e.Level == LogLevel.Error && e.Message.Contains("Config source faulty failed", StringComparison.Ordinal))),
            "the source's fault is logged");
        await host.StopAsync();

        var error = logs.Entries.First(e => e.Message.Contains("Config source faulty failed", StringComparison.Ordinal));
        Assert.Contains("IOException: disk gone", error.Message, StringComparison.Ordinal);
        Assert.All(logs.Entries.Where(e => e.Level >= LogLevel.Information), e => Assert.Null(e.Exception));
        Assert.Contains(logs.Entries, e => e.Level == LogLevel.Debug && e.Exception is IOException);
    }

    [Fact]
    public async Task ObjectNameWithANewline_CannotForgeAStatusLine()
    {
        var logs = new RecordingLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs));
        var sink = new LogStatusSink(factory.CreateLogger<LogStatusSink>());
        var gateway = new ResourceSetBuilder("apps").Gateway("gw\n12:00:00.000 info: forged line", g => g.Address("127.0.0.1").Listener("tcp", 1)).Build();
        var result = Routing.RouteCompiler.Compile(ConfigSnapshot.From(gateway), new Routing.CompilerOptions(), Routing.ListenerBindings.AssumeAllBound);

        await sink.PublishAsync(result.Statuses, CancellationToken.None);

        var line = Assert.Single(logs.Entries, e => e.Message.Contains("forged line", StringComparison.Ordinal));
        Assert.DoesNotContain('\n', line.Message);
        Assert.Contains("gw\\n12:00:00.000", line.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task File_mode_logs_each_policy_status_per_ancestor_with_the_reason_and_message_when_it_is_refused()
    {
        var logs = new RecordingLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs));
        var sink = new LogStatusSink(factory.CreateLogger<LogStatusSink>());
        var resources = new ResourceSetBuilder("apps")
            .Gateway("gw", g => g.Listener("tcp", 8000))
            .TcpRoute("route", r => r.Parent("gw").Backend("echo", 9000))
            .Service("echo", 9000, "127.0.0.1:9001")
            .Add(new Resources.BackendTrafficPolicy(new Resources.ObjectMeta("apps", "slow"), [new Resources.PolicyTargetReference(Resources.GatewayApi.Group, "TCPRoute", "route")]) { ConnectTimeout = TimeSpan.Zero })
            .Build();
        var result = Routing.RouteCompiler.Compile(ConfigSnapshot.From(resources), new Routing.CompilerOptions(), Routing.ListenerBindings.AssumeAllBound);

        await sink.PublishAsync(result.Statuses, CancellationToken.None);

        var line = Assert.Single(logs.Entries, e => e.Message.StartsWith("Status of BackendTrafficPolicy apps/slow", StringComparison.Ordinal));
        Assert.Equal("Status of BackendTrafficPolicy apps/slow: ancestor Gateway apps/gw: Accepted=False/Invalid (spec.timeout.tcp.connectTimeout: must be more than 0s)", line.Message);
    }

    private sealed class FaultingSource : IConfigSource
    {
        public string Name => "faulty";

        public IObservable<ConfigEvent> Events => System.Reactive.Linq.Observable.Throw<ConfigEvent>(new IOException("disk gone"));
    }
}
