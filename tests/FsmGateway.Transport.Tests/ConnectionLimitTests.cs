using System.Diagnostics;
using System.Net.Sockets;
using FsmGateway.Transport.Proxy;
using FsmGateway.Transport.Tests.TestSupport;
using Microsoft.Extensions.Time.Testing;

namespace FsmGateway.Transport.Tests;

/// <summary>The idle timeout and the maximum connection duration, on the real clock and on a fake one.</summary>
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
        Assert.True(exchanges > 5, $"only {exchanges} exchanges: the connection was not busy");
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
}
