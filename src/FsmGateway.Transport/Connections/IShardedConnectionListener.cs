namespace FsmGateway.Transport.Connections;

/// <summary>
/// A listener that is several sockets on one endpoint (<c>SO_REUSEPORT</c>: the kernel spreads new connections over
/// them). The proxy runs one accept loop per shard; unbinding the listener unbinds them all.
/// </summary>
internal interface IShardedConnectionListener : IConnectionListener
{
    /// <summary>The sockets, each accepted from by its own loop.</summary>
    IReadOnlyList<IConnectionListener> Shards { get; }
}
