using System.Net;
using FsmGateway.Routing;

namespace FsmGateway.Transport.LoadBalancing;

/// <summary>
/// Chooses the endpoint of a backend for a new connection. The backend itself is chosen by weight before this runs;
/// the policy only picks among that backend's ready endpoints.
/// </summary>
public interface ILoadBalancingPolicy
{
    /// <summary>The policy's name, as configuration refers to it.</summary>
    string Name { get; }

    /// <summary>Picks one of <see cref="EndpointPickContext.Candidates"/>.</summary>
    /// <param name="context">The connection, the backend and the candidate endpoints (never empty).</param>
    /// <returns>The index of the chosen candidate.</returns>
    int Pick(EndpointPickContext context);
}

/// <summary>What a load-balancing policy knows when it picks. One context serves every attempt of one connection.</summary>
public sealed class EndpointPickContext
{
    private readonly BackendCounter _counter;
    private long _sequence = -1;

    internal EndpointPickContext(EndPoint? client, RouteBackend backend, IReadOnlyList<BackendEndpoint> candidates, BackendCounter counter)
    {
        Client = client;
        Backend = backend;
        Candidates = candidates;
        _counter = counter;
    }

    /// <summary>The client's address and port.</summary>
    public EndPoint? Client { get; }

    /// <summary>The backend being connected to.</summary>
    public RouteBackend Backend { get; }

    /// <summary>
    /// The endpoints to choose from: the backend's ready endpoints that passive health has not ejected (all of them
    /// when every one is ejected), less those that already failed for this connection.
    /// </summary>
    public IReadOnlyList<BackendEndpoint> Candidates { get; private set; }

    /// <summary>0 for the first connect attempt, 1 for the first retry, and so on.</summary>
    public int Attempt { get; private set; }

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

    /// <summary>Moves to the next attempt, with the candidates left after a failed connect.</summary>
    internal void Retry(IReadOnlyList<BackendEndpoint> candidates)
    {
        Candidates = candidates;
        Attempt++;
    }
}

/// <summary>A thread-safe counter kept per backend across routing-table updates.</summary>
internal sealed class BackendCounter
{
    private long _value = -1;

    public long Next() => Interlocked.Increment(ref _value) & long.MaxValue;
}
