using System.Diagnostics;
using System.Net.Sockets;
using System.Threading.Channels;
using FsmGateway.Transport.Proxy;
using FsmGateway.Transport.Tests.TestSupport;
using Microsoft.Extensions.Time.Testing;

namespace FsmGateway.Transport.Tests;

/// <summary>The idle, half-closed and maximum-duration deadlines the heartbeat enforces, on the real clock and on a fake one.</summary>
public sealed class ConnectionLimitTests
{
    [Fact(Timeout = Guard.TestTimeout)]
    public async Task IdleTimeout_ConnectionIdle_IsClosed()
    {
        await using var echo = TestBackend.Echo();
        var port = FreePort.Get();
        var idle = TimeSpan.FromMilliseconds(500);
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, echo))), new ProxyOptions { IdleTimeout = idle });
        using var deadline = Guard.Deadline(30);
        using var client = await TestClient.ConnectAsync(port, deadline.Token);
        await client.AssertEchoesAsync();
        var quiet = Stopwatch.StartNew();

        var end = await client.ReadToEndAsync();

        Assert.True(end.ClosedWithoutData);
        Assert.True(quiet.Elapsed >= idle - TimeSpan.FromMilliseconds(100), $"closed after {quiet.Elapsed.TotalMilliseconds} ms of quiet, before the {idle.TotalMilliseconds} ms idle timeout");
        Assert.True(await Guard.Eventually(() => echo.Open == 0), "the upstream connection is still open");
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task MaxConnectionDuration_BusyConnection_IsClosed()
    {
        await using var echo = TestBackend.Echo();
        var port = FreePort.Get();
        var max = TimeSpan.FromSeconds(1);
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, echo))), new ProxyOptions { IdleTimeout = null, MaxConnectionDuration = max });
        using var deadline = Guard.Deadline(30);
        using var client = await TestClient.ConnectAsync(port, deadline.Token);
        var open = Stopwatch.StartNew();

        var exchanges = 0;
        var cut = await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            while (true)
            {
                await client.RoundTripAsync([1, 2, 3], deadline.Token);
                exchanges++;
                await Task.Delay(20, deadline.Token);
            }
        });

        Assert.True(cut is SocketException or EndOfStreamException, $"the exchange ended with {cut.GetType().Name} rather than a closed connection: {cut.Message}");
        Assert.True(open.Elapsed >= max - TimeSpan.FromMilliseconds(100), $"closed after {open.Elapsed.TotalMilliseconds} ms, before the {max.TotalMilliseconds} ms limit");
        // How many exchanges fit in the second depends on the machine's load; that there were some is what matters
        // (the fake-clock test below pins down busy-but-too-old exactly).
        Assert.True(exchanges > 0, "no exchange: the connection was never busy");
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task IdleTimeout_FakeClock_ActivityResetsTheClockAndSilenceCloses()
    {
        var time = new FakeTimeProvider();
        await using var echo = TestBackend.Echo();
        var port = FreePort.Get();
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, echo))), new ProxyOptions { IdleTimeout = TimeSpan.FromSeconds(10) }, time);
        using var deadline = Guard.Deadline(30);
        using var client = await TestClient.ConnectAsync(port, deadline.Token);
        await client.AssertEchoesAsync("t=0");

        // 8 s quiet, a message, 8 s quiet again: 16 s old but never 10 s idle.
        time.Advance(TimeSpan.FromSeconds(8));
        await client.AssertEchoesAsync("t=8");
        time.Advance(TimeSpan.FromSeconds(8));
        await client.AssertEchoesAsync("t=16");

        time.Advance(TimeSpan.FromSeconds(15));

        Assert.True((await client.ReadToEndAsync()).ClosedWithoutData);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task MaxConnectionDuration_FakeClock_BusyConnectionIsClosedOnceTooOld()
    {
        var time = new FakeTimeProvider();
        await using var echo = TestBackend.Echo();
        var port = FreePort.Get();
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, echo))), new ProxyOptions { IdleTimeout = TimeSpan.FromSeconds(5), MaxConnectionDuration = TimeSpan.FromSeconds(10) }, time);
        using var deadline = Guard.Deadline(30);
        using var client = await TestClient.ConnectAsync(port, deadline.Token);
        await client.AssertEchoesAsync("t=0");

        // Busy every 2 s: well inside the idle timeout, and alive up to 8 s of age.
        for (var t = 2; t <= 8; t += 2)
        {
            time.Advance(TimeSpan.FromSeconds(2));
            await client.AssertEchoesAsync($"t={t}");
        }

        time.Advance(TimeSpan.FromSeconds(4));

        Assert.True((await client.ReadToEndAsync()).ClosedWithoutData);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task HalfClosedTimeout_FakeClock_ReplyFlowingAfterClientFinIsNotCut()
    {
        // The timeout is inactivity while half-closed (HAProxy's client-fin), not time since the FIN: a reply that
        // keeps flowing after the client's FIN is never cut. On the fake clock the reply takes three timeouts.
        var time = new FakeTimeProvider();
        var finReceived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var sends = Channel.CreateUnbounded<byte?>();
        await using var backend = TestBackend.Start(async (_, socket, cancellationToken) =>
        {
            var buffer = new byte[1024];
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken) > 0)
            {
            }

            finReceived.TrySetResult();
            await foreach (var next in sends.Reader.ReadAllAsync(cancellationToken))
            {
                if (next is not { } value)
                {
                    break;
                }

                await socket.SendAsync(new[] { value }, SocketFlags.None, cancellationToken);
            }

            socket.Shutdown(SocketShutdown.Send);
        });
        var port = FreePort.Get();
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, backend))), new ProxyOptions { HalfClosedTimeout = TimeSpan.FromSeconds(10) }, time);
        using var deadline = Guard.Deadline(30);
        using var client = await TestClient.ConnectAsync(port, deadline.Token);
        await client.SendAllAsync("request"u8.ToArray(), deadline.Token);
        client.Shutdown(SocketShutdown.Send);
        await finReceived.Task.WaitAsync(deadline.Token);

        // 8 s quiet, a byte, 8 s quiet, a byte...: 32 s after the FIN, but never 10 s without bytes.
        var received = new byte[1];
        for (byte i = 0; i < 4; i++)
        {
            time.Advance(TimeSpan.FromSeconds(8));
            await sends.Writer.WriteAsync(i, deadline.Token);
            await client.ReceiveExactlyAsync(received, deadline.Token);
            Assert.Equal(i, received[0]);
        }

        await sends.Writer.WriteAsync(null, deadline.Token);
        var end = await client.ReadToEndAsync();

        Assert.False(end.Reset, "the connection was cut instead of ending with the backend's FIN");
        Assert.True(end.ClosedWithoutData);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task HalfClosedTimeout_FakeClock_SilenceAfterClientFinCloses()
    {
        var time = new FakeTimeProvider();
        var finReceived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var mute = TestBackend.Start(async (_, socket, cancellationToken) =>
        {
            var buffer = new byte[1024];
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken) > 0)
            {
            }

            finReceived.TrySetResult();
            await Task.Delay(Timeout.Infinite, cancellationToken);
        });
        var port = FreePort.Get();
        await using var proxy = await Routes.StartProxyAsync(Routes.Table(Routes.Listener(port, Routes.Backend("svc", 1, mute))), new ProxyOptions { HalfClosedTimeout = TimeSpan.FromSeconds(10) }, time);
        using var deadline = Guard.Deadline(30);
        using var client = await TestClient.ConnectAsync(port, deadline.Token);
        await client.SendAllAsync("request"u8.ToArray(), deadline.Token);
        client.Shutdown(SocketShutdown.Send);
        await finReceived.Task.WaitAsync(deadline.Token);

        time.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal(1, proxy.ActiveConnections);
        time.Advance(TimeSpan.FromSeconds(2));

        Assert.True((await client.ReadToEndAsync()).ClosedWithoutData);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task IdleTimeout_ConnectionOfARemovedListener_IsStillClosedWhenIdle()
    {
        // A removed listener's connections drain for up to 5 min here, but the idle timeout still holds them: the
        // heartbeat walks every connection the proxy holds, not only those of listeners still serving.
        await using var echo = TestBackend.Echo();
        var ports = FreePort.Get(2);
        var svc = Routes.Backend("svc", 1, echo);
        var idle = TimeSpan.FromMilliseconds(500);
        await using var proxy = await Routes.StartProxyAsync(
            Routes.Table(Routes.Listener(ports[0], svc), Routes.Listener(ports[1], svc)),
            new ProxyOptions { IdleTimeout = idle, DrainTimeout = TimeSpan.FromMinutes(5) });
        using var deadline = Guard.Deadline(30);
        using var client = await TestClient.ConnectAsync(ports[1], deadline.Token);
        await client.AssertEchoesAsync();
        await proxy.ApplyAsync(Routes.Table(Routes.Listener(ports[0], svc)), deadline.Token);

        var end = await client.ReadToEndAsync();

        Assert.True(end.ClosedWithoutData);
        Assert.True(await Guard.Eventually(() => proxy.ActiveConnections == 0), "the drained connection was not released");
    }
}
