using System.Net;
using FsmGateway.Transport.Connections;

namespace FsmGateway.Transport.Tests.TestSupport;

/// <summary>A connection that cannot peek (as an embedder's transport may not): the PROXY protocol reader's exact-read path.</summary>
internal sealed class WithoutPeek(IDuplexConnection inner) : IDuplexConnection
{
    public EndPoint? LocalEndPoint => inner.LocalEndPoint;

    public EndPoint? RemoteEndPoint => inner.RemoteEndPoint;

    public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken) => inner.ReceiveAsync(buffer, cancellationToken);

    public ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => inner.SendAsync(data, cancellationToken);

    public void CompleteSend() => inner.CompleteSend();

    public void Abort() => inner.Abort();

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}

/// <summary>Binds through <paramref name="inner"/> and hands out accepted connections as <see cref="WithoutPeek"/>.</summary>
internal sealed class WithoutPeekListenerFactory(IListenerFactory inner) : IListenerFactory
{
    public async ValueTask<IConnectionListener> BindAsync(EndPoint endPoint, CancellationToken cancellationToken) =>
        new Listener(await inner.BindAsync(endPoint, cancellationToken));

    private sealed class Listener(IConnectionListener inner) : IConnectionListener
    {
        public EndPoint EndPoint => inner.EndPoint;

        public async ValueTask<IDuplexConnection?> AcceptAsync(CancellationToken cancellationToken) =>
            await inner.AcceptAsync(cancellationToken) is { } accepted ? new WithoutPeek(accepted) : null;

        public ValueTask UnbindAsync(CancellationToken cancellationToken) => inner.UnbindAsync(cancellationToken);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
