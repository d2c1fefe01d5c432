namespace FsmGateway.Transport.LoadBalancing;

/// <summary>The names of the built-in load-balancing policies.</summary>
public static class LoadBalancingPolicies
{
    /// <summary>Each endpoint in turn (the default).</summary>
    public const string RoundRobin = "RoundRobin";
}

/// <summary>Each endpoint in turn, counted per backend.</summary>
internal sealed class RoundRobinPolicy : ILoadBalancingPolicy
{
    public string Name => LoadBalancingPolicies.RoundRobin;

    public int Pick(EndpointPickContext context) => (int)(context.NextSequence() % context.Candidates.Count);
}
