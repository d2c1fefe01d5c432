using FsmGateway.Resources;

namespace FsmGateway.Abstractions.Tests;

public sealed class ResourceMapTests
{
    private static ResourceKey Key(Random random, int names) =>
        new((ResourceKind)random.Next(3), $"ns{random.Next(4)}", $"n{random.Next(names)}");

    private static void AssertSame(SortedDictionary<ResourceKey, int> expected, ResourceMap<int> map, Random random, int names)
    {
        Assert.Equal(expected.ToList(), map.ToList());
        Assert.Equal(expected.Keys, map.Keys);
        Assert.Equal(expected.Values, map.Values);
        Assert.Equal(expected.Count, map.Count);
        Assert.All(expected, pair => Assert.Equal(pair.Value, map[pair.Key]));
        AssertChunkSizes(map);
        for (var i = 0; i < 50; i++)
        {
            var key = Key(random, names);
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

    /// <summary>No chunk is empty or larger than twice the chunk size, and in a map of several none is under a quarter of it.</summary>
    private static void AssertChunkSizes<T>(ResourceMap<T> map)
    {
        var lengths = map.ChunkLengths;
        Assert.All(lengths, length => Assert.InRange(length, lengths.Length == 1 ? 1 : ResourceMap<T>.ChunkSize / 4, 2 * ResourceMap<T>.ChunkSize));
    }

    /// <summary>Small maps (one chunk) and large ones (many chunks, changes in several at once, chunks split and emptied).</summary>
    [Theory]
    [InlineData(1, 200, 12)]
    [InlineData(2, 200, 12)]
    [InlineData(3, 6000, 40)]
    [InlineData(4, 6000, 3000)]
    public void Create_AndSetItems_AgreeWithASortedDictionary(int seed, int size, int changesUpTo)
    {
        var random = new Random(seed);
        var names = Math.Max(40, size / 2);
        var expected = new SortedDictionary<ResourceKey, int>();
        for (var i = 0; i < size; i++)
        {
            expected[Key(random, names)] = random.Next();
        }

        // Shuffled input is sorted; sorted input (a sorted dictionary's, as the compiler's stages give it) is taken as it comes.
        var shuffled = expected.OrderBy(_ => random.Next()).ToList();
        AssertSame(expected, ResourceMap.Create(shuffled), random, names);
        var map = ResourceMap.Create(expected);
        AssertSame(expected, map, random, names);

        for (var step = 0; step < (size > 1000 ? 30 : 100); step++)
        {
            // Keys to change, some twice, some new; the source has values for some of them and for keys not asked for.
            var existing = expected.Keys.ToList();
            var keys = Enumerable.Range(0, random.Next(0, changesUpTo)).Select(_ => random.Next(3) == 0 && existing.Count > 0 ? existing[random.Next(existing.Count)] : Key(random, names)).ToList();
            keys.AddRange(keys.Take(random.Next(3)));
            var source = new Dictionary<ResourceKey, int>();
            foreach (var key in keys.Where(_ => random.Next(2) == 0).Append(Key(random, names)))
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
            if (before.SequenceEqual(next))
            {
                Assert.Same(map, next);
            }

            map = next;
            AssertSame(expected, map, random, names);
        }

        // Setting every key to the value it has changes nothing, and returns the same map.
        Assert.Same(map, map.SetItems(map.Keys.Take(100), map));
    }

    [Fact]
    public void SetItems_SplitsAChunkThatGrowsPastTwiceItsSize_AndDropsOneThatEmpties()
    {
        static ResourceKey Route(string name) => new(ResourceKind.TcpRoute, "apps", name);
        var expected = new SortedDictionary<ResourceKey, int>();
        for (var i = 0; i < 3 * ResourceMap<int>.ChunkSize; i++)
        {
            expected[Route($"r{i:D5}")] = i;
        }

        var map = ResourceMap.Create(expected);
        Assert.Equal(3, map.ChunkLengths.Length);

        // 5,000 keys that all sort inside the first chunk: it grows to about six times its size and is cut evenly.
        var inserted = Enumerable.Range(0, 5000).Select(i => Route($"r00100-{i:D4}")).ToList();
        var source = inserted.ToDictionary(key => key, key => key.Name.Length);
        map = map.SetItems(inserted, source);
        foreach (var key in inserted)
        {
            expected[key] = source[key];
        }

        Assert.Equal(expected.ToList(), map.ToList());
        Assert.Equal(2 + ((ResourceMap<int>.ChunkSize + 5000 + ResourceMap<int>.ChunkSize - 1) / ResourceMap<int>.ChunkSize), map.ChunkLengths.Length);
        Assert.All(expected, pair => Assert.Equal(pair.Value, map[pair.Key]));

        // Every key of the last chunk removed: the chunk goes, and lookups past the end miss.
        var last = expected.Keys.TakeLast(ResourceMap<int>.ChunkSize).ToList();
        var chunks = map.ChunkLengths.Length;
        map = map.SetItems(last, new Dictionary<ResourceKey, int>());
        foreach (var key in last)
        {
            expected.Remove(key);
        }

        Assert.Equal(expected.ToList(), map.ToList());
        Assert.Equal(chunks - 1, map.ChunkLengths.Length);
        Assert.All(last, key => Assert.False(map.ContainsKey(key)));
        Assert.False(map.ContainsKey(Route("a")));
        Assert.False(map.ContainsKey(Route("z")));
    }

    [Fact]
    public void SetItems_JoinsAChunkThatRemovalsLeaveSmall_ToItsNeighbour()
    {
        static ResourceKey Route(int i) => new(ResourceKind.TcpRoute, "apps", $"r{i:D5}");
        const int Size = ResourceMap<int>.ChunkSize;
        var expected = new SortedDictionary<ResourceKey, int>();
        for (var i = 0; i < 5 * Size; i++)
        {
            expected[Route(i)] = i;
        }

        var map = ResourceMap.Create(expected);
        Assert.Equal([Size, Size, Size, Size, Size], map.ChunkLengths);
        var none = new Dictionary<ResourceKey, int>();
        void Remove(int from, int count)
        {
            var removed = Enumerable.Range(from, count).Select(Route).ToList();
            map = map.SetItems(removed, none);
            removed.ForEach(key => expected.Remove(key));
            Assert.Equal(expected.ToList(), map.ToList());
        }

        // All but 10 entries of the second chunk go: what is left joins the first chunk.
        Remove(Size + 10, Size - 10);
        Assert.Equal([Size + 10, Size, Size, Size], map.ChunkLengths);

        // All of the first chunk but the 10 it took: with no chunk before it, it joins the one after.
        Remove(0, Size);
        Assert.Equal([10 + Size, Size, Size], map.ChunkLengths);

        // All but 10 of the last: it joins the one before.
        Remove((4 * Size) + 10, Size - 10);
        Assert.Equal([10 + Size, Size + 10], map.ChunkLengths);

        Assert.All(expected, pair => Assert.Equal(pair.Value, map[pair.Key]));
        AssertChunkSizes(map);
    }

    /// <summary>
    /// Ranges of keys removed and added at random, so chunks are emptied, left small, joined to neighbours of every size,
    /// and grown past twice their size: the contents stay those of a sorted dictionary, and the chunk sizes in bounds.
    /// </summary>
    [Theory]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    public void SetItems_WithRangesRemovedAndAdded_KeepsEveryChunkInBounds(int seed)
    {
        static ResourceKey Route(int i) => new(ResourceKind.TcpRoute, "apps", $"r{i:D6}");
        const int Size = ResourceMap<int>.ChunkSize;
        var random = new Random(seed);
        var expected = new SortedDictionary<ResourceKey, int>();
        for (var i = 0; i < 6 * Size; i++)
        {
            expected[Route(random.Next(20 * Size))] = i;
        }

        // From a plain sequence (neither an array nor a collection).
        var map = ResourceMap.Create(expected.Select(static pair => pair));
        for (var step = 0; step < 60; step++)
        {
            var start = random.Next(20 * Size);
            var keys = Enumerable.Range(start, random.Next(1, 3 * Size)).Select(Route).ToList();
            var source = new Dictionary<ResourceKey, int>();
            if (random.Next(3) == 0)
            {
                // Added (some present already, with new values), every other one or all of them.
                var every = random.Next(1, 3);
                keys.Where((_, i) => i % every == 0).ToList().ForEach(key => source[key] = random.Next());
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

            map = map.SetItems(keys, source);
            Assert.Equal(expected.ToList(), map.ToList());
            AssertChunkSizes(map);
        }

        Assert.All(expected, pair => Assert.Equal(pair.Value, map[pair.Key]));
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
        Assert.IsNotAssignableFrom<IList<ResourceKey>>(map.Keys);
        Assert.IsNotAssignableFrom<IList<string>>(map.Values);
        Assert.Equal("a", map.Values.Single());
    }
}
