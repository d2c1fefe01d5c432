using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace FsmGateway.Resources;

/// <summary>Creates <see cref="ResourceMap{TValue}"/>s.</summary>
public static class ResourceMap
{
    /// <summary>A map of <paramref name="items"/>, in any order.</summary>
    /// <typeparam name="TValue">The value type.</typeparam>
    /// <param name="items">The entries; each key at most once.</param>
    /// <returns>The map, sorted by key.</returns>
    /// <exception cref="ArgumentException">A key occurs twice.</exception>
    /// <remarks>
    /// Entries that come sorted by key (as a compile or a sorted dictionary yields them) are taken in one pass, with
    /// one comparison per entry; others are sorted first.
    /// </remarks>
    public static ResourceMap<TValue> Create<TValue>(IEnumerable<KeyValuePair<ResourceKey, TValue>> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        return items is ResourceMap<TValue> map ? map : Create((ReadOnlySpan<KeyValuePair<ResourceKey, TValue>>)(items as KeyValuePair<ResourceKey, TValue>[] ?? [.. items]));
    }

    /// <summary>A map of <paramref name="items"/>, in any order.</summary>
    /// <typeparam name="TValue">The value type.</typeparam>
    /// <param name="items">The entries; each key at most once.</param>
    /// <returns>The map, sorted by key.</returns>
    /// <exception cref="ArgumentException">A key occurs twice.</exception>
    public static ResourceMap<TValue> Create<TValue>(params ReadOnlySpan<KeyValuePair<ResourceKey, TValue>> items)
    {
        var sorted = true;
        for (var i = 1; i < items.Length && sorted; i++)
        {
            sorted = items[i - 1].Key < items[i].Key;
        }

        if (sorted)
        {
            return ResourceMap<TValue>.FromSorted(items);
        }

        var entries = items.ToArray();
        Array.Sort(entries, static (a, b) => a.Key.CompareTo(b.Key));
        for (var i = 1; i < entries.Length; i++)
        {
            if (entries[i - 1].Key == entries[i].Key)
            {
                throw new ArgumentException($"{entries[i].Key} occurs more than once.", nameof(items));
            }
        }

        return ResourceMap<TValue>.FromSorted(entries);
    }
}

/// <summary>
/// A read-only map from object keys to values, enumerated in key order and looked up by binary search. It is built in
/// one pass from sorted entries, where a sorted tree costs a compile of 10,000 routes milliseconds of inserts, and it
/// is changed by copying: <see cref="SetItems"/> replaces many keys at once, and copies only the chunks of about a
/// thousand entries that hold them; the others are shared with the map it was made from.
/// </summary>
/// <typeparam name="TValue">The value type.</typeparam>
public sealed class ResourceMap<TValue> : IReadOnlyDictionary<ResourceKey, TValue>
{
    /// <summary>
    /// How many entries a chunk is cut to: a change copies its chunk, and a chunk's arrays stay small enough to stay off
    /// the large object heap (which only a gen2 GC frees) even after growing to twice this.
    /// </summary>
    internal const int ChunkSize = 1024;

    private static readonly Chunk NoEntries = new([], []);

    /// <summary>The entries, in chunks in key order, none empty.</summary>
    private readonly Chunk[] _chunks;

    /// <summary>Each chunk's first key, to find a key's chunk by binary search.</summary>
    private readonly ResourceKey[] _firstKeys;

    private ResourceMap(Chunk[] chunks)
    {
        _chunks = chunks;
        _firstKeys = new ResourceKey[chunks.Length];
        for (var i = 0; i < chunks.Length; i++)
        {
            _firstKeys[i] = chunks[i].Keys[0];
            Count += chunks[i].Keys.Length;
        }
    }

    /// <summary>An empty map.</summary>
    public static ResourceMap<TValue> Empty { get; } = new([]);

    /// <inheritdoc />
    public int Count { get; }

    /// <summary>The keys, sorted.</summary>
    public IEnumerable<ResourceKey> Keys
    {
        get
        {
            foreach (var chunk in _chunks)
            {
                foreach (var key in chunk.Keys)
                {
                    yield return key;
                }
            }
        }
    }

    /// <summary>The values, in the order of their keys.</summary>
    public IEnumerable<TValue> Values
    {
        get
        {
            foreach (var chunk in _chunks)
            {
                foreach (var value in chunk.Values)
                {
                    yield return value;
                }
            }
        }
    }

    /// <summary>The number of chunks (for tests).</summary>
    internal int ChunkCount => _chunks.Length;

    /// <inheritdoc />
    public TValue this[ResourceKey key] => TryGetValue(key, out var value) ? value : throw new KeyNotFoundException($"{key} is not in the map.");

    /// <summary>A map of <paramref name="items"/>, which are sorted by key with each key once.</summary>
    internal static ResourceMap<TValue> FromSorted(ReadOnlySpan<KeyValuePair<ResourceKey, TValue>> items)
    {
        if (items.IsEmpty)
        {
            return Empty;
        }

        var chunks = new Chunk[(items.Length + ChunkSize - 1) / ChunkSize];
        for (var c = 0; c < chunks.Length; c++)
        {
            var part = items.Slice(c * ChunkSize, Math.Min(ChunkSize, items.Length - (c * ChunkSize)));
            var keys = new ResourceKey[part.Length];
            var values = new TValue[part.Length];
            for (var i = 0; i < part.Length; i++)
            {
                (keys[i], values[i]) = part[i];
            }

            chunks[c] = new Chunk(keys, values);
        }

        return new ResourceMap<TValue>(chunks);
    }

    /// <inheritdoc />
    public bool ContainsKey(ResourceKey key) => TryGetValue(key, out _);

    /// <inheritdoc />
    public bool TryGetValue(ResourceKey key, [MaybeNullWhen(false)] out TValue value)
    {
        var chunk = _firstKeys.AsSpan().BinarySearch(key);
        chunk = chunk >= 0 ? chunk : ~chunk - 1;
        var index = chunk < 0 ? -1 : _chunks[chunk].Keys.AsSpan().BinarySearch(key);
        if (index < 0)
        {
            value = default;
            return false;
        }

        value = _chunks[chunk].Values[index];
        return true;
    }

    /// <summary>A copy in which <paramref name="key"/> maps to <paramref name="value"/>.</summary>
    /// <param name="key">The key to add or replace.</param>
    /// <param name="value">Its value.</param>
    /// <returns>The new map.</returns>
    public ResourceMap<TValue> SetItem(ResourceKey key, TValue value) =>
        SetItems([key], new Dictionary<ResourceKey, TValue> { [key] = value });

    /// <summary>
    /// A copy in which each of <paramref name="keys"/> maps to what <paramref name="source"/> maps it to, or is absent
    /// when <paramref name="source"/> has no entry for it; every other key maps to what it maps to here. Only the
    /// chunks that change are copied; when nothing changes (equal values), this map is returned.
    /// </summary>
    /// <param name="keys">The keys to replace or remove (a key may occur more than once).</param>
    /// <param name="source">Where their values come from.</param>
    /// <returns>The new map.</returns>
    public ResourceMap<TValue> SetItems(IEnumerable<ResourceKey> keys, IReadOnlyDictionary<ResourceKey, TValue> source)
    {
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(source);
        var changes = keys.ToArray();
        if (changes.Length == 0)
        {
            return this;
        }

        Array.Sort(changes);
        Chunk[] chunks = _chunks.Length == 0 ? [NoEntries] : _chunks;
        var result = new List<Chunk>(chunks.Length + 1);
        var changed = false;
        var next = 0;
        for (var c = 0; c < chunks.Length; c++)
        {
            // A chunk takes the changes below the next chunk's first key (the first also those below its own first key).
            var end = next;
            while (end < changes.Length && (c == chunks.Length - 1 || changes[end] < _firstKeys[c + 1]))
            {
                end++;
            }

            if (end == next)
            {
                result.Add(chunks[c]);
                continue;
            }

            var merged = chunks[c].Merge(changes.AsSpan(next, end - next), source);
            next = end;
            if (merged is null)
            {
                result.Add(chunks[c]);
                continue;
            }

            changed = true;
            SplitInto(merged.Value, result);
        }

        return !changed ? this : result.Count == 0 ? Empty : new ResourceMap<TValue>([.. result]);
    }

    /// <summary>
    /// Adds merged entries to <paramref name="chunks"/>: none when there are none, one chunk when they are at most twice
    /// <see cref="ChunkSize"/>, else as many chunks of about that size as it takes, cut evenly.
    /// </summary>
    private static void SplitInto((ResourceKey[] Keys, TValue[] Values, int Length) merged, List<Chunk> chunks)
    {
        var (keys, values, length) = merged;
        var count = length <= 2 * ChunkSize ? Math.Min(length, 1) : (length + ChunkSize - 1) / ChunkSize;
        for (var c = 0; c < count; c++)
        {
            var (start, end) = (length * c / count, length * (c + 1) / count);
            chunks.Add(count == 1 && length == keys.Length ? new Chunk(keys, values) : new Chunk(keys[start..end], values[start..end]));
        }
    }

    /// <inheritdoc />
    public IEnumerator<KeyValuePair<ResourceKey, TValue>> GetEnumerator()
    {
        foreach (var chunk in _chunks)
        {
            for (var i = 0; i < chunk.Keys.Length; i++)
            {
                yield return new(chunk.Keys[i], chunk.Values[i]);
            }
        }
    }

    /// <inheritdoc />
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Part of the entries: keys sorted and distinct, and a value for each, neither array shared with anyone else.</summary>
    private readonly record struct Chunk(ResourceKey[] Keys, TValue[] Values)
    {
        /// <summary>This chunk with <paramref name="changes"/> (sorted, maybe repeated) as <paramref name="source"/> has them; null when that leaves every value as it is.</summary>
        public (ResourceKey[] Keys, TValue[] Values, int Length)? Merge(ReadOnlySpan<ResourceKey> changes, IReadOnlyDictionary<ResourceKey, TValue> source)
        {
            var keys = new ResourceKey[Keys.Length + changes.Length];
            var values = new TValue[keys.Length];
            var length = 0;
            var next = 0;
            var changed = false;
            for (var i = 0; i < changes.Length; i++)
            {
                var key = changes[i];
                if (i > 0 && changes[i - 1] == key)
                {
                    continue;
                }

                // Copy what sorts before the key, skip the key's own entry, then write what the source has for it.
                var found = Keys.AsSpan(next).BinarySearch(key);
                var before = found >= 0 ? found : ~found;
                Keys.AsSpan(next, before).CopyTo(keys.AsSpan(length));
                Values.AsSpan(next, before).CopyTo(values.AsSpan(length));
                length += before;
                next += before;
                var had = found >= 0;
                var old = had ? Values[next++] : default;
                if (source.TryGetValue(key, out var value))
                {
                    changed |= !had || !EqualityComparer<TValue>.Default.Equals(old, value);
                    keys[length] = key;
                    values[length++] = value;
                }
                else
                {
                    changed |= had;
                }
            }

            if (!changed)
            {
                return null;
            }

            Keys.AsSpan(next).CopyTo(keys.AsSpan(length));
            Values.AsSpan(next).CopyTo(values.AsSpan(length));
            return (keys, values, length + Keys.Length - next);
        }
    }
}
