using System.Collections.Concurrent;
using System.Net;
using FsmGateway.Resources;
using FsmGateway.Routing;
using FsmGateway.Transport.Connections;
using FsmGateway.Transport.LoadBalancing;

namespace FsmGateway.Transport.Proxy;

/// <summary>
/// A listening port that lives across routing-table updates: its sockets and connections stay while its
/// <see cref="Model"/> (route, backends, endpoints) is swapped atomically. New connections see the new model; live
/// ones keep the upstream they have.
/// </summary>
internal sealed class ListenerRuntime(BindKey key, IReadOnlyList<IConnectionListener> sockets, RouteModel model)
{
    private readonly ConcurrentDictionary<ProxiedConnection, byte> _connections = new();
    private TaskCompletionSource? _drained;
    private volatile RouteModel _model = model;

    public BindKey Key { get; } = key;

    public int Port => Key.Port;

    public IReadOnlyList<IConnectionListener> Sockets { get; } = sockets;

    public RouteModel Model
    {
        get => _model;
        set => _model = value;
    }

    public List<Task> AcceptLoops { get; } = [];

    public int ConnectionCount => _connections.Count;

    public IEnumerable<ProxiedConnection> Connections => _connections.Keys;

    public void Add(ProxiedConnection connection) => _connections.TryAdd(connection, 0);

    public void Remove(ProxiedConnection connection)
    {
        _connections.TryRemove(connection, out _);
        lock (_connections)
        {
            if (_connections.IsEmpty)
            {
                _drained?.TrySetResult();
            }
        }
    }

    /// <summary>Completes when the last connection has closed.</summary>
    public Task WhenDrained()
    {
        // The lock pairs with Remove: either Remove sees the new source, or this sees the set empty.
        lock (_connections)
        {
            _drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (_connections.IsEmpty)
            {
                _drained.TrySetResult();
            }

            return _drained.Task;
        }
    }
}

/// <summary>Which sockets a listener holds: its port and addresses (empty for every address).</summary>
internal readonly record struct BindKey(int Port, EquatableArray<string> Addresses)
{
    public static BindKey Of(ListenerRoute route) => new(route.Port, route.Addresses);

    public IEnumerable<EndPoint> EndPoints()
    {
        if (Addresses.IsEmpty)
        {
            yield return System.Net.Sockets.Socket.OSSupportsIPv6 ? new IPEndPoint(IPAddress.IPv6Any, Port) : new IPEndPoint(IPAddress.Any, Port);
            yield break;
        }

        foreach (var address in Addresses)
        {
            yield return new IPEndPoint(IPAddress.Parse(address), Port);
        }
    }
}

/// <summary>
/// The immutable routing state of one listener: its route's backends, the weighted picker, and each backend's runtime
/// (the endpoint states and round-robin counter it shares with other listeners, kept across routing-table updates).
/// </summary>
internal sealed class RouteModel
{
    public RouteModel(ListenerRoute route, Func<RouteBackend, BackendTags, BackendRuntime> runtimeFor)
    {
        Route = route;
        Picker = new WeightedBackendPicker(route.Backends);
        // Keyed by instance: the picker hands out these very objects, and hashing a backend by value (its endpoint
        // list included) on every connection would put that work on the hot path.
        Backends = new Dictionary<RouteBackend, BackendRuntime>(ReferenceEqualityComparer.Instance);
        Tags = new Dictionary<RouteBackend, BackendTags>(ReferenceEqualityComparer.Instance);
        foreach (var backend in route.Backends)
        {
            var tags = new BackendTags(route.Route, backend);
            Tags[backend] = tags;
            Backends[backend] = runtimeFor(backend, tags);
        }

        ListenerTags = new ListenerTags(route);
    }

    /// <summary>The listener's metric tags.</summary>
    public ListenerTags ListenerTags { get; }

    /// <summary>Each backend's metric tags, keyed by instance as <see cref="Backends"/> is.</summary>
    public Dictionary<RouteBackend, BackendTags> Tags { get; }

    public ListenerRoute Route { get; }

    public WeightedBackendPicker Picker { get; }

    /// <summary>Each backend's runtime: endpoint states, available endpoints, round-robin counter.</summary>
    public Dictionary<RouteBackend, BackendRuntime> Backends { get; }

    public string Describe => Route.Route is { } route ? $"{route.Namespace}/{route.Name}" : "(no route)";
}
