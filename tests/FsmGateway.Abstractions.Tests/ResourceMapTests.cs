using FsmGateway.Resources;

namespace FsmGateway.Abstractions.Tests;

public sealed class ResourceMapTests
{
    private static ResourceKey Key(Random random) =>
        new((ResourceKind)random.Next(3), $"ns{random.Next(4)}", $"n{random.Next(40)}");

    private static void AssertSame(SortedDictionary<ResourceKey, int> expected, ResourceMap<int> map, Random random)
    {
        Assert.Equal(expected.ToList(), map.ToList());
        Assert.Equal(expected.Keys, map.Keys);
        Assert.Equal(expected.Values, map.Values);
        Assert.Equal(expected.Count, map.Count);
        for (var i = 0; i < 50; i++)
        {
            var key = Key(random);
            Assert.Equal(expected.TryGetValue(key, out var want), map.TryGetValue(key, out var got));
            Assert.Equal(want, got);
            Assert.Equal(expected.ContainsKey(key), map.ContainsKey(key));
            if (expected.ContainsKey(key))
            {
                Assert.Equal(want, map[key]);
            }
            else
            {
                Assert.Throws<KeyNotFoundException>(() => map[key]);
            }
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Create_AndSetItems_AgreeWithASortedDictionary(int seed)
    {
        var random = new Random(seed);
        var expected = new SortedDictionary<ResourceKey, int>();
        for (var i = 0; i < 200; i++)
        {
            expected[Key(random)] = random.Next();
        }

        // Shuffled input is sorted; sorted input (a sorted dictionary's, as the compiler's stages give it) is taken as it comes.
        var shuffled = expected.OrderBy(_ => random.Next()).ToList();
        AssertSame(expected, ResourceMap.Create(shuffled), random);
        var map = ResourceMap.Create(expected);
        AssertSame(expected, map, random);

        for (var step = 0; step < 100; step++)
        {
            // Keys to change, some twice, some new; the source has values for some of them and for keys not asked for.
            var keys = Enumerable.Range(0, random.Next(0, 12)).Select(_ => random.Next(3) == 0 && expected.Count > 0 ? expected.Keys.ElementAt(random.Next(expected.Count)) : Key(random)).ToList();
            keys.AddRange(keys.Take(random.Next(3)));
            var source = new Dictionary<ResourceKey, int>();
            foreach (var key in keys.Where(_ => random.Next(2) == 0).Append(Key(random)))
            {
                source[key] = random.Next();
            }

            foreach (var key in keys)
            {
                if (source.TryGetValue(key, out var value))
                {
                    expected[key] = value;
                }
                else
                {
                    expected.Remove(key);
                }
            }

            var before = map.ToList();
            var next = map.SetItems(keys, source);
            Assert.Equal(before, map.ToList());
            map = next;
            AssertSame(expected, map, random);
        }
    }

    [Fact]
    public void Create_RefusesAKeyTwice_NamingIt()
    {
        var key = new ResourceKey(ResourceKind.TcpRoute, "apps", "r");
        var other = new ResourceKey(ResourceKind.TcpRoute, "apps", "a");
        var error = Assert.Throws<ArgumentException>(() => ResourceMap.Create([new(key, 1), new(other, 2), new KeyValuePair<ResourceKey, int>(key, 3)]));
        Assert.Contains("TCPRoute apps/r", error.Message, StringComparison.Ordinal);
        Assert.Equal("items", error.ParamName);
    }

    [Fact]
    public void SetItem_AddsOrReplaces_AndEmptyChangesReturnTheSameMap()
    {
        var a = new ResourceKey(ResourceKind.Gateway, "apps", "a");
        var b = new ResourceKey(ResourceKind.Gateway, "apps", "b");
        var map = ResourceMap<string>.Empty.SetItem(b, "b").SetItem(a, "a").SetItem(b, "B");
        Assert.Equal([new(a, "a"), new KeyValuePair<ResourceKey, string>(b, "B")], map.ToList());
        Assert.Same(map, map.SetItems([], new Dictionary<ResourceKey, string>()));
        Assert.Same(ResourceMap<string>.Empty, map.SetItems([a, b], new Dictionary<ResourceKey, string>()));
        Assert.Same(map, ResourceMap.Create(map));
    }

    [Fact]
    public void Keys_AndValues_CannotBeWrittenThrough()
    {
        var map = ResourceMap.Create([new KeyValuePair<ResourceKey, string>(new ResourceKey(ResourceKind.Gateway, "apps", "a"), "a")]);
        Assert.IsNotType<ResourceKey[]>(map.Keys);
        Assert.IsNotType<string[]>(map.Values);
        Assert.Throws<NotSupportedException>(() => ((IList<string>)map.Values)[0] = "b");
        Assert.Equal("a", map.Values.Single());
    }
}
