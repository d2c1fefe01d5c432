using System.Collections.Concurrent;
using FsmGateway.Routing;
using FsmGateway.Transport.Health;

namespace FsmGateway.Transport.Proxy;

/// <summary>
/// Every endpoint's runtime state, keyed by backend Service port and endpoint address and port, kept across
/// routing-table updates. <see cref="Retain"/> runs after each apply and forgets what no serving route lists any more,
/// so an endpoint removed and re-added starts afresh, and the registry is bounded by the endpoints being served.
/// It also keeps each endpoint's active health per probe configuration, and tells the prober which to probe.
/// </summary>
internal sealed class EndpointRegistry(TimeProvider time, ActiveHealthProber? prober = null)
{
    private readonly ConcurrentDictionary<BackendKey, BackendHealth> _backends = new();
    private readonly ConcurrentDictionary<EndpointKey, EndpointState> _endpoints = new();
    private readonly ConcurrentDictionary<(EndpointKey Endpoint, ActiveHealthCheck Check), ActiveHealthState> _active = new();

    /// <summary>The endpoint states now kept (a moment's snapshot; safe to enumerate from any thread).</summary>
    public IEnumerable<EndpointState> Endpoints => _endpoints.Values;

    /// <summary>The state of <paramref name="endpoint"/> of <paramref name="key"/>, if kept.</summary>
    public EndpointState? Find(BackendKey key, BackendEndpoint endpoint) => _endpoints.GetValueOrDefault(new EndpointKey(key, endpoint));

    /// <summary>The runtime of one backend of a new route model: kept endpoint states where they exist, new ones otherwise.</summary>
    public BackendRuntime Runtime(RouteBackend backend, BackendTags tags, PassiveHealthSettings settings, BackendConnectSettings connect)
    {
        var health = _backends.GetOrAdd(BackendKey.Of(backend), static key => new BackendHealth(key));
        var endpoints = backend.Endpoints.Items;
        var states = new EndpointState[endpoints.Length];
        var check = backend.Policy.ActiveHealthCheck;
        var active = check is null ? null : new ActiveHealthState[endpoints.Length];
        for (var i = 0; i < states.Length; i++)
        {
            var state = states[i] = _endpoints.GetOrAdd(
                new EndpointKey(health.Key, endpoints[i]),
                static (key, state) => new EndpointState(key, state.health, state.time),
                (health, time));
            if (active is not null)
            {
                // Same endpoint, same check: the same state, so its health and probe schedule survive the reload. A
                // changed check starts from the endpoint's last active verdict (up when it had none), not from scratch.
                active[i] = _active.GetOrAdd((state.Key, check!), static (key, state) => new ActiveHealthState(state, key.Check, state.Active?.IsUp ?? true), state);
            }
        }

        var runtime = new BackendRuntime(backend, health, [.. endpoints], states, tags, PassiveHealthSettings.For(backend, settings), time, active) { Connect = connect };
        if (connect.Policy is LoadBalancing.ConsistentHashSourceIpPolicy && runtime.Available(out _) is { Endpoints.Length: > 0 } available)
        {
            // Built here, on the apply path, rather than by the first connection (on a socket-completion thread):
            // about a millisecond at 65537 slots, and shared with every later set of the same endpoints.
            available.Maglev(connect.ConsistentHashTableSize);
        }

        return runtime;
    }

    /// <summary>The active health states now kept.</summary>
    public IEnumerable<ActiveHealthState> ActiveStates => _active.Values;

    /// <summary>Forgets every backend and endpoint that none of <paramref name="models"/> routes to.</summary>
    public void Retain(IEnumerable<RouteModel> models)
    {
        var backends = new HashSet<BackendKey>();
        var endpoints = new HashSet<EndpointKey>();
        var active = new HashSet<ActiveHealthState>(ReferenceEqualityComparer.Instance);
        foreach (var model in models)
        {
            foreach (var runtime in model.Backends.Values)
            {
                backends.Add(runtime.Health.Key);
                foreach (var state in runtime.States)
                {
                    endpoints.Add(state.Key);
                }

                foreach (var probed in runtime.Active ?? [])
                {
                    active.Add(probed);
                }
            }
        }

        // Probing follows what is served: a state no route uses stops (its in-flight probe ends first), a new one starts.
        foreach (var (key, state) in _active)
        {
            if (!active.Contains(state))
            {
                _active.TryRemove(key, out _);
                state.Retire();
            }
        }

        foreach (var state in active)
        {
            state.Endpoint.Active = state;
            prober?.Add(state);
        }

        foreach (var key in _endpoints.Keys)
        {
            if (!endpoints.Contains(key))
            {
                _endpoints.TryRemove(key, out _);
            }
        }

        foreach (var key in _backends.Keys)
        {
            if (!backends.Contains(key))
            {
                _backends.TryRemove(key, out _);
            }
        }
    }
}

/// <summary>
/// One backend of one route model: its endpoints' shared states and the set of endpoints a new connection may pick
/// from. That set is cached and recomputed only when one of the backend's endpoints is ejected or an ejection ends,
/// so the connection path reads it without a lock and without allocating.
/// </summary>
internal sealed class BackendRuntime
{
    private readonly TimeProvider _time;
    private volatile AvailableEndpoints _available;

    public BackendRuntime(RouteBackend backend, BackendHealth health, BackendEndpoint[] endpoints, EndpointState[] states, BackendTags tags, PassiveHealthSettings settings, TimeProvider time, ActiveHealthState[]? active = null)
    {
        Active = active;
        Backend = backend;
        Health = health;
        States = states;
        Tags = tags;
        PassiveHealth = settings;
        _time = time;
        _available = new AvailableEndpoints(endpoints, states, version: -1, nextChange: long.MinValue, panic: false);
        _available = Refresh(out _);
    }

    public RouteBackend Backend { get; }

    public BackendHealth Health { get; }

    /// <summary>Every listed endpoint's state, in the order of the backend's endpoints.</summary>
    public EndpointState[] States { get; }

    public BackendTags Tags { get; }

    public PassiveHealthSettings PassiveHealth { get; }

    /// <summary>Each endpoint's active health under this backend's check, at the index of <see cref="States"/>; null without a check.</summary>
    public ActiveHealthState[]? Active { get; }

    /// <summary>The backend's panic threshold in percent (null: panic only when no endpoint is healthy).</summary>
    public int? PanicThresholdPercent => Backend.Policy.PanicThresholdPercent;

    /// <summary>How many endpoints are ejected by passive health at <paramref name="now"/>.</summary>
    public int EjectedCount(long now)
    {
        var count = 0;
        foreach (var state in States)
        {
            if (state.IsEjected(now))
            {
                count++;
            }
        }

        return count;
    }

    /// <summary>Whether the endpoint at <paramref name="index"/> of <see cref="States"/> may take new connections (outside panic mode).</summary>
    private bool IsHealthy(int index, long now) => !States[index].IsEjected(now) && Active?[index] is not { IsUp: false };

    /// <summary>How connections pick an endpoint and connect: the backend's policy, resolved at apply time.</summary>
    public required BackendConnectSettings Connect { get; init; }

    /// <summary>The endpoints a new connection may pick from now.</summary>
    /// <param name="panicChanged">Whether this call found the backend entering or leaving panic mode.</param>
    /// <returns>The set.</returns>
    public AvailableEndpoints Available(out bool panicChanged)
    {
        var current = _available;
        if (current.Version == Health.Version && (current.NextChange == long.MaxValue || _time.GetTimestamp() < current.NextChange))
        {
            panicChanged = false;
            return current;
        }

        return Refresh(out panicChanged);
    }

    private AvailableEndpoints Refresh(out bool panicChanged)
    {
        // The version is read before the states: an ejection after this read moves it again, and the next pick refreshes.
        var version = Health.Version;
        var now = _time.GetTimestamp();
        var previous = _available;
        var all = previous.All;
        var healthy = 0;
        var nextChange = long.MaxValue;
        for (var i = 0; i < States.Length; i++)
        {
            if (States[i].IsEjected(now))
            {
                nextChange = Math.Min(nextChange, States[i].EjectedUntil);
            }

            if (IsHealthy(i, now))
            {
                healthy++;
            }
        }

        // Panic mode, as Envoy's: with fewer endpoints healthy than the threshold (by default: none), health says
        // little about which is better, and piling every client onto the few (or refusing them all) would turn a
        // flapping backend into an outage. Every endpoint is offered again. A threshold of 0 turns it off.
        var panic = all.Length > 0 && (PanicThresholdPercent is { } threshold ? healthy * 100L < threshold * (long)all.Length : healthy == 0);
        AvailableEndpoints next;
        if (healthy == all.Length || panic)
        {
            next = new AvailableEndpoints(all, States, version, nextChange, panic) { All = all, Healthy = healthy };
        }
        else
        {
            var endpoints = new BackendEndpoint[healthy];
            var states = new EndpointState[healthy];
            var j = 0;
            for (var i = 0; i < States.Length; i++)
            {
                if (IsHealthy(i, now))
                {
                    endpoints[j] = all[i];
                    states[j++] = States[i];
                }
            }

            next = new AvailableEndpoints(endpoints, states, version, nextChange, panic: false) { All = all, Healthy = healthy };
        }

        panicChanged = next.Panic != previous.Panic && previous.Version != -1;
        _available = next;
        return next;
    }
}

/// <summary>An immutable set of endpoints to pick from, with each one's state at the same index.</summary>
internal sealed class AvailableEndpoints(BackendEndpoint[] endpoints, EndpointState[] states, int version, long nextChange, bool panic)
{
    private LoadBalancing.MaglevTable? _maglev;

    /// <summary>The endpoints to pick from.</summary>
    public BackendEndpoint[] Endpoints { get; } = endpoints;

    /// <summary>Each endpoint's state, at the same index.</summary>
    public EndpointState[] States { get; } = states;

    /// <summary>
    /// The Maglev table over <see cref="Endpoints"/>, built on first use after the set changed (shared with any other
    /// set of the same endpoints of the backend), never per connection.
    /// </summary>
    public LoadBalancing.MaglevTable Maglev(int size)
    {
        var table = Volatile.Read(ref _maglev);
        if (table is null || table.Size != size)
        {
            table = (States.Length > 0 ? States[0].Backend.Maglev(Endpoints, size) : null) ?? LoadBalancing.MaglevTable.Build(Endpoints, size);
            Volatile.Write(ref _maglev, table);
        }

        return table;
    }

    /// <summary>Every listed endpoint of the backend, ejected or not.</summary>
    public BackendEndpoint[] All { get; init; } = endpoints;

    /// <summary>The backend's <see cref="BackendHealth.Version"/> this set was computed at.</summary>
    public int Version { get; } = version;

    /// <summary>When the first ejection ends (a <see cref="TimeProvider"/> timestamp): the set is stale from then; <see cref="long.MaxValue"/> when none is ejected.</summary>
    public long NextChange { get; } = nextChange;

    /// <summary>Fewer endpoints are healthy than the panic threshold (by default: none), so every endpoint is offered (panic mode).</summary>
    public bool Panic { get; } = panic;

    /// <summary>How many endpoints were healthy (neither ejected nor down) when the set was computed.</summary>
    public int Healthy { get; init; }
}
