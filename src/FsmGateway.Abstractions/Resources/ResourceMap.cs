using System.Collections;
using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

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
        var keys = new ResourceKey[items.Length];
        var values = new TValue[items.Length];
        for (var i = 0; i < items.Length; i++)
        {
            (keys[i], values[i]) = items[i];
        }

        return Create(keys, values, nameof(items));
    }

    /// <summary>A map that takes <paramref name="keys"/> and <paramref name="values"/>, which nothing else holds, sorting them first unless they come sorted.</summary>
    private static ResourceMap<TValue> Create<TValue>(ResourceKey[] keys, TValue[] values, string parameter)
    {
        var sorted = true;
        for (var i = 1; i < keys.Length && sorted; i++)
        {
            sorted = keys[i - 1] < keys[i];
        }

        if (!sorted)
        {
            Array.Sort(keys, values);
            for (var i = 1; i < keys.Length; i++)
            {
                if (keys[i - 1] == keys[i])
                {
                    throw new ArgumentException($"{keys[i]} occurs more than once.", parameter);
                }
            }
        }

        return keys.Length == 0 ? ResourceMap<TValue>.Empty : new ResourceMap<TValue>(keys, values, keys.Length);
    }
}

/// <summary>
/// A read-only map from object keys to values, enumerated in key order and looked up by binary search. It is built in
/// one pass from sorted entries, where a sorted tree costs a compile of 10,000 routes milliseconds of inserts, and it
/// is changed by copying: <see cref="SetItems"/> replaces many keys in one copy.
/// </summary>
/// <typeparam name="TValue">The value type.</typeparam>
public sealed class ResourceMap<TValue> : IReadOnlyDictionary<ResourceKey, TValue>
{
    private readonly ImmutableArray<ResourceKey> _keys;
    private readonly ImmutableArray<TValue> _values;

    /// <summary>Takes the first <paramref name="count"/> of <paramref name="keys"/> and <paramref name="values"/>, which nothing else holds; the keys sorted and distinct.</summary>
    internal ResourceMap(ResourceKey[] keys, TValue[] values, int count)
    {
        _keys = ImmutableCollectionsMarshal.AsImmutableArray(count == keys.Length ? keys : keys[..count]);
        _values = ImmutableCollectionsMarshal.AsImmutableArray(count == values.Length ? values : values[..count]);
    }

    /// <summary>An empty map.</summary>
    public static ResourceMap<TValue> Empty { get; } = new([], [], 0);

    /// <inheritdoc />
    public int Count => _keys.Length;

    /// <summary>The keys, sorted.</summary>
    public IEnumerable<ResourceKey> Keys => _keys;

    /// <summary>The values, in the order of their keys.</summary>
    public IEnumerable<TValue> Values => _values;

    /// <inheritdoc />
    public TValue this[ResourceKey key] => TryGetValue(key, out var value) ? value : throw new KeyNotFoundException($"{key} is not in the map.");

    /// <inheritdoc />
    public bool ContainsKey(ResourceKey key) => IndexOf(key) >= 0;

    /// <inheritdoc />
    public bool TryGetValue(ResourceKey key, [MaybeNullWhen(false)] out TValue value)
    {
        var index = IndexOf(key);
        if (index < 0)
        {
            value = default;
            return false;
        }

        value = _values[index];
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
    /// when <paramref name="source"/> has no entry for it; every other key maps to what it maps to here. One copy of
    /// the map, however many keys change.
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
        var resultKeys = new ResourceKey[_keys.Length + changes.Length];
        var resultValues = new TValue[resultKeys.Length];
        var length = 0;
        var next = 0;
        ResourceKey? previous = null;
        foreach (var key in changes)
        {
            if (key == previous)
            {
                continue;
            }

            previous = key;

            // Copy what sorts before the key, skip the key's own entry, then write what the source has for it.
            var found = _keys.AsSpan()[next..].BinarySearch(key);
            var before = found >= 0 ? found : ~found;
            Append(next, before);
            next += before + (found >= 0 ? 1 : 0);
            if (source.TryGetValue(key, out var value))
            {
                resultKeys[length] = key;
                resultValues[length++] = value;
            }
        }

        Append(next, _keys.Length - next);
        return length == 0 ? Empty : new ResourceMap<TValue>(resultKeys, resultValues, length);

        void Append(int start, int count)
        {
            _keys.AsSpan(start, count).CopyTo(resultKeys.AsSpan(length));
            _values.AsSpan(start, count).CopyTo(resultValues.AsSpan(length));
            length += count;
        }
    }

    /// <inheritdoc />
    public IEnumerator<KeyValuePair<ResourceKey, TValue>> GetEnumerator()
    {
        for (var i = 0; i < _keys.Length; i++)
        {
            yield return new(_keys[i], _values[i]);
        }
    }

    /// <inheritdoc />
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private int IndexOf(ResourceKey key) => _keys.AsSpan().BinarySearch(key);
}
