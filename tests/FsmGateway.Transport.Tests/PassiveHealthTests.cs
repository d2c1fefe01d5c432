using System.Globalization;
using FsmGateway.Routing;
using FsmGateway.Transport.LoadBalancing;
using FsmGateway.Transport.Proxy;
using FsmGateway.Transport.Sockets;
using FsmGateway.Transport.Tests.TestSupport;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace FsmGateway.Transport.Tests;

/// <summary>
/// Passive health, on with nothing configured: an endpoint whose connect fails is ejected and new connections skip it
/// until the ejection ends; failover never moves the next connection onto the endpoint that failed; endpoint state
/// survives routing-table updates; panic mode; per-endpoint metrics. Real sockets on 127.0.0.1 (a port nothing listens
/// on refuses), the proxy's clock a <see cref="FakeTimeProvider"/> so that ejections end when the test says.
/// </summary>
public sealed class PassiveHealthTests
{
    private readonly FakeTimeProvider _time = new();
    private readonly RecordingConnector _connector = new();

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task RefusingEndpoint_AfterItsFirstFailedConnect_IsNotTriedAgainUntilItsEjectionEnds()
    {
        await using var alive = TestBackend.Echo();
        var (port, deadPort) = TwoPorts();
        await using var proxy = await StartAsync(Routes.Table(Routes.Listener(port, Routes.Backend(Name(port), 1, Endpoint(deadPort), alive.Endpoint))));

        await EchoAsync(port, 20);
        Assert.Equal(1, _connector.Attempts(deadPort));
        Assert.Equal(20, alive.Accepted);

        // The first ejection (5 s) ends: one connection tries the endpoint again, which ejects it for twice as long.
        _time.Advance(TimeSpan.FromSeconds(5));
        await EchoAsync(port, 10);
        Assert.Equal(2, _connector.Attempts(deadPort));
        _time.Advance(TimeSpan.FromSeconds(5));
        await EchoAsync(port, 10);
        Assert.Equal(2, _connector.Attempts(deadPort));
        _time.Advance(TimeSpan.FromSeconds(5));
        await EchoAsync(port, 10);
        Assert.Equal(3, _connector.Attempts(deadPort));
        Assert.Equal(50, alive.Accepted);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task EjectedEndpoint_ThatComesBack_ServesItsShareOnceTheEjectionEnds()
    {
        await using var alive = TestBackend.Echo();
        var (port, deadPort) = TwoPorts();
        await using var proxy = await StartAsync(Routes.Table(Routes.Listener(port, Routes.Backend(Name(port), 1, Endpoint(deadPort), alive.Endpoint))));
        await EchoAsync(port, 4);
        Assert.Equal(1, _connector.Attempts(deadPort));

        // Up again, but still ejected: skipped until the ejection ends, then round robin gives it every other connection.
        await using var revived = TestBackend.Echo(deadPort);
        await EchoAsync(port, 10);
        Assert.Equal(0, revived.Accepted);
        _time.Advance(TimeSpan.FromSeconds(5));
        await EchoAsync(port, 10);
        Assert.Equal(5, revived.Accepted);
        Assert.Equal(4 + 10 + 5, alive.Accepted);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task TimedOutEndpoint_IsEjected_LaterConnectionsGoStraightToTheOther()
    {
        await using var alive = TestBackend.Echo();
        var port = FreePort.Get();
        // Port 1 sorts first, so the very first connection picks it; the connector holds it until the timeout.
        _connector.Blackholed[1] = 0;
        await using var proxy = await StartAsync(Routes.Table(Routes.Listener(port, Routes.Backend(Name(port), 1, Endpoint(1), alive.Endpoint))));

        using var deadline = Guard.Deadline(30);
        using var first = await TestClient.ConnectAsync(port, deadline.Token);
        Assert.True(await Guard.Eventually(() => _connector.Hanging == 1), "the first connection's connect did not start on the blackholed endpoint");
        _time.Advance(TimeSpan.FromSeconds(5));
        await first.AssertEchoesAsync("served after the connect timeout");

        // Without ejection, every other connection would wait the whole connect timeout (and here, forever).
        await EchoAsync(port, 10);
        Assert.Equal(1, _connector.Attempts(1));
        Assert.Equal(11, alive.Accepted);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Failover_WithPassiveHealthOff_TheNextConnectionDoesNotStartOnTheEndpointThatFailed()
    {
        await using var alive = TestBackend.Echo();
        var port = FreePort.Get();
        _connector.Blackholed[1] = 0;
        await using var proxy = await StartAsync(
            Routes.Table(Routes.Listener(port, Routes.Backend(Name(port), 1, Endpoint(1), alive.Endpoint))),
            new ProxyOptions { PassiveHealthConsecutiveFailures = 0 });

        using var deadline = Guard.Deadline(30);
        using var first = await TestClient.ConnectAsync(port, deadline.Token);
        Assert.True(await Guard.Eventually(() => _connector.Hanging == 1), "the first connection's connect did not start on the blackholed endpoint");
        _time.Advance(TimeSpan.FromSeconds(5));
        await first.AssertEchoesAsync("served after the connect timeout");

        // The failover did not advance the shared round-robin counter: the next connection starts on the good endpoint.
        using var second = await TestClient.ConnectAsync(port, deadline.Token);
        await second.AssertEchoesAsync("served at once");
        Assert.Equal(1, _connector.Attempts(1));

        // Passive health is off, so the connection after that tries the blackholed endpoint again.
        using var third = await TestClient.ConnectAsync(port, deadline.Token);
        Assert.True(await Guard.Eventually(() => _connector.Hanging == 1), "passive health is off, yet the endpoint was skipped");
        _time.Advance(TimeSpan.FromSeconds(5));
        await third.AssertEchoesAsync("served after the second timeout");
        Assert.Equal(2, _connector.Attempts(1));
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task EndpointState_SurvivesARoutingTableThatKeepsTheEndpoint()
    {
        await using var alive = TestBackend.Echo();
        await using var added = TestBackend.Echo();
        var (port, deadPort) = TwoPorts();
        var name = Name(port);
        await using var proxy = await StartAsync(Routes.Table(Routes.Listener(port, Routes.Backend(name, 1, Endpoint(deadPort), alive.Endpoint))));
        await EchoAsync(port, 4);
        Assert.Equal(1, _connector.Attempts(deadPort));

        // A new endpoint: a new route model for the listener, with the dead endpoint's ejection carried over.
        await proxy.ApplyAsync(Routes.Table(Routes.Listener(port, Routes.Backend(name, 1, Endpoint(deadPort), alive.Endpoint, added.Endpoint))), CancellationToken.None);
        await EchoAsync(port, 10);
        Assert.Equal(1, _connector.Attempts(deadPort));
        Assert.Equal(5, added.Accepted);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task EndpointRemovedAndAddedAgain_StartsAfresh()
    {
        await using var alive = TestBackend.Echo();
        var (port, deadPort) = TwoPorts();
        var name = Name(port);
        var withDead = Routes.Table(Routes.Listener(port, Routes.Backend(name, 1, Endpoint(deadPort), alive.Endpoint)));
        await using var proxy = await StartAsync(withDead);
        await EchoAsync(port, 4);
        Assert.Equal(1, _connector.Attempts(deadPort));

        await proxy.ApplyAsync(Routes.Table(Routes.Listener(port, Routes.Backend(name, 1, alive.Endpoint))), CancellationToken.None);
        await proxy.ApplyAsync(withDead, CancellationToken.None);

        // Its ejection has not ended, but the endpoint came back as a new one: tried at once.
        await EchoAsync(port, 2);
        Assert.Equal(2, _connector.Attempts(deadPort));
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task EveryEndpointEjected_PanicMode_TriesThemAll_AndOneThatAnswersIsBackAtOnce()
    {
        var ports = FreePort.Get(3);
        var (port, deadA, deadB) = (ports[0], ports[1], ports[2]);
        var name = Name(port);
        using var metrics = new MetricRecorder(name);
        await using var proxy = await StartAsync(Routes.Table(Routes.Listener(port, Routes.Backend(name, 1, Endpoint(deadA), Endpoint(deadB)))));
        using var deadline = Guard.Deadline(30);

        // Both refuse: both tried, both ejected, the client closed.
        Assert.True((await TestClient.ConnectAndReadToEndAsync(port, deadline.Token)).ClosedWithoutData);
        Assert.Equal((1, 1), (_connector.Attempts(deadA), _connector.Attempts(deadB)));
        Assert.Equal(2, metrics.Sum("fsmgateway.backend.ejections"));

        // Every endpoint ejected: panic mode tries them all rather than refuse the client unheard.
        Assert.True((await TestClient.ConnectAndReadToEndAsync(port, deadline.Token)).ClosedWithoutData);
        Assert.Equal((2, 2), (_connector.Attempts(deadA), _connector.Attempts(deadB)));
        Assert.Equal(2, metrics.Sum("fsmgateway.backend.ejections"));

        // One comes up: served in panic mode, and back in service at once, so the other is skipped again.
        await using var revived = TestBackend.Echo(deadB);
        await EchoAsync(port, 1);
        await EchoAsync(port, 6);
        Assert.Equal(7, revived.Accepted);
        Assert.InRange(_connector.Attempts(deadA), 2, 3);
        var triedA = _connector.Attempts(deadA);
        await EchoAsync(port, 6);
        Assert.Equal(triedA, _connector.Attempts(deadA));
        Assert.Equal(2, metrics.Sum("fsmgateway.backend.panic_connections"));
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task EndpointMetrics_On_ReportEachEndpointsConnectionsHealthAndEjections()
    {
        await using var alive = TestBackend.Echo();
        var (port, deadPort) = TwoPorts();
        var name = Name(port);
        using var metrics = new MetricRecorder(name);
        await using var proxy = await StartAsync(
            Routes.Table(Routes.Listener(port, Routes.Backend(name, 1, Endpoint(deadPort), alive.Endpoint))),
            new ProxyOptions { EndpointMetrics = true });
        var (dead, good) = ($"127.0.0.1:{deadPort}", $"127.0.0.1:{alive.Port}");

        // Before any traffic: both endpoints, healthy, idle.
        var before = metrics.Observe();
        Assert.Equal(1, before[("fsmgateway.endpoint.healthy", dead)]);
        Assert.Equal(1, before[("fsmgateway.endpoint.healthy", good)]);
        Assert.Equal(0, before[("fsmgateway.endpoint.connections.active", good)]);

        using var deadline = Guard.Deadline(30);
        var clients = new List<System.Net.Sockets.Socket>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var client = await TestClient.ConnectAsync(port, deadline.Token);
                clients.Add(client);
                await client.AssertEchoesAsync();
            }

            var open = metrics.Observe();
            Assert.Equal(3, open[("fsmgateway.endpoint.connections.active", good)]);
            Assert.Equal(0, open[("fsmgateway.endpoint.connections.active", dead)]);
            Assert.Equal(1, open[("fsmgateway.endpoint.healthy", good)]);
            Assert.Equal(0, open[("fsmgateway.endpoint.healthy", dead)]);
            Assert.Equal(1, open[("fsmgateway.endpoint.ejections", dead)]);
            Assert.Equal(0, open[("fsmgateway.endpoint.ejections", good)]);
            Assert.Equal(6, open.Count);
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }

        Assert.True(await Guard.Eventually(() => metrics.Observe()[("fsmgateway.endpoint.connections.active", good)] == 0), "the closed connections still count as open");
        _time.Advance(TimeSpan.FromSeconds(5));
        var after = metrics.Observe();
        Assert.Equal(1, after[("fsmgateway.endpoint.healthy", dead)]);
        Assert.Equal(1, after[("fsmgateway.endpoint.ejections", dead)]);

        // An endpoint no route lists any more leaves the metrics.
        await proxy.ApplyAsync(Routes.Table(Routes.Listener(port, Routes.Backend(name, 1, alive.Endpoint))), CancellationToken.None);
        Assert.Equal([good], metrics.Observe().Keys.Select(static k => k.Endpoint).Distinct());
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task EndpointMetrics_OffByDefault_NoPerEndpointSeries()
    {
        await using var alive = TestBackend.Echo();
        var (port, deadPort) = TwoPorts();
        var name = Name(port);
        using var metrics = new MetricRecorder(name);
        await using var proxy = await StartAsync(Routes.Table(Routes.Listener(port, Routes.Backend(name, 1, Endpoint(deadPort), alive.Endpoint))));
        await EchoAsync(port, 3);

        Assert.Empty(metrics.Observe());
        Assert.Equal(1, metrics.Sum("fsmgateway.backend.ejections"));
    }

    [Fact]
    public void Ejection_LastsLongerEachTimeInARow_UpToTheMaximum_AndASuccessStartsOver()
    {
        var backend = new BackendHealth(new BackendKey("test", "svc", 8080));
        var state = new EndpointState(new EndpointKey(backend.Key, Endpoint(8080)), backend, _time);
        var settings = new PassiveHealthSettings(ConsecutiveFailures: 2, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(12));

        var lengths = new List<TimeSpan?>();
        for (var i = 0; i < 4; i++)
        {
            Assert.Null(state.Failed(settings));
            lengths.Add(state.Failed(settings));
            Assert.True(state.IsEjected());
            Assert.Null(state.Failed(settings)); // a connect that started before the ejection: no effect
            _time.Advance(lengths[^1]!.Value);
            Assert.False(state.IsEjected());
        }

        Assert.Equal([TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(12), TimeSpan.FromSeconds(12)], lengths);
        Assert.Equal(4, state.Ejections);
        Assert.Equal(12, state.Failures);

        state.Succeeded();
        Assert.Null(state.Failed(settings));
        Assert.Equal(TimeSpan.FromSeconds(5), state.Failed(settings));

        // Absurd settings saturate instead of overflowing into the past.
        var forever = new PassiveHealthSettings(1, TimeSpan.MaxValue / 2, TimeSpan.MaxValue);
        state.Succeeded();
        Assert.Equal(TimeSpan.MaxValue / 2, state.Failed(forever));
        _time.Advance(TimeSpan.FromDays(3650));
        Assert.True(state.IsEjected());
    }

    [Theory]
    [InlineData(-1, 5, 300, "ProxyOptions.PassiveHealthConsecutiveFailures must be 0 (passive health off) or more (is -1)")]
    [InlineData(1, 0, 300, "ProxyOptions.PassiveHealthEjectionTime must be positive (is 00:00:00)")]
    [InlineData(1, 30, 10, "ProxyOptions.PassiveHealthMaxEjectionTime must be at least PassiveHealthEjectionTime (00:00:30) (is 00:00:10)")]
    public void PassiveHealthOptions_OutOfRange_AreRejectedNamingTheOption(int failures, int ejectionSeconds, int maxSeconds, string message)
    {
        var options = new ProxyOptions
        {
            PassiveHealthConsecutiveFailures = failures,
            PassiveHealthEjectionTime = TimeSpan.FromSeconds(ejectionSeconds),
            PassiveHealthMaxEjectionTime = TimeSpan.FromSeconds(maxSeconds),
        };

        var error = Assert.Throws<OptionsValidationException>(() => GatewayProxy.CreateDefault(options));
        Assert.Contains(message, error.Failures);
    }

    private static BackendEndpoint Endpoint(int port) => new("127.0.0.1", port);

    // A backend name of its own per test: metrics are tagged by backend, and a meter listener hears every proxy.
    private static string Name(int port) => "svc-" + port.ToString(CultureInfo.InvariantCulture);

    private static (int Listener, int Dead) TwoPorts()
    {
        var ports = FreePort.Get(2);
        return (ports[0], ports[1]);
    }

    private static async Task EchoAsync(int port, int connections)
    {
        using var deadline = Guard.Deadline(30);
        for (var i = 0; i < connections; i++)
        {
            using var client = await TestClient.ConnectAsync(port, deadline.Token);
            await client.AssertEchoesAsync($"connection {i}");
        }
    }

    private async Task<GatewayProxy> StartAsync(RoutingTable table, ProxyOptions? options = null)
    {
        var proxy = new GatewayProxy(new SocketTransport(), _connector, [new RoundRobinPolicy()], Options.Create(options ?? new ProxyOptions()), _time);
        try
        {
            var bindings = await proxy.ApplyAsync(table, CancellationToken.None).Within("ApplyAsync");
            Assert.All(bindings.ByPort.Values, static outcome => Assert.Equal(BindState.Bound, outcome.State));
            return proxy;
        }
        catch
        {
            await proxy.DisposeAsync();
            throw;
        }
    }
}
