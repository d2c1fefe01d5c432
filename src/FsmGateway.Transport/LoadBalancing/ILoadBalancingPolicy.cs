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

/// <summary>What a load-balancing policy knows when it picks.</summary>
public sealed class EndpointPickContext
{
    private readonly BackendCounter _counter;

    internal EndpointPickContext(EndPoint? client, RouteBackend backend, IReadOnlyList<BackendEndpoint> candidates, int attempt, BackendCounter counter)
    {
        Client = client;
        Backend = backend;
        Candidates = candidates;
        Attempt = attempt;
        _counter = counter;
    }

    /// <summary>The client's address and port.</summary>
    public EndPoint? Client { get; }

    /// <summary>The backend being connected to.</summary>
    public RouteBackend Backend { get; }

    /// <summary>The endpoints to choose from: the backend's ready endpoints, less those that already failed for this connection.</summary>
    public IReadOnlyList<BackendEndpoint> Candidates { get; }

    /// <summary>0 for the first connect attempt, 1 for the first retry, and so on.</summary>
    public int Attempt { get; }

    /// <summary>A counter shared by every connection to this backend, incremented on each call; it survives config reloads.</summary>
    /// <returns>The next value, starting at 0.</returns>
    public long NextSequence() => _counter.Next();
}

/// <summary>A thread-safe counter kept per backend across routing-table updates.</summary>
internal sealed class BackendCounter
{
    private long _value = -1;

    public long Next() => Interlocked.Increment(ref _value);
}
