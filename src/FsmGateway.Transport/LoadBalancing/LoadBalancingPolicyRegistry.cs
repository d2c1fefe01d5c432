using System.Collections.Frozen;
using FsmGateway.Routing;

namespace FsmGateway.Transport.LoadBalancing;

/// <summary>
/// The load-balancing policies by name (YARP's policy registry): the built-in ones, replaced by any registered policy
/// of the same name, plus custom ones. Resolved once per backend when a routing table is applied, never per
/// connection: a backend's <see cref="BackendPolicy.LoadBalancer"/> names a built-in policy, and the default
/// (<see cref="LoadBalancerAlgorithm.RoundRobin"/>) means the policy the proxy's options name, which may be custom.
/// </summary>
internal sealed class LoadBalancingPolicyRegistry
{
    private readonly FrozenDictionary<string, ILoadBalancingPolicy> _byName;
    private readonly ILoadBalancingPolicy[] _byAlgorithm;

    /// <summary>Builds the registry.</summary>
    /// <param name="registered">The registered policies (through DI, or given to the proxy by hand).</param>
    /// <param name="defaultName">The policy for backends with the default algorithm (<c>ProxyOptions.LoadBalancingPolicy</c>).</param>
    /// <exception cref="ArgumentException">Two registered policies have one name, or none has <paramref name="defaultName"/>.</exception>
    public LoadBalancingPolicyRegistry(IEnumerable<ILoadBalancingPolicy> registered, string defaultName)
    {
        var byName = new Dictionary<string, ILoadBalancingPolicy>(StringComparer.OrdinalIgnoreCase);
        foreach (var policy in registered)
        {
            if (!byName.TryAdd(policy.Name, policy) && byName[policy.Name].GetType() != policy.GetType())
            {
                throw new ArgumentException($"Two load-balancing policies are registered with the name '{policy.Name}': {byName[policy.Name].GetType()} and {policy.GetType()}", nameof(registered));
            }
        }

        foreach (var builtIn in BuiltIn())
        {
            byName.TryAdd(builtIn.Name, builtIn);
        }

        _byName = byName.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);
        Default = _byName.GetValueOrDefault(defaultName)
            ?? throw new ArgumentException(
                $"No load-balancing policy named '{defaultName}' is registered; known: {string.Join(", ", _byName.Keys.Order(StringComparer.Ordinal))}",
                nameof(defaultName));
        _byAlgorithm = [.. Enum.GetValues<LoadBalancerAlgorithm>().Select(a => a == LoadBalancerAlgorithm.RoundRobin ? Default : _byName[a.ToString()])];
    }

    /// <summary>The policy for backends with the default algorithm.</summary>
    public ILoadBalancingPolicy Default { get; }

    /// <summary>The policy a backend's algorithm selects.</summary>
    public ILoadBalancingPolicy For(LoadBalancerAlgorithm algorithm) =>
        (uint)algorithm < (uint)_byAlgorithm.Length ? _byAlgorithm[(int)algorithm] : Default;

    /// <summary>The policy named <paramref name="name"/>, if registered.</summary>
    public ILoadBalancingPolicy? Find(string name) => _byName.GetValueOrDefault(name);

    /// <summary>The built-in policies, one per <see cref="LoadBalancerAlgorithm"/>.</summary>
    public static IEnumerable<ILoadBalancingPolicy> BuiltIn() =>
        [new RoundRobinPolicy(), new LeastRequestPolicy(), new RandomPolicy(), new ConsistentHashSourceIpPolicy()];
}
