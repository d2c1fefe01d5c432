using System.Net;
using FsmGateway.Routing;
using FsmGateway.Transport.Proxy;

namespace FsmGateway.Transport.LoadBalancing;

/// <summary>
/// Chooses the endpoint of a backend for a new connection. The backend itself is chosen by weight before this runs;
/// the policy only picks among that backend's available endpoints. Policies are registered by name
/// (<see cref="FsmGatewayServiceCollectionExtensions.AddLoadBalancingPolicy{TPolicy}"/>) and resolved per backend
/// when a routing table is applied: a backend's <see cref="BackendPolicy.LoadBalancer"/> names a built-in one
/// (<see cref="LoadBalancingPolicies"/>), and backends with the default (<see cref="LoadBalancerAlgorithm.RoundRobin"/>)
/// use the policy that <see cref="ProxyOptions.LoadBalancingPolicy"/> names, which may be a custom one.
/// </summary>
/// <remarks>
/// <see cref="Pick"/> runs on the connection path, on whichever thread accepted the connection or completed a failed
/// connect: it must be thread-safe, must not block, and should not allocate.
/// </remarks>
public interface ILoadBalancingPolicy
{
    /// <summary>The policy's name, as configuration refers to it (compared ignoring case).</summary>
    string Name { get; }

    /// <summary>Picks one of <see cref="EndpointPickContext.Candidates"/>.</summary>
    /// <param name="context">The connection, the backend and the candidate endpoints (never empty). Valid only during the call: the proxy reuses it.</param>
    /// <returns>The index of the chosen candidate (an index out of range is clamped).</returns>
    int Pick(EndpointPickContext context);
}

/// <summary>
/// What a load-balancing policy knows when it picks. The proxy reuses one instance per thread: read it during
/// <see cref="ILoadBalancingPolicy.Pick"/>, never keep it.
/// </summary>
public sealed class EndpointPickContext
{
    [ThreadStatic]
    private static EndpointPickContext? _perThread;

    private BackendCounter _counter = null!;
    private long _sequence = -1;

    private EndpointPickContext()
    {
    }

    /// <summary>The client's address and port (the PROXY protocol source address, when the client sent one).</summary>
    public EndPoint? Client { get; private set; }

    /// <summary>The backend being connected to.</summary>
    public RouteBackend Backend { get; private set; } = null!;

    /// <summary>
    /// The endpoints to choose from: the backend's available endpoints (healthy and not ejected; all of them in
    /// panic mode), less those that already failed for this connection.
    /// </summary>
    public IReadOnlyList<BackendEndpoint> Candidates { get; private set; } = [];

    /// <summary>0 for the first connect attempt, 1 for the first retry, and so on.</summary>
    public int Attempt { get; private set; }

    /// <summary>Each candidate's runtime state, at the same index as <see cref="Candidates"/>.</summary>
    internal EndpointState[] States { get; private set; } = [];

    /// <summary>The backend's available set the candidates were taken from (for policies with per-set state: the Maglev table).</summary>
    internal AvailableEndpoints Available { get; private set; } = null!;

    /// <summary>The backend's runtime (its resolved settings and shared state).</summary>
    internal BackendRuntime Runtime { get; private set; } = null!;

    /// <summary>The sequence value drawn so far for this connection (-1 when none yet).</summary>
    internal long Sequence => _sequence;

    /// <summary>
    /// A counter shared by every connection to this backend that survives config reloads. Each connection draws one
    /// value, at its first call; later calls (a retry after a failed connect) return that value plus
    /// <see cref="Attempt"/>. So a failover never advances the shared counter: the next connection does not start on
    /// the endpoint that just failed because this one retried.
    /// </summary>
    /// <returns>This connection's value, starting at 0 for the first connection, plus the attempt number.</returns>
    public long NextSequence()
    {
        if (_sequence < 0)
        {
            _sequence = _counter.Next();
        }

        return _sequence + Attempt;
    }

    /// <summary>
    /// The calling thread's context, filled for one pick. <paramref name="sequence"/> carries a connection's drawn
    /// value from one attempt to the next (-1 before the first draw; read it back with <see cref="Sequence"/>).
    /// </summary>
    internal static EndpointPickContext For(
        EndPoint? client,
        BackendRuntime runtime,
        AvailableEndpoints available,
        BackendEndpoint[] candidates,
        EndpointState[] states,
        long sequence,
        int attempt)
    {
        var context = _perThread ??= new EndpointPickContext();
        context.Client = client;
        context.Runtime = runtime;
        context.Backend = runtime.Backend;
        context.Available = available;
        context.Candidates = candidates;
        context.States = states;
        context._counter = runtime.Health.Counter;
        context._sequence = sequence;
        context.Attempt = attempt;
        return context;
    }

    /// <summary>Drops the references of the last pick, so that a thread's context keeps no route model alive.</summary>
    internal void Clear()
    {
        Client = null;
        Runtime = null!;
        Backend = null!;
        Available = null!;
        Candidates = [];
        States = [];
        _counter = null!;
    }
}

/// <summary>A thread-safe counter kept per backend across routing-table updates.</summary>
internal sealed class BackendCounter
{
    private long _value = -1;

    public long Next() => Interlocked.Increment(ref _value) & long.MaxValue;
}
