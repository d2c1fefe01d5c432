using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Net;
using System.Net.Sockets;
using FsmGateway.Routing;
using FsmGateway.Transport.Connections;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Transport.Proxy;

/// <summary>
/// The listening sockets, kept in step with routing tables as a diff: an unchanged listener keeps its sockets and
/// connections and has its route model swapped; a new one is bound and starts accepting; a removed one stops accepting
/// and drains. Accepted connections go to the <see cref="ConnectionHandler"/>. Not thread-safe for writers: the proxy
/// applies one table at a time.
/// </summary>
internal sealed class ListenerSet(
    IListenerFactory listenerFactory,
    ConnectionHandler handler,
    ConnectionRegistry registry,
    Func<ListenerRoute, RouteModel> newModel,
    TimeSpan drainTimeout,
    TimeProvider time,
    ILogger logger)
{
    private readonly Dictionary<BindKey, ListenerRuntime> _listeners = [];
    private readonly ConcurrentDictionary<Task, byte> _drains = new();
    private readonly CancellationTokenSource _endDrains = new();

    /// <summary>The endpoints bound now, across all listeners.</summary>
    public IReadOnlyList<EndPoint> BoundEndPoints
    {
        get
        {
            lock (_listeners)
            {
                return [.. _listeners.Values.SelectMany(static l => l.Sockets).Select(static s => s.EndPoint)];
            }
        }
    }

    /// <summary>The route models serving now.</summary>
    public IReadOnlyList<RouteModel> Models
    {
        get
        {
            lock (_listeners)
            {
                return [.. _listeners.Values.Select(static l => l.Model)];
            }
        }
    }

    /// <summary>Makes the listeners those of <paramref name="table"/>, and reports each port's bind outcome.</summary>
    public async Task<ImmutableSortedDictionary<int, BindOutcome>> ApplyAsync(RoutingTable table, CancellationToken cancellationToken)
    {
        var desired = new Dictionary<BindKey, ListenerRoute>();
        foreach (var route in table.Listeners)
        {
            desired.TryAdd(BindKey.Of(route), route);
        }

        List<ListenerRuntime> removed;
        lock (_listeners)
        {
            removed = [.. _listeners.Values.Where(l => !desired.ContainsKey(l.Key))];
            foreach (var listener in removed)
            {
                _listeners.Remove(listener.Key);
            }
        }

        foreach (var listener in removed)
        {
            await UnbindAsync(listener).ConfigureAwait(false);
            Track(DrainAsync(listener));
        }

        var outcomes = ImmutableSortedDictionary.CreateBuilder<int, BindOutcome>();
        foreach (var (key, route) in desired)
        {
            ListenerRuntime? existing;
            lock (_listeners)
            {
                _listeners.TryGetValue(key, out existing);
            }

            if (existing is not null)
            {
                if (!existing.Model.Route.Equals(route))
                {
                    existing.Model = newModel(route);
                    Log.RouteUpdated(logger, desired.Count, route.Port, LogText.Escape(existing.Model.Describe));
                }

                outcomes.TryAdd(route.Port, BindOutcome.Bound);
                continue;
            }

            // Listeners are per (port, addresses) but status is per port: a failure on any address wins.
            var outcome = await BindAsync(key, route, cancellationToken).ConfigureAwait(false);
            if (outcome.State == BindState.Failed || !outcomes.ContainsKey(route.Port))
            {
                outcomes[route.Port] = outcome;
            }
        }

        return outcomes.ToImmutable();
    }

    /// <summary>
    /// Stops accepting on every listener, lets open connections finish up to the drain timeout (or
    /// <paramref name="cancellationToken"/>), then closes what is left; listeners removed earlier and still draining
    /// end with the same token.
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        List<ListenerRuntime> all;
        lock (_listeners)
        {
            all = [.. _listeners.Values];
            _listeners.Clear();
        }

        foreach (var listener in all)
        {
            await UnbindAsync(listener).ConfigureAwait(false);
        }

        using var endDrainsEarly = cancellationToken.Register(static s => ((CancellationTokenSource)s!).Cancel(), _endDrains);
        await Task.WhenAll(all.Select(DrainAsync)).ConfigureAwait(false);
        await Task.WhenAll(_drains.Keys).ConfigureAwait(false);
    }

    private async Task<BindOutcome> BindAsync(BindKey key, ListenerRoute route, CancellationToken cancellationToken)
    {
        var sockets = new List<IConnectionListener>();
        try
        {
            foreach (var endPoint in key.EndPoints())
            {
                sockets.Add(await listenerFactory.BindAsync(endPoint, cancellationToken).ConfigureAwait(false));
            }
        }
        catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException)
        {
            foreach (var socket in sockets)
            {
                await socket.DisposeAsync().ConfigureAwait(false);
            }

            var reason = e is SocketException { SocketErrorCode: SocketError.AddressAlreadyInUse } ? "address already in use" : e.Message;
            Log.BindFailed(logger, route.Port, LogText.Escape(route.ListenerName), LogText.Escape(route.Gateway.ToString()), reason);
            return BindOutcome.Failed(reason);
        }

        var listener = new ListenerRuntime(key, sockets, newModel(route));
        lock (_listeners)
        {
            _listeners[key] = listener;
        }

        foreach (var socket in sockets)
        {
            Log.Listening(logger, socket.EndPoint, LogText.Escape(route.ListenerName), LogText.Escape(route.Gateway.ToString()));
            foreach (var shard in socket is IShardedConnectionListener sharded ? sharded.Shards : [socket])
            {
                listener.AcceptLoops.Add(AcceptLoopAsync(listener, shard));
            }
        }

        return BindOutcome.Bound;
    }

    private static async Task UnbindAsync(ListenerRuntime listener)
    {
        foreach (var socket in listener.Sockets)
        {
            await socket.UnbindAsync(CancellationToken.None).ConfigureAwait(false);
        }

        await Task.WhenAll(listener.AcceptLoops).ConfigureAwait(false);
        foreach (var socket in listener.Sockets)
        {
            await socket.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Waits up to the drain timeout (or until drains are ended early) for the listener's connections, then closes the rest.</summary>
    private async Task DrainAsync(ListenerRuntime listener)
    {
        Log.Unbound(logger, listener.Port, listener.ConnectionCount, drainTimeout);
        try
        {
            await listener.WhenDrained().WaitAsync(drainTimeout, time, _endDrains.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            Log.DrainDeadline(logger, listener.Port, listener.ConnectionCount);
            foreach (var connection in registry.Connections)
            {
                if (connection.Listener == listener)
                {
                    connection.Abort(TerminationReason.Drain);
                }
            }

            await listener.WhenDrained().ConfigureAwait(false);
        }
    }

    private async Task AcceptLoopAsync(ListenerRuntime listener, IConnectionListener socket)
    {
        // Accepting never runs on the caller of ApplyAsync.
        await Task.Yield();
        while (true)
        {
            IDuplexConnection? client;
            try
            {
                client = await socket.AcceptAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                // Accept failures that are not "unbound" (e.g. too many open files) must not end the listener:
                // log, back off briefly, go on.
                Log.AcceptFailed(logger, listener.Port, e.GetType().Name, e.Message);
                Log.AcceptFailedTrace(logger, e, listener.Port);
                await Task.Delay(TimeSpan.FromMilliseconds(50), time).ConfigureAwait(false);
                continue;
            }

            if (client is null)
            {
                return;
            }

            handler.Start(client, listener);
        }
    }

    private void Track(Task task)
    {
        _drains.TryAdd(task, 0);
        task.ContinueWith(static (t, state) => ((ConcurrentDictionary<Task, byte>)state!).TryRemove(t, out _), _drains, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }
}
