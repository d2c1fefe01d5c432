using System.Collections.Immutable;
using System.Reactive.Subjects;
using FsmGateway.Resources;
using FsmGateway.Routing;
using FsmGateway.Transport.Hosting;

namespace FsmGateway.Host.ControlPlane;

/// <summary>
/// What the data planes connected to this controller replica reported binding, as the compiler's listener-bindings
/// input: per Gateway and port, Failed when any of its data planes failed to bind the port (with that data plane's
/// error), Bound when every one bound it, else pending. A Gateway none of whose data planes is connected gets a
/// pending outcome saying so (and whether anything was provisioned), never Bound.
/// </summary>
internal sealed class DataPlaneReports : IListenerBindingsSource
{
    private readonly object _gate = new();
    private readonly Dictionary<long, Connection> _connections = [];
    private readonly BehaviorSubject<ListenerBindings> _bindings;
    private readonly BindOutcome _unreported;
    private long _nextId;

    public DataPlaneReports(bool provisions)
    {
        _unreported = new BindOutcome(BindState.Pending, provisions
            ? "no data plane of this Gateway has connected to the controller and reported yet"
            : "no data plane is provisioned for this Gateway (the controller runs without --image) and none has connected to the controller and reported");
        _bindings = new BehaviorSubject<ListenerBindings>(Compute());
    }

    public IObservable<ListenerBindings> Bindings => _bindings;

    /// <summary>Data planes connected now, for tests and logs.</summary>
    public int Connected
    {
        get
        {
            lock (_gate)
            {
                return _connections.Count;
            }
        }
    }

    public long Connect(ResourceKey gateway, string dataPlane)
    {
        lock (_gate)
        {
            var id = ++_nextId;
            _connections[id] = new Connection(gateway, dataPlane, Reported: null);
            Publish();
            return id;
        }
    }

    public void Report(long connection, ImmutableSortedDictionary<int, BindOutcome> outcomes)
    {
        lock (_gate)
        {
            if (_connections.TryGetValue(connection, out var current))
            {
                _connections[connection] = current with { Reported = outcomes };
                Publish();
            }
        }
    }

    public void Disconnect(long connection)
    {
        lock (_gate)
        {
            if (_connections.Remove(connection))
            {
                Publish();
            }
        }
    }

    private void Publish() => _bindings.OnNext(Compute());

    private ListenerBindings Compute()
    {
        var byGateway = ImmutableSortedDictionary.CreateBuilder<ResourceKey, ImmutableSortedDictionary<int, BindOutcome>>();
        foreach (var group in _connections.Values.GroupBy(static c => c.Gateway))
        {
            var planes = group.OrderBy(static c => c.DataPlane, StringComparer.Ordinal).ToList();
            var ports = planes.SelectMany(static c => c.Reported?.Keys ?? Enumerable.Empty<int>()).Distinct();
            var outcomes = ImmutableSortedDictionary.CreateBuilder<int, BindOutcome>();
            foreach (var port in ports)
            {
                var each = planes.Select(c => (c.DataPlane, Outcome: c.Reported?.GetValueOrDefault(port))).ToList();
                var failed = each.FirstOrDefault(static e => e.Outcome?.State == BindState.Failed);
                outcomes[port] = failed.Outcome is { } failure
                    ? BindOutcome.Failed(planes.Count == 1 ? failure.Message ?? "failed" : $"data plane {failed.DataPlane}: {failure.Message}")
                    : each.All(static e => e.Outcome?.State == BindState.Bound)
                        ? BindOutcome.Bound
                        : new BindOutcome(BindState.Pending, $"data plane {each.First(static e => e.Outcome?.State != BindState.Bound).DataPlane} has not bound it yet");
            }

            byGateway[group.Key] = outcomes.ToImmutable();
        }

        return ListenerBindings.Reported(byGateway.ToImmutable(), _unreported);
    }

    private sealed record Connection(ResourceKey Gateway, string DataPlane, ImmutableSortedDictionary<int, BindOutcome>? Reported);
}
