using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using FsmGateway.Resources;
using FsmGateway.Routing;
using FsmGateway.Transport.Health;
using FsmGateway.Transport.LoadBalancing;
using FsmGateway.Transport.Proxy;
using FsmGateway.Transport.Sockets;
using FsmGateway.Transport.Tests.TestSupport;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace FsmGateway.Transport.Tests;

/// <summary>
/// Active health checks (TCP, TCP send/receive, HTTP with matches), the per-backend passive settings, the maximum
/// ejection percentage and the panic threshold, on real sockets on 127.0.0.1. The proxy's clock is a
/// <see cref="FakeTimeProvider"/>: the tests advance it step by step and wait for the probes due to finish, so every
/// bound below is in the proxy's time, exact, and independent of how busy the machine is.
/// </summary>
public sealed class ActiveHealthTests
{
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(100);
    private readonly FakeTimeProvider _time = new();
    private readonly RecordingConnector _connector = new();

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task KilledEndpoint_StopsGettingConnectionsWithinIntervalTimesUnhealthyThreshold_AndComesBackAfterHealthyThresholdPasses()
    {
        await using var alive = TestBackend.Echo();
        var victim = TestBackend.Echo();
        var victimPort = victim.Port;
        var port = FreePort.Get();
        var check = new ActiveHealthCheck(HealthProbeProtocol.Tcp, TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(500), UnhealthyThreshold: 3, HealthyThreshold: 2);

        // Passive health off: only the active checks decide here.
        await using var proxy = await StartAsync(
            Routes.Table(Routes.Listener(port, Backend(Name(port), new BackendPolicy { ActiveHealthCheck = check }, alive.Endpoint, victim.Endpoint))),
            new ProxyOptions { PassiveHealthConsecutiveFailures = 0 });
        await AdvanceAsync(proxy, check.Interval);
        Assert.All(proxy.GetEndpointHealth(), static e => Assert.True(e.Healthy && e.Active is { Up: true, LastProbePassed: true }, e.Reason));

        await victim.DisposeAsync();
        var elapsed = await AdvanceUntilAsync(proxy, () => !Health(proxy, victimPort).Healthy, TimeSpan.FromSeconds(10));
        Assert.True(elapsed <= (check.Interval * check.UnhealthyThreshold) + check.Timeout, $"marked down after {elapsed}");
        var down = Health(proxy, victimPort);
        Assert.Equal((false, 3, "connection refused"), (down.Active!.Up, down.Active.ConsecutiveFailures, down.Active.LastError));
        Assert.StartsWith("down: 3 failed TCP probe(s) in a row", down.Reason, StringComparison.Ordinal);

        var tried = _connector.Attempts(victimPort);
        await EchoAsync(port, 10);
        Assert.Equal(tried, _connector.Attempts(victimPort));

        // Back on the same port: one pass is not enough (healthyThreshold 2), the second brings it back.
        await using var revived = TestBackend.Echo(victimPort);
        await AdvanceUntilAsync(proxy, () => Health(proxy, victimPort).Active!.ConsecutiveSuccesses == 1, TimeSpan.FromSeconds(10));
        Assert.False(Health(proxy, victimPort).Healthy);
        await EchoAsync(port, 4);
        Assert.Equal(tried, _connector.Attempts(victimPort));
        elapsed = await AdvanceUntilAsync(proxy, () => Health(proxy, victimPort).Healthy, TimeSpan.FromSeconds(10));
        Assert.True(elapsed <= check.Interval, $"the second pass came {elapsed} after the first");
        await EchoAsync(port, 4);
        Assert.Equal(tried + 2, _connector.Attempts(victimPort));
    }

    public static TheoryData<string, string, string, string, string?, bool> HttpCases() => new()
    {
        // name, answer status, answer headers, answer body, matches (status|body|header name:value; ...), passes
        { "no matches, 200", "200 OK", string.Empty, "fine", null, true },
        { "no matches, 503", "503 Service Unavailable", string.Empty, "busy", null, false },
        { "no matches, 204", "204 No Content", string.Empty, string.Empty, null, false },
        { "status one of, 204", "204 No Content", string.Empty, string.Empty, "200,204||", true },
        { "status one of, 500", "500 Internal Server Error", string.Empty, string.Empty, "200,204||", false },
        { "body contains", "200 OK", string.Empty, "status: ready now", "|ready|", true },
        { "body does not contain", "200 OK", string.Empty, "status: starting", "|ready|", false },
        { "header equals", "200 OK", "X-Health: ok", string.Empty, "||X-Health:ok", true },
        { "header differs", "200 OK", "X-Health: degraded", string.Empty, "||X-Health:ok", false },
        { "header missing", "200 OK", string.Empty, string.Empty, "||X-Health:ok", false },
        { "all of one entry", "200 OK", "X-Health: ok", "ready", "200|ready|X-Health:ok", true },
        { "all of one entry, status differs", "201 Created", "X-Health: ok", "ready", "200|ready|X-Health:ok", false },
        { "any entry", "201 Created", string.Empty, "ready", "200||;|ready|", true },
    };

    [Theory(Timeout = Guard.TestTimeout)]
    [MemberData(nameof(HttpCases))]
    public async Task HttpProbe_GetsThePath_AndPassesWhenAMatchHolds(string name, string status, string headers, string body, string? matches, bool passes)
    {
        var requests = new ConcurrentQueue<string>();
        await using var server = TestBackend.Start(async (_, socket, cancellationToken) =>
        {
            var head = await ReadHeadAsync(socket, cancellationToken);
            requests.Enqueue(head);
            var bytes = Encoding.UTF8.GetBytes(body);
            var text = $"HTTP/1.1 {status}\r\n{(headers.Length > 0 ? headers + "\r\n" : string.Empty)}Content-Length: {bytes.Length}\r\nConnection: close\r\n\r\n";
            await socket.SendAllAsync(Encoding.ASCII.GetBytes(text).Concat(bytes).ToArray(), cancellationToken);
            socket.Shutdown(SocketShutdown.Send);
        });
        var port = FreePort.Get();
        var check = new ActiveHealthCheck(HealthProbeProtocol.Http, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), 1, 1)
        {
            HttpPath = "/healthz?full=1",
            HttpMatches = Matches(matches),
        };
        await using var proxy = await StartAsync(Routes.Table(Routes.Listener(port, Backend(Name(port), new BackendPolicy { ActiveHealthCheck = check }, server.Endpoint))));

        await AdvanceUntilAsync(proxy, () => Health(proxy, server.Port).Active!.LastProbePassed is not null, TimeSpan.FromSeconds(5));

        var health = Health(proxy, server.Port);
        Assert.True(passes == health.Healthy, $"{name}: {health.Reason}");
        Assert.Equal(passes, health.Active!.LastProbePassed);
        Assert.Equal("HTTP", health.Active.Protocol);
        Assert.True(requests.TryPeek(out var request));
        Assert.StartsWith("GET /healthz?full=1 HTTP/1.1\r\n", request, StringComparison.Ordinal);
        Assert.Contains($"Host: 127.0.0.1:{server.Port}\r\n", request, StringComparison.OrdinalIgnoreCase);
        if (!passes)
        {
            Assert.StartsWith($"HTTP status {status[..3]}", health.Active.LastError, StringComparison.Ordinal);
        }
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task HttpProbe_OnAnEndpointThatRefuses_Fails()
    {
        var port = FreePort.Get(2);
        var check = new ActiveHealthCheck(HealthProbeProtocol.Http, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), 1, 1) { HttpPath = "/" };
        await using var proxy = await StartAsync(Routes.Table(Routes.Listener(port[0], Backend(Name(port[0]), new BackendPolicy { ActiveHealthCheck = check }, Endpoint(port[1])))));

        await AdvanceUntilAsync(proxy, () => !Health(proxy, port[1]).Healthy, TimeSpan.FromSeconds(5));
        Assert.Equal("connection refused", Health(proxy, port[1]).Active!.LastError);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task TcpConnectProbe_OfAnEndpointThatDropsSyns_TimesOutAtItsDeadline_OnTheProxysClock()
    {
        using var blackhole = FullBacklogListener.Start();
        var port = FreePort.Get();
        var check = new ActiveHealthCheck(HealthProbeProtocol.Tcp, TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(500), 1, 1);
        await using var proxy = await StartAsync(Routes.Table(Routes.Listener(port, Backend(Name(port), new BackendPolicy { ActiveHealthCheck = check }, blackhole.Endpoint))));
        var state = proxy.Prober.States.Single();

        // The connect hangs; only the proxy's clock passing the probe's timeout ends it (not the kernel's SYN retries).
        var elapsed = await AdvanceUntilAsync(proxy, () => state.Probes > 0, TimeSpan.FromSeconds(5), settle: false);
        var health = Health(proxy, blackhole.Endpoint.Port);
        Assert.False(health.Healthy);
        Assert.Equal("timed out after 500ms", health.Active!.LastError);
        Assert.True(elapsed >= check.Timeout, $"failed {elapsed} in, before its timeout");
    }

    [Theory(Timeout = Guard.TestTimeout)]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    public async Task TcpConnectProbe_PassesOnAListeningEndpoint_AndFailsRefusedOnceItStopsListening(string address)
    {
        var ip = System.Net.IPAddress.Parse(address);
        var listener = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new System.Net.IPEndPoint(ip, 0));
        listener.Listen(16);
        var endpoint = new BackendEndpoint(address, ((System.Net.IPEndPoint)listener.LocalEndPoint!).Port);
        var port = FreePort.Get();
        var check = new ActiveHealthCheck(HealthProbeProtocol.Tcp, TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(500), 1, 1);
        await using var proxy = await StartAsync(Routes.Table(Routes.Listener(port, Backend(Name(port), new BackendPolicy { ActiveHealthCheck = check }, endpoint))));
        var state = proxy.Prober.States.Single();
        try
        {
            await AdvanceUntilAsync(proxy, () => state.Probes > 0, TimeSpan.FromSeconds(5));
            Assert.True(state.LastPassed, state.LastError);
        }
        finally
        {
            listener.Dispose();
        }

        await AdvanceUntilAsync(proxy, () => !state.IsUp, TimeSpan.FromSeconds(5));
        Assert.Equal("connection refused", state.LastError);
    }

    public static TheoryData<string, string?, bool, string?> TcpCases() => new()
    {
        // reply to "PING\r\n" (null: close at once), never answer, passes, the failure's start
        { "PONG ready\r\n", null, true, null },
        { "PONG", null, true, null },
        { "NOPE\r\n", null, false, "the reply does not start with the expected 4 byte(s)" },
        { "PO", null, false, "the endpoint closed the connection after 2 of the 4 expected byte(s)" },
        { string.Empty, "silent", false, "timed out after 500ms" },
    };

    [Theory(Timeout = Guard.TestTimeout)]
    [MemberData(nameof(TcpCases))]
    public async Task TcpProbe_SendsThePayload_AndComparesTheReplysPrefix(string reply, string? silent, bool passes, string? error)
    {
        var received = new ConcurrentQueue<string>();
        await using var server = TestBackend.Start(async (_, socket, cancellationToken) =>
        {
            var buffer = new byte[6];
            await socket.ReceiveExactlyAsync(buffer, cancellationToken);
            received.Enqueue(Encoding.ASCII.GetString(buffer));
            if (silent is not null)
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }

            await socket.SendAllAsync(Encoding.ASCII.GetBytes(reply), cancellationToken);
            socket.Shutdown(SocketShutdown.Send);
            await socket.ReceiveAsync(new byte[1], SocketFlags.None, cancellationToken); // until the probe closes
        });
        var port = FreePort.Get();
        var check = new ActiveHealthCheck(HealthProbeProtocol.Tcp, TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(500), 1, 1)
        {
            TcpSend = [.. "PING\r\n"u8],
            TcpReceive = [.. "PONG"u8],
        };
        await using var proxy = await StartAsync(Routes.Table(Routes.Listener(port, Backend(Name(port), new BackendPolicy { ActiveHealthCheck = check }, server.Endpoint))));

        // A silent endpoint's probe waits for its timeout, on the proxy's clock: advance without waiting for it.
        await AdvanceUntilAsync(proxy, () => Health(proxy, server.Port).Active!.LastProbePassed is not null, TimeSpan.FromSeconds(5), settle: silent is null);

        var health = Health(proxy, server.Port);
        Assert.True(passes == health.Healthy, health.Reason);
        Assert.True(received.TryPeek(out var payload));
        Assert.Equal("PING\r\n", payload);
        if (error is not null)
        {
            Assert.StartsWith(error, health.Active!.LastError, StringComparison.Ordinal);
        }
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task PassivePolicy_EjectsAfterItsConsecutiveFailures_ForTheBaseTimeRoundedUpToTheInterval()
    {
        await using var alive = TestBackend.Echo();
        var ports = FreePort.Get(2);
        var (port, dead) = (ports[0], ports[1]);
        var policy = new BackendPolicy { PassiveHealthCheck = new PassiveHealthCheck(2, TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(10), 100) };
        await using var proxy = await StartAsync(Routes.Table(Routes.Listener(port, Backend(Name(port), policy, Endpoint(dead), alive.Endpoint))));

        // Round robin starts on the dead endpoint every other connection: one failure does not eject, the second does.
        await EchoAsync(port, 2);
        Assert.Equal(1, _connector.Attempts(dead));
        Assert.True(Health(proxy, dead).Healthy);
        await EchoAsync(port, 2);
        Assert.Equal(2, _connector.Attempts(dead));
        var ejected = Health(proxy, dead);
        Assert.False(ejected.Healthy);
        Assert.Equal(_time.GetUtcNow() + TimeSpan.FromSeconds(12), ejected.Passive.EjectedUntil);
        Assert.Contains("refused", ejected.Passive.EjectionReason, StringComparison.OrdinalIgnoreCase);

        // 10 s rounded up to whole 3 s intervals: still out at 11 s, back at 12 s.
        _time.Advance(TimeSpan.FromSeconds(11));
        await EchoAsync(port, 4);
        Assert.Equal(2, _connector.Attempts(dead));
        _time.Advance(TimeSpan.FromSeconds(1));
        await EchoAsync(port, 2);
        Assert.Equal(3, _connector.Attempts(dead));
    }

    [Theory(Timeout = Guard.TestTimeout)]
    [InlineData(50, 2)]
    [InlineData(10, 1)]
    [InlineData(100, 3)]
    public async Task MaxEjectionPercent_NeverEjectsMoreThanItsShare_AndAlwaysAllowsOne(int percent, int maxEjected)
    {
        await using var alive = TestBackend.Echo();
        var ports = FreePort.Get(4);
        var port = ports[0];
        var dead = ports[1..];
        var policy = new BackendPolicy { PassiveHealthCheck = new PassiveHealthCheck(1, TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(30), percent) };
        await using var proxy = await StartAsync(
            Routes.Table(Routes.Listener(port, Backend(Name(port), policy, [.. dead.Select(Endpoint), alive.Endpoint]))),
            new ProxyOptions { ConnectAttempts = 4 });

        await EchoAsync(port, 20);

        var ejected = proxy.GetEndpointHealth().Count(static e => e.Passive.Ejected);
        Assert.Equal(maxEjected, ejected);

        // The dead endpoints past the share keep being tried (and failing over), the ejected ones are not.
        var before = dead.Select(_connector.Attempts).ToArray();
        await EchoAsync(port, 8);
        var after = dead.Select(_connector.Attempts).ToArray();
        var stillTried = dead.Where((p, i) => !Health(proxy, p).Passive.Ejected).ToArray();
        Assert.Equal(3 - maxEjected, stillTried.Length);
        Assert.All(dead.Select((p, i) => (p, i)), x => Assert.True(Health(proxy, x.p).Passive.Ejected ? after[x.i] == before[x.i] : after[x.i] > before[x.i], $"port {x.p}"));
    }

    [Theory(Timeout = Guard.TestTimeout)]
    [InlineData(75, true)]
    [InlineData(50, false)]
    [InlineData(null, false)]
    public async Task PanicThreshold_BelowItsShareOfHealthyEndpoints_EveryEndpointIsUsed(int? threshold, bool panic)
    {
        await using var a = TestBackend.Echo();
        await using var b = TestBackend.Echo();
        var ports = FreePort.Get(3);
        var (port, deadA, deadB) = (ports[0], ports[1], ports[2]);
        var name = Name(port);
        using var metrics = new MetricRecorder(name);
        var check = new ActiveHealthCheck(HealthProbeProtocol.Tcp, TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(500), 1, 1);
        var policy = new BackendPolicy { ActiveHealthCheck = check, PanicThresholdPercent = threshold };
        await using var proxy = await StartAsync(
            Routes.Table(Routes.Listener(port, Backend(name, policy, a.Endpoint, b.Endpoint, Endpoint(deadA), Endpoint(deadB)))),
            new ProxyOptions { PassiveHealthConsecutiveFailures = 0 });
        await AdvanceUntilAsync(proxy, () => proxy.GetEndpointHealth().Count(static e => !e.Healthy) == 2, TimeSpan.FromSeconds(5));

        // 2 of 4 healthy (50 %): below 75 % it is panic mode and the down endpoints are tried again (the connection
        // fails over); at 50 % or with the default (panic only when none is healthy), they are not.
        await EchoAsync(port, 8);
        Assert.Equal(panic, _connector.Attempts(deadA) + _connector.Attempts(deadB) > 0);
        Assert.Equal(panic ? 8 : 0, metrics.Sum("fsmgateway.backend.panic_connections"));
        Assert.Equal(panic ? 1 : 0, metrics.Sum("fsmgateway.backend.panic_transitions"));
        Assert.Equal(8, a.Accepted + b.Accepted - ProbeConnections(proxy, a.Port, b.Port));
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task PanicThresholdZero_NoEndpointHealthy_RefusesAtOnce()
    {
        var ports = FreePort.Get(2);
        var check = new ActiveHealthCheck(HealthProbeProtocol.Tcp, TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(500), 1, 1);
        await using var proxy = await StartAsync(
            Routes.Table(Routes.Listener(ports[0], Backend(Name(ports[0]), new BackendPolicy { ActiveHealthCheck = check, PanicThresholdPercent = 0 }, Endpoint(ports[1])))),
            new ProxyOptions { PassiveHealthConsecutiveFailures = 0 });
        await AdvanceUntilAsync(proxy, () => !Health(proxy, ports[1]).Healthy, TimeSpan.FromSeconds(5));

        using var deadline = Guard.Deadline(30);
        Assert.True((await TestClient.ConnectAndReadToEndAsync(ports[0], deadline.Token)).ClosedWithoutData);
        Assert.Equal(0, _connector.Attempts(ports[1]));
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Health_SurvivesAReloadThatChangesAnUnrelatedRoute_AndAnEndpointThatLeavesIsNoLongerProbed()
    {
        await using var other = TestBackend.Echo();
        await using var probed = TestBackend.Echo();
        var ports = FreePort.Get(3);
        var (port, otherPort, dead) = (ports[0], ports[1], ports[2]);
        var check = new ActiveHealthCheck(HealthProbeProtocol.Tcp, TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(500), 2, 1);
        var watched = Backend(Name(port), new BackendPolicy { ActiveHealthCheck = check }, probed.Endpoint, Endpoint(dead));
        RoutingTable Table(params TestBackend[] others) => Routes.Table(Routes.Listener(port, watched), Routes.Listener(otherPort, Routes.Backend(Name(otherPort), 1, others)));
        await using var proxy = await StartAsync(Table(other), new ProxyOptions { PassiveHealthConsecutiveFailures = 0 });
        await AdvanceUntilAsync(proxy, () => !Health(proxy, dead).Healthy, TimeSpan.FromSeconds(5));
        var state = proxy.Prober.States.Single(s => s.Endpoint.Key.Endpoint.Port == dead);
        var due = state.DueAt;

        // Another listener's route changes: this backend keeps its states, its health and its place in the schedule.
        await using var added = TestBackend.Echo();
        await proxy.ApplyAsync(Table(other, added), CancellationToken.None);
        Assert.False(Health(proxy, dead).Healthy);
        Assert.Same(state, proxy.Prober.States.Single(s => s.Endpoint.Key.Endpoint.Port == dead));
        Assert.Equal(due, state.DueAt);
        Assert.Equal(2, proxy.Prober.Count);

        // The backend leaves: its endpoints are no longer probed.
        await proxy.ApplyAsync(Routes.Table(Routes.Listener(otherPort, Routes.Backend(Name(otherPort), 1, other))), CancellationToken.None);
        Assert.True(await Guard.Eventually(() => proxy.Prober.Count == 0), "the probe loops of the removed backend still run");
        var accepted = probed.Accepted;
        await AdvanceAsync(proxy, TimeSpan.FromSeconds(3));
        Assert.Equal(accepted, probed.Accepted);
        Assert.DoesNotContain(proxy.GetEndpointHealth(), e => e.Port == dead);
    }

    [Theory(Timeout = Guard.TestTimeout)]
    [InlineData(1000, 100)]
    [InlineData(200, 20)]
    [InlineData(50, 10)]
    public async Task ProbesOfManyEndpoints_StartInBatches_OnAGridOfATenthOfTheirInterval_Between10And100Ms(int intervalMs, int gridMs)
    {
        // Every timer callback wakes a thread-pool thread, which cost more than the probes it started when 1,000
        // endpoints probed every second had one callback each 10 ms (benchmarks/README.md): the due times of a 1s check
        // lie on a 100 ms grid, so at most about 10 callbacks a second start them all.
        var port = FreePort.Get();
        var interval = TimeSpan.FromMilliseconds(intervalMs);
        var check = new ActiveHealthCheck(HealthProbeProtocol.Tcp, interval, interval / 2, 3, 1);
        var endpoints = Enumerable.Range(1, 200).Select(i => new BackendEndpoint($"127.0.1.{i}", 9)).ToArray();
        await using var proxy = await StartAsync(Routes.Table(Routes.Listener(port, Backend(Name(port), new BackendPolicy { ActiveHealthCheck = check }, endpoints))));

        var grid = (long)(TimeSpan.FromMilliseconds(gridMs).TotalSeconds * _time.TimestampFrequency);
        var due = proxy.Prober.States.Select(static s => s.DueAt).ToArray();
        Assert.Equal(200, due.Length);
        Assert.All(due, d => Assert.Equal(0, d % grid));
        Assert.InRange(due.Distinct().Count(), 1, (intervalMs / gridMs) + 1);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Dispose_StopsEveryProbe()
    {
        // Never answers; its handler ends when the probe's socket closes (a FIN or, as probes close, a reset).
        await using var silent = TestBackend.Start(static async (_, socket, cancellationToken) =>
        {
            try
            {
                await socket.ReceiveAsync(new byte[1], SocketFlags.None, cancellationToken);
            }
            catch (SocketException)
            {
            }
        });
        var port = FreePort.Get();
        var check = new ActiveHealthCheck(HealthProbeProtocol.Tcp, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), 1, 1) { TcpReceive = [.. "x"u8] };
        var proxy = await StartAsync(Routes.Table(Routes.Listener(port, Backend(Name(port), new BackendPolicy { ActiveHealthCheck = check }, silent.Endpoint))));
        var prober = proxy.Prober;

        // A probe hangs on the silent endpoint (its timeout never comes on this clock); dispose cancels it.
        _time.Advance(check.Interval);
        Assert.True(await Guard.Eventually(() => silent.Open == 1), "the probe did not connect");
        await proxy.DisposeAsync().AsTask().Within("DisposeAsync");

        Assert.Equal(0, prober.Count);
        Assert.True(await Guard.Eventually(() => silent.Open == 0), "the probe's socket is still open");
        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(1, silent.Accepted);
    }

    private static int ProbeConnections(GatewayProxy proxy, params int[] ports) =>
        proxy.Prober.States.Where(s => ports.Contains(s.Endpoint.Key.Endpoint.Port)).Sum(static s => s.Probes);

    private static EquatableArray<HttpProbeMatch> Matches(string? spec) =>
        spec is null ? [] : [.. spec.Split(';').Select(static entry =>
        {
            var parts = entry.Split('|');
            var statuses = parts[0].Length == 0 ? [] : parts[0].Split(',').Select(static s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
            var headers = parts[2].Length == 0 ? [] : new[] { new HttpHeaderValue(parts[2].Split(':')[0], parts[2].Split(':')[1]) };
            return new HttpProbeMatch([.. statuses], parts[1].Length == 0 ? null : parts[1], [.. headers]);
        })];

    private static async Task<string> ReadHeadAsync(Socket socket, CancellationToken cancellationToken)
    {
        var head = new StringBuilder();
        var buffer = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            if (await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken) == 0)
            {
                break;
            }

            head.Append((char)buffer[0]);
        }

        return head.ToString();
    }

    private static EndpointHealthReport Health(GatewayProxy proxy, int port) => proxy.GetEndpointHealth().Single(e => e.Port == port);

    private static RouteBackend Backend(string name, BackendPolicy policy, params BackendEndpoint[] endpoints) =>
        Routes.Backend(name, 1, endpoints) with { Policy = policy };

    private static BackendEndpoint Endpoint(int port) => new("127.0.0.1", port);

    private static string Name(int port) => "hc-" + port.ToString(CultureInfo.InvariantCulture);

    /// <summary>Advances the proxy's clock by <paramref name="total"/>, a step at a time, letting the probes due at each step finish.</summary>
    private async Task AdvanceAsync(GatewayProxy proxy, TimeSpan total)
    {
        for (var elapsed = TimeSpan.Zero; elapsed < total; elapsed += Step)
        {
            _time.Advance(Step);
            await SettleAsync(proxy);
        }
    }

    /// <summary>Advances the clock a step at a time until <paramref name="condition"/> holds; returns the time that took.</summary>
    private async Task<TimeSpan> AdvanceUntilAsync(GatewayProxy proxy, Func<bool> condition, TimeSpan limit, bool settle = true)
    {
        var elapsed = TimeSpan.Zero;
        while (!condition())
        {
            Assert.True(elapsed < limit, $"still not so after {limit} on the proxy's clock");
            _time.Advance(Step);
            elapsed += Step;
            if (settle)
            {
                await SettleAsync(proxy);
            }
            else
            {
                await Guard.Eventually(condition, seconds: 0.05);
            }
        }

        return elapsed;
    }

    private static async Task SettleAsync(GatewayProxy proxy) =>
        Assert.True(await Guard.Eventually(() => proxy.Prober.IsIdle), "a probe due did not finish");

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
