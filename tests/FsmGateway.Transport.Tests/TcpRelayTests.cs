using System.Net;
using FsmGateway.Transport.Connections;
using FsmGateway.Transport.Relay;
using FsmGateway.Transport.Tests.TestSupport;

namespace FsmGateway.Transport.Tests;

/// <summary>
/// The relay's own bookkeeping, on connections that fail as no socket does: the relay waits on no task of its own, so
/// its end is reported by the two directions (<see cref="RelayCounters.PumpEnded"/>). What it does on real sockets is
/// in <see cref="RelayTests"/> and <see cref="TerminationReasonTests"/>, on both transports.
/// </summary>
public sealed class TcpRelayTests
{
    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Relay_ADirectionThrowsAnExceptionNoPumpForesees_BothSidesAbortedAndTheRelayFailsWithIt()
    {
        var client = new FakeConnection { ReceiveThrows = new InvalidOperationException("a bug in a connection") };
        var upstream = new FakeConnection();

        var relay = TcpRelay.RunAsync(client, upstream, new Counters(), bufferSize: 1024).AsTask();

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => relay.Within("the relay's end"));
        Assert.Equal("a bug in a connection", error.Message);
        Assert.True(client.Aborted, "the client was not aborted");
        Assert.True(upstream.Aborted, "the upstream was not aborted (its direction would wait forever)");
    }

    [Fact]
    public void Relay_CountersAlreadyRelaying_SecondRelayRefused()
    {
        var counters = new Counters();
        var first = TcpRelay.RunAsync(new FakeConnection(), new FakeConnection(), counters, bufferSize: 1024).AsTask();

        var refused = Record.Exception(() => { _ = TcpRelay.RunAsync(new FakeConnection(), new FakeConnection(), counters, bufferSize: 1024).AsTask(); });
        Assert.IsType<InvalidOperationException>(refused);
        Assert.False(first.IsCompleted);
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Relay_BothDirectionsEndCleanly_ClosedByTheSideWhoseEndCameFirst()
    {
        var client = new FakeConnection();
        var upstream = new FakeConnection();
        var relay = TcpRelay.RunAsync(client, upstream, new Counters(), bufferSize: 1024).AsTask();

        upstream.EndOfStream(); // the backend closes first: its FIN goes to the client
        for (var i = 0; !client.SendCompleted && i < 1500; i++)
        {
            await Task.Delay(10);
        }

        Assert.True(client.SendCompleted, "the backend's FIN was not passed on");
        Assert.False(relay.IsCompleted, "the relay ended while the client could still send");
        client.EndOfStream();

        Assert.Equal(Proxy.TerminationReason.BackendClosed, await relay.Within("the relay's end"));
        Assert.False(client.Aborted || upstream.Aborted, "a clean end aborted a side");
    }

    [Fact(Timeout = Guard.TestTimeout)]
    public async Task Relay_SecondDirectionEndsCleanly_NoHalfCloseBeforeTheClose()
    {
        // The first end is passed on as a half-close; once the second direction ends too, both sockets are closed next
        // and the close sends the FIN, so a shutdown first would be a system call for nothing.
        var client = new FakeConnection();
        var upstream = new FakeConnection();
        var relay = TcpRelay.RunAsync(client, upstream, new Counters(), bufferSize: 1024).AsTask();

        upstream.EndOfStream();
        for (var i = 0; !client.SendCompleted && i < 1500; i++)
        {
            await Task.Delay(10);
        }

        client.EndOfStream();

        Assert.Equal(Proxy.TerminationReason.BackendClosed, await relay.Within("the relay's end"));
        Assert.True(client.SendCompleted, "the backend's FIN was not passed on");
        Assert.False(upstream.SendCompleted, "the upstream was half-closed although both directions had ended and it is closed next");
    }

    private sealed class Counters : RelayCounters
    {
        public override void Transferred(bool upload, int bytes)
        {
        }
    }

    /// <summary>
    /// A connection whose receives wait until <see cref="EndOfStream"/> (0) or <see cref="Abort"/> (fails), or throw
    /// <see cref="ReceiveThrows"/> at once; sends are taken whole.
    /// </summary>
    private sealed class FakeConnection : IDuplexConnection
    {
        private readonly TaskCompletionSource<int> _end = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Exception? ReceiveThrows { get; init; }

        private volatile bool _aborted;
        private volatile bool _sendCompleted;

        public bool Aborted => _aborted;

        public bool SendCompleted => _sendCompleted;

        public EndPoint? LocalEndPoint => null;

        public EndPoint? RemoteEndPoint => null;

        public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
            ReceiveThrows is { } error ? throw error : new ValueTask<int>(_end.Task);

        public ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public void EndOfStream() => _end.TrySetResult(0);

        public void CompleteSend() => _sendCompleted = true;

        public void Abort()
        {
            _aborted = true;
            _end.TrySetException(new ObjectDisposedException("socket"));
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
