using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Runtime.CompilerServices;
using FsmGateway.Transport.Connections;

namespace FsmGateway.Benchmarks;

/// <summary>
/// An in-memory <see cref="IDuplexConnection"/>: reads from one pipe and writes to another, so the relay can be
/// measured without sockets or the kernel. A zero-byte receive waits for data without consuming it, like a socket's.
/// </summary>
internal sealed class InMemoryDuplex(PipeReader input, PipeWriter output) : IDuplexConnection
{
    /// <summary>Pipe options for the benchmarks: continuations run inline, as the host runs socket completions.</summary>
    public static readonly PipeOptions Options = new(
        readerScheduler: PipeScheduler.Inline,
        writerScheduler: PipeScheduler.Inline,
        pauseWriterThreshold: 256 * 1024,
        resumeWriterThreshold: 128 * 1024,
        useSynchronizationContext: false);

    public EndPoint? LocalEndPoint => null;

    public EndPoint? RemoteEndPoint => null;

    /// <summary>Two connected pairs of pipes: what the relay sees as one side, and what the benchmark drives as its peer.</summary>
    public static (InMemoryDuplex RelaySide, InMemoryDuplex PeerSide) CreatePair()
    {
        var toRelay = new Pipe(Options);
        var fromRelay = new Pipe(Options);
        return (new InMemoryDuplex(toRelay.Reader, fromRelay.Writer), new InMemoryDuplex(fromRelay.Reader, toRelay.Writer));
    }

    // Pooled builders: the harness's own awaits allocate nothing, so what the diagnoser reports is the relay's.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
        var data = result.Buffer;
        if (buffer.IsEmpty || data.IsEmpty)
        {
            // Wait-only (or end of stream): consume nothing, so the next read sees the same bytes at once.
            input.AdvanceTo(data.Start);
            return 0;
        }

        var count = (int)Math.Min(data.Length, buffer.Length);
        data.Slice(0, count).CopyTo(buffer.Span);
        input.AdvanceTo(data.GetPosition(count));
        return count;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) =>
        _ = await output.WriteAsync(data, cancellationToken).ConfigureAwait(false);

    public void CompleteSend() => output.Complete();

    public void Abort()
    {
        output.Complete();
        input.Complete();
    }

    public ValueTask DisposeAsync()
    {
        Abort();
        return ValueTask.CompletedTask;
    }
}
