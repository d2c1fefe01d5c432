using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using FsmGateway.Transport.AccessLog;
using FsmGateway.Transport.Connections;
using FsmGateway.Transport.Linux;
using FsmGateway.Transport.Proxy;
using FsmGateway.Transport.Sockets;
using FsmGateway.Transport.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace FsmGateway.Transport.Tests;

/// <summary>
/// What only the Linux transport does: splice for bulk data (and copies for small exchanges), accept4 with
/// <c>TCP_NODELAY</c> inherited from the listener, <c>SO_REUSEPORT</c> listener shards; and how it is selected. The
/// behaviour both transports share is tested on each by the <see cref="TransportTestBase"/> classes.
/// </summary>
public sealed class LinuxTransportTests
{
    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Splice_BulkUpload_MostBytesAreSplicedAndTheCountersAndBytesAreExact()
    {
        const int Size = 32 << 20;
        var received = new TaskCompletionSource<(long Bytes, byte[] Hash)>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var sink = TestBackend.Start(async (_, socket, cancellationToken) =>
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[64 * 1024];
            long total = 0;
            int n;
            while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken)) > 0)
            {
                hash.AppendData(buffer, 0, n);
                total += n;
            }

            received.TrySetResult((total, hash.GetHashAndReset()));
            await socket.SendAllAsync("done"u8.ToArray(), cancellationToken);
            socket.Shutdown(SocketShutdown.Send);
        });
        var payload = new byte[Size];
        new Random(13).NextBytes(payload);
        long spliced = -1;

        var (line, transport) = await WithAccessLogAsync(sink, async port =>
        {
            using var deadline = Guard.Deadline(45);
            using var client = await TestClient.ConnectAsync(port, deadline.Token);
            await client.SendAllAsync(payload, deadline.Token);
            client.Shutdown(SocketShutdown.Send);
            var reply = await client.ReadToEndAsync(deadline.Token);
            Assert.False(reply.Reset, "the connection was reset");
            Assert.Equal("done"u8.ToArray(), reply.Data);
            spliced = SplicedMetric();
        });

        var (bytes, hash) = await received.Task.Within("the backend receiving everything");
        Assert.Equal(Size, bytes);
        Assert.Equal(SHA256.HashData(payload), hash);
        Assert.True(transport.SplicedBytes >= Size / 2, $"only {transport.SplicedBytes} of {Size} bytes were spliced");
        Assert.Equal(transport.SplicedBytes, spliced);
        Assert.EndsWith($" bytes_upstream={Size} bytes_downstream=4 reason=client_closed closed_by=client", line, StringComparison.Ordinal);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Splice_SmallInteractiveExchanges_AreCopiedNotSpliced()
    {
        await using var echo = TestBackend.Echo();
        var (line, transport) = await WithAccessLogAsync(echo, async port =>
        {
            using var client = await TestClient.ConnectAsync(port, CancellationToken.None);
            for (var i = 0; i < 200; i++)
            {
                await client.AssertEchoesAsync($"request {i:D4}"); // 12 bytes each way
            }

            client.Shutdown(SocketShutdown.Send);
            Assert.False((await client.ReadToEndAsync()).Reset);
        });

        Assert.Equal(0, transport.SplicedBytes);
        Assert.EndsWith(" bytes_upstream=2400 bytes_downstream=2400 reason=client_closed closed_by=client", line, StringComparison.Ordinal);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Splice_BulkThenSmallExchanges_SplicesTheBulkAndStillEchoesEachSmallOne()
    {
        const int Size = 8 << 20;
        await using var echo = TestBackend.Echo();
        var payload = new byte[Size];
        new Random(14).NextBytes(payload);
        var (line, transport) = await WithAccessLogAsync(echo, async port =>
        {
            using var deadline = Guard.Deadline(45);
            using var client = await TestClient.ConnectAsync(port, deadline.Token);
            Assert.Equal(SHA256.HashData(payload), SHA256.HashData(await client.RoundTripAsync(payload, deadline.Token)));
            for (var i = 0; i < 50; i++)
            {
                await client.AssertEchoesAsync($"after the bulk {i:D2}"); // 17 bytes each way
            }

            client.Shutdown(SocketShutdown.Send);
            Assert.False((await client.ReadToEndAsync(deadline.Token)).Reset);
        });

        Assert.True(transport.SplicedBytes > 0, "nothing was spliced");
        Assert.EndsWith($" bytes_upstream={Size + 850} bytes_downstream={Size + 850} reason=client_closed closed_by=client", line, StringComparison.Ordinal);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Splice_BackendResetsMidBulk_ClientSeesResetAndReasonIsBackendReset()
    {
        await using var backend = TestBackend.Start(static async (_, socket, cancellationToken) =>
        {
            var chunk = new byte[256 * 1024];
            for (var i = 0; i < 32; i++)
            {
                await socket.SendAllAsync(chunk, cancellationToken);
            }

            socket.LingerState = new LingerOption(enable: true, seconds: 0);
            socket.Close();
        });

        var (line, transport) = await WithAccessLogAsync(backend, async port =>
        {
            using var deadline = Guard.Deadline(45);
            using var client = await TestClient.ConnectAsync(port, deadline.Token, receiveBufferSize: 64 * 1024);
            await Task.Delay(300, deadline.Token); // let the proxy fill the client's buffers first: the reset arrives mid-transfer
            var result = await client.ReadToEndAsync(deadline.Token);
            Assert.True(result.Reset, $"the client saw a clean end of stream after {result.Data.Length} bytes, as if the transfer were complete");
        });

        Assert.True(transport.SplicedBytes > 0, "nothing was spliced");
        Assert.EndsWith(" reason=backend_reset closed_by=backend", line, StringComparison.Ordinal);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Splice_ClientResetsMidDownload_BackendSeesResetAndTheProcessLivesOn()
    {
        // Splicing into a socket the peer has reset fails with EPIPE (and would raise SIGPIPE if the runtime did not
        // ignore it): the relay must end both sides with resets, as the copy relay does, and the process carry on.
        var backendSaw = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = TestBackend.Start(async (_, socket, cancellationToken) =>
        {
            var chunk = new byte[256 * 1024];
            try
            {
                while (true)
                {
                    await socket.SendAllAsync(chunk, cancellationToken);
                }
            }
            catch (SocketException e)
            {
                backendSaw.TrySetResult(e.SocketErrorCode.ToString());
            }
        });

        var (line, transport) = await WithAccessLogAsync(backend, async port =>
        {
            using var deadline = Guard.Deadline(45);
            var client = await TestClient.ConnectAsync(port, deadline.Token);
            var buffer = new byte[1 << 20];
            for (long total = 0; total < 16 << 20;)
            {
                total += await client.ReceiveAsync(buffer, SocketFlags.None, deadline.Token);
            }

            client.LingerState = new LingerOption(enable: true, seconds: 0);
            client.Close();
            // A send after the reset fails with ECONNRESET, or with EPIPE once the reset has been reported.
            Assert.Contains(await backendSaw.Task.Within("the backend noticing the reset"), new[] { nameof(SocketError.ConnectionReset), nameof(SocketError.Shutdown) });
        });

        Assert.True(transport.SplicedBytes > 0, "nothing was spliced");
        Assert.EndsWith(" reason=client_reset closed_by=client", line, StringComparison.Ordinal);
        await using var echo = TestBackend.Echo();
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Listener(FreePort.Get(), Routes.Backend("svc", 1, echo))), new ProxyOptions { Transport = ProxyTransport.Linux });
        using var next = await TestClient.ConnectAsync(((IPEndPoint)Assert.Single(proxy.BoundEndPoints)).Port, CancellationToken.None);
        await next.AssertEchoesAsync();
    }

    [Theory(Timeout = Guard.TestTimeout)]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Accept_FromTheBacklogOrWhileWaiting_ConnectionHasNoDelayFromTheListener(bool queuedBeforeAccept)
    {
        var transport = new LinuxTransport(listenerShards: 1);
        await using var listener = await transport.BindAsync(new IPEndPoint(IPAddress.Loopback, 0), CancellationToken.None);
        var port = ((IPEndPoint)listener.EndPoint).Port;
        using var deadline = Guard.Deadline();
        Socket client;
        ValueTask<IDuplexConnection?> accept;
        if (queuedBeforeAccept)
        {
            client = await TestClient.ConnectAsync(port, deadline.Token); // waits in the backlog: the accept takes it at once
            accept = listener.AcceptAsync(deadline.Token);
        }
        else
        {
            accept = listener.AcceptAsync(deadline.Token); // nothing queued yet: the accept waits on .NET's epoll
            client = await TestClient.ConnectAsync(port, deadline.Token);
        }

        using (client)
        {
            await using var accepted = Assert.IsType<LinuxConnection>(await accept.AsTask().Within("the accept"));
            Assert.True(accepted.Socket.NoDelay, "TCP_NODELAY is off on the accepted socket");
            Assert.Equal(client.LocalEndPoint, accepted.RemoteEndPoint);
            await accepted.SendAsync("hi"u8.ToArray(), deadline.Token);
            var reply = new byte[2];
            await client.ReceiveExactlyAsync(reply, deadline.Token);
            Assert.Equal("hi"u8.ToArray(), reply);
        }
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Shards_TwoReusePortSockets_KernelSpreadsConnectionsOverBoth()
    {
        var transport = new LinuxTransport(listenerShards: 2);
        await using var listener = Assert.IsAssignableFrom<IShardedConnectionListener>(await transport.BindAsync(new IPEndPoint(IPAddress.Loopback, 0), CancellationToken.None));
        Assert.Equal(2, listener.Shards.Count);
        Assert.All(listener.Shards, shard => Assert.Equal(listener.EndPoint, shard.EndPoint));

        const int Connections = 64;
        var counts = new int[2];
        var accepted = new List<IDuplexConnection>();
        using var deadline = Guard.Deadline();
        var loops = listener.Shards.Select((shard, i) => Task.Run(async () =>
        {
            while (await shard.AcceptAsync(CancellationToken.None) is { } connection)
            {
                lock (accepted)
                {
                    accepted.Add(connection);
                }

                Interlocked.Increment(ref counts[i]);
            }
        })).ToArray();

        var clients = new List<Socket>();
        for (var i = 0; i < Connections; i++)
        {
            clients.Add(await TestClient.ConnectAsync(((IPEndPoint)listener.EndPoint).Port, deadline.Token));
        }

        Assert.True(await Guard.Eventually(() => Volatile.Read(ref counts[0]) + Volatile.Read(ref counts[1]) == Connections), $"accepted {counts[0]} + {counts[1]} of {Connections}");
        await listener.UnbindAsync(CancellationToken.None);
        await Task.WhenAll(loops).Within("the accept loops ending on unbind");

        // 64 connections from distinct source ports all hashing to one shard: 2 × 2^-64.
        Assert.True(counts[0] > 0 && counts[1] > 0, $"one shard accepted everything: {counts[0]} / {counts[1]}");
        foreach (var connection in accepted)
        {
            await connection.DisposeAsync();
        }

        clients.ForEach(static c => c.Dispose());
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Shards_ProxyWithTwoShards_ServesEveryConnection()
    {
        // Each shard gets about half the connections: with a loop on one shard only, half of them would never be served.
        await using var echo = TestBackend.Echo();
        var port = FreePort.Get();
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, echo))), new ProxyOptions { Transport = ProxyTransport.Linux, ListenerShards = 2 });
        var clients = new List<Socket>();
        try
        {
            using var deadline = Guard.Deadline();
            for (var i = 0; i < 32; i++)
            {
                clients.Add(await TestClient.ConnectAsync(port, deadline.Token));
            }

            await Task.WhenAll(clients.Select((c, i) => c.AssertEchoesAsync($"connection {i}"))).Within("every connection echoing");
        }
        finally
        {
            clients.ForEach(static c => c.Dispose());
        }
    }

    [Theory(Timeout = Guard.TestTimeout)]
    [InlineData(ProxyTransport.Linux, 2)]
    [InlineData(ProxyTransport.Sockets, 1)]
    public async Task Shards_PortInUseByAShardedListener_FailsToBindAsAPortInUseDoes(ProxyTransport second, int shards)
    {
        var first = new LinuxTransport(listenerShards: 2);
        await using var listening = await first.BindAsync(new IPEndPoint(IPAddress.Loopback, 0), CancellationToken.None);
        var options = new ProxyOptions { Transport = second, ListenerShards = shards };
        var transport = TransportSelection.Create(options);

        var error = await Assert.ThrowsAsync<SocketException>(async () => await transport.Listeners.BindAsync(listening.EndPoint, CancellationToken.None));

        Assert.Equal(SocketError.AddressAlreadyInUse, error.SocketErrorCode);
    }

    [Fact]
    public void Selection_AutoOnLinux_IsTheLinuxTransportWithAShardPerProcessor()
    {
        Assert.True(OperatingSystem.IsLinux(), "these tests run on Linux");
        var selected = TransportSelection.Create(new ProxyOptions());
        var linux = Assert.IsType<LinuxTransport>(selected.Listeners);
        Assert.Same(linux, selected.Connector);
        Assert.Equal(Environment.ProcessorCount, linux.ListenerShards);
        Assert.IsType<SocketTransport>(TransportSelection.Create(new ProxyOptions { Transport = ProxyTransport.Sockets }).Listeners);
        Assert.Equal(3, Assert.IsType<LinuxTransport>(TransportSelection.Create(new ProxyOptions { ListenerShards = 3 }).Listeners).ListenerShards);
    }

    [Fact]
    public void Selection_ThroughDependencyInjection_FollowsTheOption()
    {
        var services = new ServiceCollection();
        services.AddFsmGatewayTransport(o => o.Transport = ProxyTransport.Sockets);
        using var provider = services.BuildServiceProvider();

        Assert.IsType<SocketTransport>(provider.GetRequiredService<IListenerFactory>());
        Assert.IsType<SocketTransport>(provider.GetRequiredService<IUpstreamConnector>());
    }

    [Theory]
    [InlineData(0, (ProxyTransport)0, "ProxyOptions.ListenerShards must be between 1 and 1024, or null for one per processor (is 0)")]
    [InlineData(1025, (ProxyTransport)0, "ProxyOptions.ListenerShards must be between 1 and 1024, or null for one per processor (is 1025)")]
    [InlineData(1, (ProxyTransport)7, "ProxyOptions.Transport must be Auto, Sockets or Linux (is 7)")]
    public void Options_OutOfRange_FailTheProxyNamingTheOption(int shards, ProxyTransport transport, string failure)
    {
        var error = Assert.Throws<OptionsValidationException>(() => GatewayProxy.CreateDefault(new ProxyOptions { ListenerShards = shards, Transport = transport }));
        Assert.Contains(failure, error.Failures);
    }

    /// <summary>The largest value any live <c>fsmgateway.relay.spliced_bytes</c> instrument reports now (one proxy runs at a time).</summary>
    private static long SplicedMetric()
    {
        long value = -1;
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = static (instrument, l) =>
        {
            if (instrument.Meter.Name == ProxyMetrics.MeterName && instrument.Name == "fsmgateway.relay.spliced_bytes")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, measured, _, _) => value = Math.Max(value, measured));
        listener.Start();
        listener.RecordObservableInstruments();
        return value;
    }

    /// <summary>
    /// Runs <paramref name="exchange"/> against a Linux-transport proxy in front of <paramref name="backend"/> with a
    /// text access log, and returns the log's line for the one connection and the transport (for its splice count).
    /// </summary>
    private static async Task<(string Line, LinuxTransport Transport)> WithAccessLogAsync(TestBackend backend, Func<int, Task> exchange)
    {
        var folder = Directory.CreateTempSubdirectory("fsm-linux-");
        try
        {
            var path = Path.Combine(folder.FullName, "access.log");
            var options = new ProxyOptions();
            options.AccessLog.Destination = path;
            options.AccessLog.Format = AccessLogFormat.Text;
            var transport = new LinuxTransport(listenerShards: 1);
            var port = FreePort.Get();
            await using (var proxy = new GatewayProxy(transport, transport, [], Options.Create(options), TimeProvider.System))
            {
                await proxy.ApplyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, backend))), CancellationToken.None).Within("ApplyAsync");
                await exchange(port);
                Assert.True(await Guard.Eventually(() => proxy.ActiveConnections == 0), "the connection was never released");
            }

            return (Assert.Single(File.ReadAllLines(path)), transport);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }
}
