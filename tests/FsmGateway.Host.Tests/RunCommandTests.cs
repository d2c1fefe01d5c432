using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using FsmGateway.Host.Tests.Support;

namespace FsmGateway.Host.Tests;

/// <summary>
/// <c>fsm-gateway run</c> end to end: the real program in its own process, real sockets on 127.0.0.1, real files,
/// real SIGTERM. Each test has its own folder, ports and echo backend.
/// </summary>
public sealed class RunCommandTests : IDisposable
{
    private readonly DirectoryInfo _config = Directory.CreateTempSubdirectory("fsm-run-");

    public void Dispose() => _config.Delete(recursive: true);

    private void Write(string file, string text)
    {
        // Write and rename, as kubectl-style tools do, so the gateway never reads half a file.
        var temp = Path.Combine(_config.FullName, "." + file + ".tmp");
        File.WriteAllText(temp, text);
        File.Move(temp, Path.Combine(_config.FullName, file), overwrite: true);
    }

    private GatewayProcess StartGateway(params string[] extra) =>
        GatewayProcess.Start(["run", "--config", _config.FullName, "--admin-port", "0", "--drain-timeout", "10s", .. extra]);

    [Fact]
    public async Task Run_TwoListeners_BothRouteToTheBackend_AndAdminEndpointsAnswer()
    {
        await using var backend = new EchoServer();
        var (foo, bar) = (Net.FreePort(), Net.FreePort());
        Write("gateway.yaml", Manifests.Gateway(("foo", foo), ("bar", bar)));
        Write("route.yaml", Manifests.RouteAndBackend(backend.Port));
        await using var gateway = StartGateway();

        await gateway.WaitUntilReadyAsync();

        Assert.Equal("via foo", await Net.EchoOnceAsync(foo, "via foo"));
        Assert.Equal("via bar", await Net.EchoOnceAsync(bar, "via bar"));
        using var http = new HttpClient { BaseAddress = gateway.AdminUri, Timeout = TimeSpan.FromSeconds(10) };
        Assert.Equal("ok\n", await http.GetStringAsync(new Uri("/healthz", UriKind.Relative)));
        Assert.Equal("ready\n", await http.GetStringAsync(new Uri("/readyz", UriKind.Relative)));
        var status = await http.GetStringAsync(new Uri("/status", UriKind.Relative));
        Assert.Contains($"\"port\": {foo}", status, StringComparison.Ordinal);
        Assert.Contains($"Listening on 127.0.0.1:{foo}", gateway.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_BackendTrafficPolicyCap_FromTheManifests_RefusesPastIt_AndTheAccessLogSaysWhy()
    {
        await using var backend = new EchoServer();
        var port = Net.FreePort();
        Write("gateway.yaml", Manifests.Gateway(("tcp", port)));
        Write("route.yaml", Manifests.RouteAndBackend(backend.Port));
        Write("policy.yaml", """
            apiVersion: gateway.fsmgateway.io/v1alpha1
            kind: BackendTrafficPolicy
            metadata:
              name: cap
            spec:
              targetRefs:
                - group: gateway.networking.k8s.io
                  kind: TCPRoute
                  name: echo
              circuitBreaker:
                maxConnections: 2
            """);
        await using var gateway = StartGateway("--access-log", "stdout");
        await gateway.WaitUntilReadyAsync();

        using var first = await Net.ConnectAsync(port);
        Assert.Equal("one", await Net.RoundTripAsync(first, "one"));
        using var second = await Net.ConnectAsync(port);
        Assert.Equal("two", await Net.RoundTripAsync(second, "two"));
        await AssertClosedAtOnceAsync(port);
        await gateway.WaitForLineAsync("refused_backend_limit");
        Assert.Equal("still", await Net.RoundTripAsync(first, "still"));
    }

    [Fact]
    public async Task Run_FsmListenerFilters_FromTheManifests_RestrictAddressesAndCapConnections()
    {
        // FSM's IPRestriction and ConcurrencyLimit, written as FSM users write them, on two listeners of a real run.
        await using var backend = new EchoServer();
        var (restricted, capped) = (Net.FreePort(), Net.FreePort());
        Write("gateway.yaml", Manifests.Gateway(("restricted", restricted), ("capped", capped)));
        Write("route.yaml", Manifests.RouteAndBackend(backend.Port));
        Write("filters.yaml", $"""
            apiVersion: extension.gateway.flomesh.io/v1alpha1
            kind: ListenerFilter
            metadata:
              name: ip-restriction
            spec:
              type: IPRestriction
              targetRefs:
                - group: gateway.networking.k8s.io
                  kind: Gateway
                  name: gw
                  port: {restricted}
              configRef:
                group: extension.gateway.flomesh.io
                kind: IPRestriction
                name: office
            ---
            apiVersion: extension.gateway.flomesh.io/v1alpha1
            kind: IPRestriction
            metadata:
              name: office
            spec:
              allowed:
                - 127.0.0.0/24
              forbidden:
                - 127.0.0.1
            ---
            apiVersion: extension.gateway.flomesh.io/v1alpha1
            kind: ListenerFilter
            metadata:
              name: concurrency-limit
            spec:
              type: ConcurrencyLimit
              targetRefs:
                - group: gateway.networking.k8s.io
                  kind: Gateway
                  name: gw
                  port: {capped}
              configRef:
                group: extension.gateway.flomesh.io
                kind: ConcurrencyLimit
                name: one-at-a-time
            ---
            apiVersion: extension.gateway.flomesh.io/v1alpha1
            kind: ConcurrencyLimit
            metadata:
              name: one-at-a-time
            spec:
              maxConnections: 1
            """);
        await using var gateway = StartGateway("--access-log", "stdout");
        await gateway.WaitUntilReadyAsync();

        // 127.0.0.2 is in the allow list; 127.0.0.1 is in it too, but denied.
        using (var allowed = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            allowed.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0));
            await allowed.ConnectAsync(new IPEndPoint(IPAddress.Loopback, restricted));
            Assert.Equal("allowed", await Net.RoundTripAsync(allowed, "allowed"));
        }

        await AssertClosedAtOnceAsync(restricted);
        await gateway.WaitForLineAsync("refused_ip_denied");

        using var first = await Net.ConnectAsync(capped);
        Assert.Equal("first", await Net.RoundTripAsync(first, "first"));
        await AssertClosedAtOnceAsync(capped);
        await gateway.WaitForLineAsync("refused_connection_limit");
        Assert.Equal("still", await Net.RoundTripAsync(first, "still"));
    }

    [Fact]
    public async Task Run_BufferLimit_HundredClientsThatNeverRead_TheGatewayHoldsLittleForThem()
    {
        // ClientTrafficPolicy connection.bufferLimit: 4 KiB. A backend tries to send 1 GiB to each of 100 clients that
        // never read; the gateway must hold at most the limit per direction for each, whatever the backend sends.
        const int Clients = 100;
        using var firehose = new TcpListener(IPAddress.Loopback, 0);
        firehose.Start(Clients * 2);
        using var stop = new CancellationTokenSource();
        long sent = 0;
        var sockets = new List<Socket>();
        var serving = Task.Run(async () =>
        {
            var chunk = new byte[64 * 1024];
            while (!stop.IsCancellationRequested)
            {
                var socket = await firehose.AcceptSocketAsync(stop.Token);
                socket.SendBufferSize = 64 * 1024;
                lock (sockets)
                {
                    sockets.Add(socket);
                }

                _ = Task.Run(async () =>
                {
                    for (long total = 0; total < 1L << 30; total += chunk.Length)
                    {
                        await socket.SendAsync(chunk, SocketFlags.None, stop.Token);
                        Interlocked.Add(ref sent, chunk.Length);
                    }
                });
            }
        });
        var port = Net.FreePort();
        Write("gateway.yaml", Manifests.Gateway(("tcp", port)));
        Write("route.yaml", Manifests.RouteAndBackend(((IPEndPoint)firehose.LocalEndpoint).Port));
        Write("policy.yaml", """
            apiVersion: gateway.fsmgateway.io/v1alpha1
            kind: ClientTrafficPolicy
            metadata:
              name: small-buffers
            spec:
              targetRefs:
                - group: gateway.networking.k8s.io
                  kind: Gateway
                  name: gw
              connection:
                bufferLimit: 4Ki
            """);
        await using var gateway = StartGateway();
        await gateway.WaitUntilReadyAsync();
        var before = Rss(gateway.Id);

        var clients = new List<Socket>();
        try
        {
            for (var i = 0; i < Clients; i++)
            {
                var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 64 * 1024 };
                clients.Add(client);
                await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
            }

            // Until the backend's sends stall: every byte the sockets can hold is held, somewhere.
            long last;
            do
            {
                last = Interlocked.Read(ref sent);
                await Task.Delay(TimeSpan.FromSeconds(1));
            }
            while (Interlocked.Read(ref sent) != last);

            var growth = Rss(gateway.Id) - before;
            Assert.True(Interlocked.Read(ref sent) < Clients * (1L << 30), "the backend sent everything: some client read");
            Assert.True(growth < 48L << 20, $"the gateway grew by {growth >> 20} MiB holding {Clients} stalled connections ({Interlocked.Read(ref sent) >> 20} MiB sent by the backend)");
        }
        finally
        {
            await stop.CancelAsync();
            foreach (var client in clients)
            {
                client.Dispose();
            }

            lock (sockets)
            {
                sockets.ForEach(static s => s.Dispose());
            }

            firehose.Stop();
            await serving.ContinueWith(static _ => { }, TaskScheduler.Default);
        }
    }

    private static long Rss(int pid) =>
        File.ReadLines($"/proc/{pid}/status").Where(static l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
            .Select(static l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024).Single();

    private static async Task AssertClosedAtOnceAsync(int port)
    {
        try
        {
            // Closed at once, nothing received; the reset may even beat the end of the client's connect.
            using var refused = await Net.ConnectAsync(port);
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            Assert.Equal(0, await refused.ReceiveAsync(new byte[16], SocketFlags.None, deadline.Token));
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
        }
    }

    [Fact]
    public async Task Run_Sigterm_DrainsAnOpenConnectionThenExitsZero()
    {
        await using var backend = new EchoServer();
        var port = Net.FreePort();
        Write("gateway.yaml", Manifests.Gateway(("tcp", port)));
        Write("route.yaml", Manifests.RouteAndBackend(backend.Port));
        await using var gateway = StartGateway();
        await gateway.WaitUntilReadyAsync();
        using var open = await Net.ConnectAsync(port);
        Assert.Equal("before", await Net.RoundTripAsync(open, "before"));

        var exit = gateway.TerminateAsync();
        await gateway.WaitForLineAsync("draining 1 open connection");

        // Readiness fails first, so a load balancer stops sending; then new connections are refused while the open
        // one still carries bytes both ways.
        // (The admin server may already be down, which a readiness probe also reads as "not ready".)
        using (var http = new HttpClient { BaseAddress = gateway.AdminUri, Timeout = TimeSpan.FromSeconds(10) })
        {
            try
            {
                var ready = await http.GetAsync(new Uri("/readyz", UriKind.Relative));
                Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            }
            catch (HttpRequestException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused })
            {
            }
        }

        await Net.EventuallyAsync(() => Net.IsRefusedAsync(port), "the port stops accepting");
        Assert.Equal("during drain", await Net.RoundTripAsync(open, "during drain"));
        open.Shutdown(SocketShutdown.Send);
        Assert.Equal(0, await open.ReceiveAsync(new byte[1]));

        Assert.Equal(0, await exit);
        Assert.Contains("Stopped", gateway.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_HotReload_AddAndRemoveListeners_LiveConnectionOnUnchangedListenerKeepsFlowing()
    {
        await using var backend = new EchoServer();
        var (stay, added) = (Net.FreePort(), Net.FreePort());
        Write("gateway.yaml", Manifests.Gateway(("stay", stay)));
        Write("route.yaml", Manifests.RouteAndBackend(backend.Port));
        await using var gateway = StartGateway();
        await gateway.WaitUntilReadyAsync();
        using var live = await Net.ConnectAsync(stay);
        Assert.Equal("1", await Net.RoundTripAsync(live, "1"));

        // Add a listener: it serves, and the live connection is untouched.
        Write("gateway.yaml", Manifests.Gateway(("stay", stay), ("added", added)));
        await Net.EventuallyAsync(async () => !await Net.IsRefusedAsync(added), $"port {added} serves");
        Assert.Equal("added", await Net.EchoOnceAsync(added, "added"));
        Assert.Equal("2", await Net.RoundTripAsync(live, "2"));

        // A connection on the listener about to go keeps working while it drains.
        using var draining = await Net.ConnectAsync(added);
        Assert.Equal("x", await Net.RoundTripAsync(draining, "x"));

        Write("gateway.yaml", Manifests.Gateway(("stay", stay)));
        await Net.EventuallyAsync(() => Net.IsRefusedAsync(added), $"port {added} stops accepting");
        Assert.Equal("still here", await Net.RoundTripAsync(draining, "still here"));
        Assert.Equal("3", await Net.RoundTripAsync(live, "3"));

        // A broken file changes nothing that serves.
        Write("gateway.yaml", "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: { name: gw }\nspec: [broken\n");
        await gateway.WaitForLineAsync("Manifest error: .*gateway.yaml: document 1");
        Assert.Equal("4", await Net.RoundTripAsync(live, "4"));
        Assert.Equal("new", await Net.EchoOnceAsync(stay, "new"));
    }

    [Fact]
    public async Task Run_BackendEndpointChange_ReachesNewConnections_OldOneKeepsItsUpstream()
    {
        await using var first = new EchoServer();
        await using var second = new EchoServer();
        var port = Net.FreePort();
        Write("gateway.yaml", Manifests.Gateway(("tcp", port)));
        Write("route.yaml", Manifests.RouteAndBackend(first.Port));
        await using var gateway = StartGateway();
        await gateway.WaitUntilReadyAsync();
        using var old = await Net.ConnectAsync(port);
        Assert.Equal("a", await Net.RoundTripAsync(old, "a"));

        Write("route.yaml", Manifests.RouteAndBackend(second.Port));
        await first.DisposeAsync(); // stop accepting on the first backend; its open connection lives on

        await Net.EventuallyAsync(async () =>
        {
            try
            {
                return await Net.EchoOnceAsync(port, "probe") == "probe";
            }
            catch (Exception e) when (e is IOException or SocketException)
            {
                return false;
            }
        }, "new connections reach the second backend");
        Assert.Equal("b", await Net.RoundTripAsync(old, "b"));
    }

    [Fact]
    public async Task Run_MissingConfigPath_ExitsOneNamingThePath()
    {
        await using var gateway = GatewayProcess.Start("run", "--config", "/no/such/folder", "--admin-port", "0");

        Assert.Equal(1, await gateway.WaitForExitAsync());
        Assert.Contains("run: config path '/no/such/folder' does not exist", gateway.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_EveryPortInUse_ExitsThreeNamingThePort()
    {
        await using var backend = new EchoServer();
        using var squatter = new TcpListener(System.Net.IPAddress.Loopback, 0);
        squatter.Start();
        var port = ((System.Net.IPEndPoint)squatter.LocalEndpoint).Port;
        Write("gateway.yaml", Manifests.Gateway(("tcp", port)));
        Write("route.yaml", Manifests.RouteAndBackend(backend.Port));

        await using var gateway = StartGateway();

        Assert.Equal(3, await gateway.WaitForExitAsync());
        Assert.Contains($"port {port}: address already in use", gateway.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_BadDuration_ExitsOne()
    {
        await using var gateway = GatewayProcess.Start("run", "--drain-timeout", "soon", "--admin-port", "0");

        Assert.Equal(1, await gateway.WaitForExitAsync());
        Assert.Contains("'soon' is not a duration", gateway.Output, StringComparison.Ordinal);
    }
}
