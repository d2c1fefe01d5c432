using System.Buffers;
using System.Collections;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

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
        switch (items)
        {
            case ResourceMap<TValue> map:
                return map;
            case KeyValuePair<ResourceKey, TValue>[] array:
                return Create((ReadOnlySpan<KeyValuePair<ResourceKey, TValue>>)array);
            case ICollection<KeyValuePair<ResourceKey, TValue>> collection:
                // Copied into a pooled array rather than a new one (a compile's status builders come this way).
                var count = collection.Count;
                var buffer = ArrayPool<KeyValuePair<ResourceKey, TValue>>.Shared.Rent(count);
                try
                {
                    collection.CopyTo(buffer, 0);
                    return Create((ReadOnlySpan<KeyValuePair<ResourceKey, TValue>>)buffer.AsSpan(0, count));
                }
                finally
                {
                    ArrayPool<KeyValuePair<ResourceKey, TValue>>.Shared.Return(buffer, clearArray: true);
                }

            default:
                return Create((ReadOnlySpan<KeyValuePair<ResourceKey, TValue>>)[.. items]);
        }
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

    /// <summary>Each chunk's number of entries, in order (for tests).</summary>
    internal int[] ChunkLengths => [.. _chunks.Select(chunk => chunk.Keys.Length)];

    /// <inheritdoc />
    public TValue this[ResourceKey key] => TryGetValue(key, out var value) ? value : throw new KeyNotFoundException($"{key} is not in the map.");

    /// <summary>A map of <paramref name="items"/>, which are sorted by key with each key once.</summary>
    internal static ResourceMap<TValue> FromSorted(ReadOnlySpan<KeyValuePair<ResourceKey, TValue>> items)
    {
        if (items.IsEmpty)
        {
            return Empty;
        }

        var chunks = new Chunk[Pieces(items.Length)];
        for (var c = 0; c < chunks.Length; c++)
        {
            var part = items[Piece(items.Length, c, chunks.Length)];
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

    /// <summary>
    /// A map in which <paramref name="key"/> maps to <paramref name="value"/>: a copy, or this map when the key already
    /// maps to an equal value.
    /// </summary>
    /// <param name="key">The key to add or replace.</param>
    /// <param name="value">Its value.</param>
    /// <returns>The new map, or this one.</returns>
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
        if (keys is not ICollection<ResourceKey> { Count: var count } collection)
        {
            return SetSorted(keys.ToArray(), source);
        }

        // Counted keys are copied into a pooled array: thousands of them would make a large object.
        var rented = ArrayPool<ResourceKey>.Shared.Rent(count);
        try
        {
            collection.CopyTo(rented, 0);
            return SetSorted(rented.AsSpan(0, count), source);
        }
        finally
        {
            ArrayPool<ResourceKey>.Shared.Return(rented, clearArray: true);
        }
    }

    /// <summary><see cref="SetItems"/> with the keys in an array of their own, which it sorts.</summary>
    private ResourceMap<TValue> SetSorted(Span<ResourceKey> changes, IReadOnlyDictionary<ResourceKey, TValue> source)
    {
        if (changes.IsEmpty)
        {
            return this;
        }

        changes.Sort();
        Chunk[] chunks = _chunks.Length == 0 ? [NoEntries] : _chunks;
        var result = new Builder(chunks.Length + 1);
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
                result.Keep(chunks[c]);
                continue;
            }

            var chunk = chunks[c];
            using var merged = new Scratch(chunk.Keys.Length + end - next);
            var length = chunk.Merge(changes[next..end], source, merged.Keys, merged.Values);
            next = end;
            if (length < 0)
            {
                result.Keep(chunk);
                continue;
            }

            changed = true;
            result.Add(merged.Keys.AsSpan(0, length), merged.Values.AsSpan(0, length));
        }

        return !changed ? this : result.ToMap();
    }

    /// <summary>How many chunks <paramref name="length"/> entries are cut into: one up to twice <see cref="ChunkSize"/>, else about that size each.</summary>
    private static int Pieces(int length) => length == 0 ? 0 : length <= 2 * ChunkSize ? 1 : (length + ChunkSize - 1) / ChunkSize;

    /// <summary>The range of piece <paramref name="piece"/> of <paramref name="count"/> when <paramref name="length"/> entries are cut evenly.</summary>
    private static Range Piece(int length, int piece, int count) =>
        new((int)((long)length * piece / count), (int)((long)length * (piece + 1) / count));

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

    /// <summary>
    /// Collects a changed map's chunks in order: the unchanged ones as they are, the rebuilt ones cut to size. A rebuilt
    /// chunk of fewer than a quarter of <see cref="ChunkSize"/> entries is joined to its neighbour, so removals do not
    /// leave a trail of small chunks to walk: every chunk of a map of more than one has at least that many entries.
    /// </summary>
    private sealed class Builder(int capacity)
    {
        private const int Small = ChunkSize / 4;

        private readonly List<Chunk> _chunks = new(capacity);

        /// <summary>Adds an unchanged chunk (joined to the last, if that one is a small rebuilt chunk).</summary>
        public void Keep(Chunk chunk)
        {
            if (LastIsSmall)
            {
                JoinLast(chunk.Keys, chunk.Values);
            }
            else
            {
                _chunks.Add(chunk);
            }
        }

        /// <summary>Adds rebuilt entries, in as many chunks as they take (joined to the last, if either is small).</summary>
        public void Add(ReadOnlySpan<ResourceKey> keys, ReadOnlySpan<TValue> values)
        {
            if (keys.IsEmpty)
            {
                return;
            }

            if (_chunks.Count > 0 && (keys.Length < Small || LastIsSmall))
            {
                JoinLast(keys, values);
            }
            else
            {
                Cut(keys, values);
            }
        }

        /// <summary>The map of the chunks collected.</summary>
        public ResourceMap<TValue> ToMap() => _chunks.Count == 0 ? Empty : new ResourceMap<TValue>([.. _chunks]);

        /// <summary>Whether the last chunk collected is under a quarter of <see cref="ChunkSize"/> (it can only be the first).</summary>
        private bool LastIsSmall => _chunks.Count > 0 && _chunks[^1].Keys.Length < Small;

        /// <summary>Replaces the last chunk with it and the entries given, cut to size.</summary>
        private void JoinLast(ReadOnlySpan<ResourceKey> keys, ReadOnlySpan<TValue> values)
        {
            var last = _chunks[^1];
            _chunks.RemoveAt(_chunks.Count - 1);
            using var joined = new Scratch(last.Keys.Length + keys.Length);
            last.Keys.CopyTo(joined.Keys, 0);
            last.Values.CopyTo(joined.Values, 0);
            keys.CopyTo(joined.Keys.AsSpan(last.Keys.Length));
            values.CopyTo(joined.Values.AsSpan(last.Keys.Length));
            Cut(joined.Keys.AsSpan(0, last.Keys.Length + keys.Length), joined.Values.AsSpan(0, last.Keys.Length + keys.Length));
        }

        /// <summary>Adds the entries given as one chunk, or as several of about <see cref="ChunkSize"/> when more than twice that.</summary>
        private void Cut(ReadOnlySpan<ResourceKey> keys, ReadOnlySpan<TValue> values)
        {
            var count = Pieces(keys.Length);
            for (var c = 0; c < count; c++)
            {
                var piece = Piece(keys.Length, c, count);
                _chunks.Add(new Chunk(keys[piece].ToArray(), values[piece].ToArray()));
            }
        }
    }

    /// <summary>Pooled arrays for entries on their way into chunks; cleared of what may have been written when given back.</summary>
    private readonly struct Scratch : IDisposable
    {
        /// <summary>The room asked for: nothing past it is written.</summary>
        private readonly int _length;

        public Scratch(int length)
        {
            Keys = ArrayPool<ResourceKey>.Shared.Rent(length);
            Values = ArrayPool<TValue>.Shared.Rent(length);
            _length = length;
        }

        /// <summary>Room for at least the length asked for (the pool may give more).</summary>
        public ResourceKey[] Keys { get; }

        /// <summary>Room for at least the length asked for (the pool may give more).</summary>
        public TValue[] Values { get; }

        public void Dispose()
        {
            Keys.AsSpan(0, _length).Clear();
            ArrayPool<ResourceKey>.Shared.Return(Keys);
            if (RuntimeHelpers.IsReferenceOrContainsReferences<TValue>())
            {
                Values.AsSpan(0, _length).Clear();
            }

            ArrayPool<TValue>.Shared.Return(Values);
        }
    }

    /// <summary>Part of the entries: keys sorted and distinct, and a value for each, neither array shared with anyone else.</summary>
    private readonly record struct Chunk(ResourceKey[] Keys, TValue[] Values)
    {
        /// <summary>
        /// Writes this chunk with <paramref name="changes"/> (sorted, maybe repeated) as <paramref name="source"/> has
        /// them to <paramref name="keys"/> and <paramref name="values"/> (room for this chunk and every change), and
        /// returns how many entries that is; -1 when that leaves every value as it is.
        /// </summary>
        public int Merge(ReadOnlySpan<ResourceKey> changes, IReadOnlyDictionary<ResourceKey, TValue> source, Span<ResourceKey> keys, Span<TValue> values)
        {
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
                Keys.AsSpan(next, before).CopyTo(keys[length..]);
                Values.AsSpan(next, before).CopyTo(values[length..]);
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
                return -1;
            }

            Keys.AsSpan(next).CopyTo(keys[length..]);
            Values.AsSpan(next).CopyTo(values[length..]);
            return length + Keys.Length - next;
        }
    }
}
