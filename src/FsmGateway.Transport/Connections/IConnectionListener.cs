using System.Net;

namespace FsmGateway.Transport.Connections;

/// <summary>A bound listening endpoint that accepts connections.</summary>
public interface IConnectionListener : IAsyncDisposable
{
    /// <summary>The endpoint actually bound (with the real port when port 0 was asked for).</summary>
    EndPoint EndPoint { get; }

    /// <summary>Accepts the next connection; <see langword="null"/> once the listener is unbound.</summary>
    /// <param name="cancellationToken">Cancels the accept.</param>
    /// <returns>The accepted connection, or <see langword="null"/>.</returns>
    ValueTask<IDuplexConnection?> AcceptAsync(CancellationToken cancellationToken);

    /// <summary>Stops accepting; pending and future accepts return <see langword="null"/>. Accepted connections are untouched.</summary>
    /// <param name="cancellationToken">Cancels the unbind.</param>
    /// <returns>A task that completes when the socket no longer listens.</returns>
    ValueTask UnbindAsync(CancellationToken cancellationToken);
}

/// <summary>Binds listening endpoints.</summary>
public interface IListenerFactory
{
    /// <summary>Binds <paramref name="endPoint"/> and starts listening.</summary>
    /// <param name="endPoint">Where to listen.</param>
    /// <param name="cancellationToken">Cancels the bind.</param>
    /// <returns>The listener.</returns>
    /// <exception cref="System.Net.Sockets.SocketException">The endpoint cannot be bound (in use, permission).</exception>
    ValueTask<IConnectionListener> BindAsync(EndPoint endPoint, CancellationToken cancellationToken);
}

/// <summary>Opens upstream connections.</summary>
public interface IUpstreamConnector
{
    /// <summary>Connects to <paramref name="endPoint"/>.</summary>
    /// <param name="endPoint">The upstream endpoint.</param>
    /// <param name="cancellationToken">Cancels the connect (the proxy's connect timeout cancels through it).</param>
    /// <returns>The connection.</returns>
    ValueTask<IDuplexConnection> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken);

    /// <summary>
    /// Connects to <paramref name="endPoint"/> with the backend's socket options (TCP keepalive). The proxy calls
    /// this one; a connector that does not implement it connects without the options.
    /// </summary>
    /// <param name="endPoint">The upstream endpoint.</param>
    /// <param name="options">The socket options.</param>
    /// <param name="cancellationToken">Cancels the connect (the backend's connect timeout cancels through it).</param>
    /// <returns>The connection.</returns>
    ValueTask<IDuplexConnection> ConnectAsync(EndPoint endPoint, UpstreamConnectOptions options, CancellationToken cancellationToken) =>
        ConnectAsync(endPoint, cancellationToken);
}
