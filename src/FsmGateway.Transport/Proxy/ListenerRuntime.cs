using System.Net;
using FsmGateway.Resources;
using FsmGateway.Routing;
using FsmGateway.Transport.Concurrency;
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
    private readonly Lock _lock = new();
    private readonly StripedCounters _connections = new(1); // per stripe: connections from several cores never contend
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

    /// <summary>The connections accepted here and not yet released (they are held in the proxy's one <see cref="ConnectionRegistry"/>).</summary>
    public int ConnectionCount => (int)_connections.Sum(0);

    public void Add() => _connections.Increment(0);

    public void Remove()
    {
        _connections.Decrement(0);

        // Only once a drain waits: a stripe's count alone says nothing, so the stripes are summed. Every decrement
        // is a full fence, so of two last removers on different stripes at least one sees both, and sees 0 (no
        // connection is added once the listener no longer accepts, which is before anyone waits).
        if (Volatile.Read(ref _drained) is { } drained && ConnectionCount == 0)
        {
            drained.TrySetResult();
        }
    }

    /// <summary>Completes when the last connection has closed. Called once the listener accepts no more.</summary>
    public Task WhenDrained()
    {
        lock (_lock)
        {
            var drained = _drained;
            if (drained is null)
            {
                drained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                Interlocked.Exchange(ref _drained, drained); // a full fence: a Remove after it sees it, or this sees its decrement
            }

            if (ConnectionCount == 0)
            {
                drained.TrySetResult();
            }

            return drained.Task;
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
    public RouteModel(ListenerRoute route, ConnectionLimits limits, ClientAdmission? admission, int bufferSize, Func<RouteBackend, BackendTags, BackendRuntime> runtimeFor)
    {
        Route = route;
        Limits = limits;
        Admission = admission;
        BufferSize = bufferSize;
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

    /// <summary>The deadlines the heartbeat holds this listener's connections to.</summary>
    public ConnectionLimits Limits { get; }

    /// <summary>The client policy's checks on accepted connections, or <see langword="null"/> when it has none.</summary>
    public ClientAdmission? Admission { get; }

    /// <summary>The relay's buffer per direction: the most bytes held for one connection each way.</summary>
    public int BufferSize { get; }

    public WeightedBackendPicker Picker { get; }

    /// <summary>Each backend's runtime: endpoint states, available endpoints, round-robin counter.</summary>
    public Dictionary<RouteBackend, BackendRuntime> Backends { get; }

    public string Describe => Route.Route is { } route ? $"{route.Namespace}/{route.Name}" : "(no route)";
}

/// <summary>The deadlines of one listener's connections; <see langword="null"/> for none.</summary>
/// <param name="IdleTimeout">No bytes either way for this long closes the connection.</param>
/// <param name="HalfClosedTimeout">One direction ended and no bytes moved the other way for this long closes it.</param>
/// <param name="MaxConnectionDuration">Open this long closes it, however busy.</param>
internal sealed record ConnectionLimits(TimeSpan? IdleTimeout, TimeSpan? HalfClosedTimeout, TimeSpan? MaxConnectionDuration)
{
    /// <summary>The listener's client policy's deadlines where it sets them, the gateway's global ones otherwise.</summary>
    public static ConnectionLimits From(ProxyOptions options, ClientPolicy policy) =>
        new(policy.IdleTimeout ?? options.IdleTimeout, policy.HalfClosedTimeout ?? options.HalfClosedTimeout, policy.MaxConnectionDuration ?? options.MaxConnectionDuration);

    /// <summary>The shortest of the deadlines, or <see langword="null"/> when there is none.</summary>
    public TimeSpan? Shortest => new[] { IdleTimeout, HalfClosedTimeout, MaxConnectionDuration }.Where(static t => t is not null).Min();
}
