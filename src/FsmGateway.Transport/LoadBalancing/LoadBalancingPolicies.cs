using FsmGateway.Routing;

namespace FsmGateway.Transport.LoadBalancing;

/// <summary>
/// The names of the built-in load-balancing policies: the names of <see cref="LoadBalancerAlgorithm"/>'s members, which
/// a backend's <see cref="BackendPolicy.LoadBalancer"/> selects. A registered policy with one of these names replaces
/// the built-in one.
/// </summary>
public static class LoadBalancingPolicies
{
    /// <summary>Each endpoint in turn (the default).</summary>
    public const string RoundRobin = nameof(LoadBalancerAlgorithm.RoundRobin);

    /// <summary>The endpoint with fewer active connections of two picked at random (power of two choices).</summary>
    public const string LeastRequest = nameof(LoadBalancerAlgorithm.LeastRequest);

    /// <summary>An endpoint at random.</summary>
    public const string Random = nameof(LoadBalancerAlgorithm.Random);

    /// <summary>
    /// The endpoint a Maglev table over the available endpoints gives the client's IP address: a client keeps its
    /// endpoint, and a change of the available set moves only about the changed share of clients.
    /// </summary>
    public const string ConsistentHashSourceIP = nameof(LoadBalancerAlgorithm.ConsistentHashSourceIP);
}

/// <summary>Each endpoint in turn, counted per backend.</summary>
internal sealed class RoundRobinPolicy : ILoadBalancingPolicy
{
    public string Name => LoadBalancingPolicies.RoundRobin;

    public int Pick(EndpointPickContext context) => (int)(context.NextSequence() % context.Candidates.Count);
}

/// <summary>
/// Power of two choices on each endpoint's active connections (counted across listeners): two distinct candidates at
/// random, the one with fewer connections wins (the first on a tie). Envoy's and HAProxy's answer to "least
/// connections" without a scan of every endpoint or a herd onto the one that just became least loaded.
/// </summary>
internal sealed class LeastRequestPolicy : ILoadBalancingPolicy
{
    public string Name => LoadBalancingPolicies.LeastRequest;

    public int Pick(EndpointPickContext context)
    {
        var count = context.Candidates.Count;
        if (count == 1)
        {
            return 0;
        }

        var states = context.States;
        if (states.Length != count)
        {
            // Only the proxy builds contexts, always with states; a context without them gets an even spread.
            return System.Random.Shared.Next(count);
        }

        var first = System.Random.Shared.Next(count);
        var second = System.Random.Shared.Next(count - 1);
        if (second >= first)
        {
            second++;
        }

        return states[second].ActiveConnections < states[first].ActiveConnections ? second : first;
    }
}

/// <summary>A candidate at random (<see cref="System.Random.Shared"/>: thread-safe, no lock).</summary>
internal sealed class RandomPolicy : ILoadBalancingPolicy
{
    public string Name => LoadBalancingPolicies.Random;

    public int Pick(EndpointPickContext context) => System.Random.Shared.Next(context.Candidates.Count);
}

/// <summary>
/// Source-IP affinity through a Maglev table built over the backend's available endpoints (see
/// <see cref="MaglevTable"/>). The table is built when the available set changes, never per connection; a retry
/// walks on from the client's slot to the next endpoint still a candidate, so a client whose endpoint failed lands
/// where the table would put it once that endpoint is ejected.
/// </summary>
internal sealed class ConsistentHashSourceIpPolicy : ILoadBalancingPolicy
{
    public string Name => LoadBalancingPolicies.ConsistentHashSourceIP;

    public int Pick(EndpointPickContext context)
    {
        if (SourceIpHash.Of(context.Client) is not { } hash)
        {
            // No IP address to hash (a Unix socket, a test connection): spread in turn.
            return (int)(context.NextSequence() % context.Candidates.Count);
        }

        var available = context.Available;
        if (available is null)
        {
            return (int)(hash % (ulong)context.Candidates.Count);
        }

        var table = available.Maglev(context.Runtime.Connect.ConsistentHashTableSize);
        var slot = (int)(hash % (ulong)table.Size);
        if (ReferenceEquals(context.Candidates, available.Endpoints))
        {
            return table[slot];
        }

        // A retry: the candidates are the available set less the endpoints that failed for this connection.
        var candidates = context.Candidates;
        for (var step = 0; step < table.Size; step++)
        {
            var endpoint = available.Endpoints[table[(slot + step) % table.Size]];
            for (var i = 0; i < candidates.Count; i++)
            {
                if (candidates[i] == endpoint)
                {
                    return i;
                }
            }
        }

        return 0;
    }
}
