using System.Collections;
using System.Diagnostics.CodeAnalysis;
using FsmGateway.Resources;

namespace FsmGateway.Routing.Compilation;

/// <summary>
/// A read-only map over keys that arrive sorted (a snapshot's order), looked up by binary search: filled in one pass,
/// with no key hashed, where a dictionary of 10,000 routes costs a full compile milliseconds of hashing.
/// </summary>
internal sealed class SortedKeyMap<TValue> : IReadOnlyDictionary<ResourceKey, TValue>
{
    private readonly ResourceKey[] _keys;
    private readonly TValue[] _values;

    /// <summary>A map of the first <paramref name="count"/> keys and values, the keys sorted and distinct (checked in debug builds).</summary>
    public SortedKeyMap(ResourceKey[] keys, TValue[] values, int count)
    {
        AssertSorted(keys, count);
        _keys = count == keys.Length ? keys : keys[..count];
        _values = count == values.Length ? values : values[..count];
    }

    [System.Diagnostics.Conditional("DEBUG")]
    private static void AssertSorted(ResourceKey[] keys, int count)
    {
        for (var i = 1; i < count; i++)
        {
            System.Diagnostics.Debug.Assert(keys[i - 1] < keys[i], "keys must be sorted and distinct");
        }
    }

    public int Count => _keys.Length;

    public IEnumerable<ResourceKey> Keys => _keys;

    public IEnumerable<TValue> Values => _values;

    public TValue this[ResourceKey key] => TryGetValue(key, out var value) ? value : throw new KeyNotFoundException($"{key} is not in the map");

    public bool ContainsKey(ResourceKey key) => Array.BinarySearch(_keys, key) >= 0;

    public bool TryGetValue(ResourceKey key, [MaybeNullWhen(false)] out TValue value)
    {
        var index = Array.BinarySearch(_keys, key);
        if (index < 0)
        {
            value = default;
            return false;
        }

        value = _values[index];
        return true;
    }

    public IEnumerator<KeyValuePair<ResourceKey, TValue>> GetEnumerator()
    {
        for (var i = 0; i < _keys.Length; i++)
        {
            yield return new(_keys[i], _values[i]);
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
