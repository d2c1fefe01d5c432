using System.Net;
using FsmGateway.Routing;
using FsmGateway.Transport.LoadBalancing;

namespace FsmGateway.Transport.Tests;

/// <summary>
/// The load-balancing algorithms without sockets: the Maglev table's spread and how little of it moves when the
/// endpoint set changes, the source-IP hash, and resolving policies by name per backend.
/// </summary>
public sealed class LoadBalancingPolicyTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(10)]
    [InlineData(100)]
    public void Maglev_GivesEveryEndpointAnEqualShareOfSlots(int count)
    {
        var table = MaglevTable.Build(Endpoints(count), BackendPolicy.DefaultTableSize);

        var shares = Shares(table, count);
        Assert.Equal(BackendPolicy.DefaultTableSize, shares.Sum());
        // Filled in turns, one slot per endpoint per turn: the shares differ by one at most.
        Assert.True(shares.Max() - shares.Min() <= 1, $"shares from {shares.Min()} to {shares.Max()}");
    }

    [Fact]
    public void Maglev_SameEndpoints_SameTable_WhateverTheProcess()
    {
        // The permutations hash only address and port with fixed seeds: every replica builds this very table.
        var table = MaglevTable.Build(Endpoints(3), 13);

        Assert.Equal("0,2,1,2,2,1,0,0,0,1,2,0,1", string.Join(',', Enumerable.Range(0, table.Size).Select(i => table[i])));
    }

    [Theory]
    [InlineData(3)]
    [InlineData(10)]
    [InlineData(50)]
    public void Maglev_OneEndpointRemoved_MovesLittleMoreThanItsOwnSlots(int count)
    {
        var endpoints = Endpoints(count);
        var before = MaglevTable.Build(endpoints, BackendPolicy.DefaultTableSize);
        var removed = endpoints[count / 2];
        var after = MaglevTable.Build([.. endpoints.Where(e => e != removed)], BackendPolicy.DefaultTableSize);

        var (kept, moved) = Compare(before, after, removed);

        // Only the removed endpoint's slots had to move; Maglev moves a little more (the paper's trade for an even spread).
        var unnecessary = (double)moved / (kept + moved);
        Assert.True(unnecessary < 0.02, $"{unnecessary:P2} of the slots of endpoints still there moved");
    }

    [Theory]
    [InlineData(3)]
    [InlineData(10)]
    public void Maglev_OneEndpointAdded_TakesItsShare_TheRestStay(int count)
    {
        var endpoints = Endpoints(count + 1);
        var added = endpoints[count / 2];
        var before = MaglevTable.Build([.. endpoints.Where(e => e != added)], BackendPolicy.DefaultTableSize);
        var after = MaglevTable.Build(endpoints, BackendPolicy.DefaultTableSize);

        var toNew = Enumerable.Range(0, after.Size).Count(i => after.Endpoints[after[i]] == added);
        var (kept, moved) = Compare(after, before, added);

        Assert.InRange((double)toNew / after.Size, 0.95 / (count + 1), 1.05 / (count + 1));
        Assert.True((double)moved / (kept + moved) < 0.02, $"{moved} of {kept + moved} slots moved between endpoints that were there before and after");
    }

    [Fact]
    public void SourceIpHash_Ipv4AndItsMappedIpv6Form_HashTheSame_PortIgnored()
    {
        var v4 = SourceIpHash.Of(new IPEndPoint(IPAddress.Parse("127.3.4.5"), 1000));
        var mapped = SourceIpHash.Of(new IPEndPoint(IPAddress.Parse("::ffff:127.3.4.5"), 2000));

        Assert.NotNull(v4);
        Assert.Equal(v4, mapped);
        Assert.NotEqual(v4, SourceIpHash.Of(new IPEndPoint(IPAddress.Parse("127.3.4.6"), 1000)));
        Assert.Null(SourceIpHash.Of(new DnsEndPoint("example.com", 80)));
        Assert.Null(SourceIpHash.Of(null));
    }

    [Fact]
    public void Registry_DefaultAlgorithm_IsTheConfiguredPolicy_OthersAreBuiltIn()
    {
        var custom = new AlwaysLast();
        var registry = new LoadBalancingPolicyRegistry([new RoundRobinPolicy(), custom], "always-last");

        Assert.Same(custom, registry.For(LoadBalancerAlgorithm.RoundRobin));
        Assert.IsType<LeastRequestPolicy>(registry.For(LoadBalancerAlgorithm.LeastRequest));
        Assert.IsType<RandomPolicy>(registry.For(LoadBalancerAlgorithm.Random));
        Assert.IsType<ConsistentHashSourceIpPolicy>(registry.For(LoadBalancerAlgorithm.ConsistentHashSourceIP));
        Assert.IsType<RoundRobinPolicy>(registry.Find("roundrobin"));
    }

    [Fact]
    public void Registry_RegisteredPolicyWithABuiltInName_ReplacesIt()
    {
        var mine = new NamedAs(LoadBalancingPolicies.LeastRequest);

        var registry = new LoadBalancingPolicyRegistry([mine], LoadBalancingPolicies.RoundRobin);

        Assert.Same(mine, registry.For(LoadBalancerAlgorithm.LeastRequest));
        Assert.IsType<RoundRobinPolicy>(registry.Default);
    }

    [Fact]
    public void Registry_UnknownDefaultName_Or_TwoPoliciesOfOneName_AreErrorsNamingThem()
    {
        var unknown = Assert.Throws<ArgumentException>(() => new LoadBalancingPolicyRegistry([], "Fastest"));
        Assert.Contains("No load-balancing policy named 'Fastest'", unknown.Message, StringComparison.Ordinal);
        Assert.Contains("ConsistentHashSourceIP, LeastRequest, Random, RoundRobin", unknown.Message, StringComparison.Ordinal);

        var twice = Assert.Throws<ArgumentException>(() => new LoadBalancingPolicyRegistry([new AlwaysLast(), new NamedAs("always-last")], LoadBalancingPolicies.RoundRobin));
        Assert.Contains("'always-last'", twice.Message, StringComparison.Ordinal);
    }

    private static BackendEndpoint[] Endpoints(int count) =>
        [.. Enumerable.Range(1, count).Select(static i => new BackendEndpoint($"10.1.{i / 250}.{i % 250}", 8080)).Order()];

    private static int[] Shares(MaglevTable table, int count)
    {
        var shares = new int[count];
        for (var i = 0; i < table.Size; i++)
        {
            shares[table[i]]++;
        }

        return shares;
    }

    /// <summary>Slot by slot, among slots <paramref name="from"/> gives to an endpoint other than <paramref name="except"/>: same endpoint in <paramref name="to"/>, or another.</summary>
    private static (int Kept, int Moved) Compare(MaglevTable from, MaglevTable to, BackendEndpoint except)
    {
        int kept = 0, moved = 0;
        for (var i = 0; i < from.Size; i++)
        {
            var endpoint = from.Endpoints[from[i]];
            if (endpoint == except || to.Endpoints[to[i]] == except)
            {
                continue;
            }

            if (to.Endpoints[to[i]] == endpoint)
            {
                kept++;
            }
            else
            {
                moved++;
            }
        }

        return (kept, moved);
    }

    private sealed class AlwaysLast : ILoadBalancingPolicy
    {
        public string Name => "always-last";

        public int Pick(EndpointPickContext context) => context.Candidates.Count - 1;
    }

    private sealed class NamedAs(string name) : ILoadBalancingPolicy
    {
        public string Name => name;

        public int Pick(EndpointPickContext context) => 0;
    }
}
