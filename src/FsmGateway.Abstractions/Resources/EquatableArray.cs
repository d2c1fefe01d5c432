using System.Collections;
using System.Collections.Immutable;
using System.Runtime.CompilerServices;

namespace FsmGateway.Resources;

/// <summary>
/// An immutable array compared by its items, so the model's records compare by value all the way down: an object
/// re-sent unchanged by a watch or a reloaded file is recognised as unchanged and causes no recompile.
/// </summary>
/// <typeparam name="T">The item type.</typeparam>
[CollectionBuilder(typeof(EquatableArray), nameof(EquatableArray.Create))]
public readonly struct EquatableArray<T> : IEquatable<EquatableArray<T>>, IReadOnlyList<T>
{
    private readonly ImmutableArray<T> _items;

    /// <summary>Wraps <paramref name="items"/>.</summary>
    /// <param name="items">The items.</param>
    public EquatableArray(ImmutableArray<T> items) => _items = items.IsDefault ? [] : items;

    /// <summary>An empty array.</summary>
    public static EquatableArray<T> Empty { get; } = new([]);

    /// <summary>The number of items.</summary>
    public int Length => Items.Length;

    /// <inheritdoc />
    int IReadOnlyCollection<T>.Count => Length;

    /// <summary>Whether there are no items.</summary>
    public bool IsEmpty => Items.IsEmpty;

    /// <summary>The item at <paramref name="index"/>.</summary>
    /// <param name="index">The index.</param>
    public T this[int index] => Items[index];

    /// <summary>The items as an <see cref="ImmutableArray{T}"/>.</summary>
    public ImmutableArray<T> Items => _items.IsDefault ? [] : _items;

    /// <summary>Wraps an immutable array.</summary>
    /// <param name="items">The items.</param>
    public static implicit operator EquatableArray<T>(ImmutableArray<T> items) => new(items);

    /// <summary>Compares item by item.</summary>
    /// <param name="left">The first array.</param>
    /// <param name="right">The second array.</param>
    /// <returns>Whether both hold equal items in the same order.</returns>
    public static bool operator ==(EquatableArray<T> left, EquatableArray<T> right) => left.Equals(right);

    /// <summary>Compares item by item.</summary>
    /// <param name="left">The first array.</param>
    /// <param name="right">The second array.</param>
    /// <returns>Whether the arrays differ.</returns>
    public static bool operator !=(EquatableArray<T> left, EquatableArray<T> right) => !left.Equals(right);

    /// <summary>Wraps an immutable array.</summary>
    /// <param name="items">The items.</param>
    /// <returns>The wrapped array.</returns>
    public static EquatableArray<T> FromImmutableArray(ImmutableArray<T> items) => new(items);

    /// <inheritdoc />
    public bool Equals(EquatableArray<T> other) => Items.AsSpan().SequenceEqual(other.Items.AsSpan(), EqualityComparer<T>.Default);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is EquatableArray<T> other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var item in Items)
        {
            hash.Add(item);
        }

        return hash.ToHashCode();
    }

    /// <summary>Enumerates the items without allocating.</summary>
    /// <returns>An enumerator.</returns>
    public ImmutableArray<T>.Enumerator GetEnumerator() => Items.GetEnumerator();

    /// <inheritdoc />
    IEnumerator<T> IEnumerable<T>.GetEnumerator() => ((IEnumerable<T>)Items).GetEnumerator();

    /// <inheritdoc />
    IEnumerator IEnumerable.GetEnumerator() => ((IEnumerable)Items).GetEnumerator();

    /// <summary>The items, comma-separated, for debugging and record printing.</summary>
    /// <returns>The items as text.</returns>
    public override string ToString() => $"[{string.Join(", ", Items)}]";
}

/// <summary>Creates <see cref="EquatableArray{T}"/> values; the target of collection expressions.</summary>
public static class EquatableArray
{
    /// <summary>Creates an array holding a copy of <paramref name="items"/>.</summary>
    /// <typeparam name="T">The item type.</typeparam>
    /// <param name="items">The items.</param>
    /// <returns>The array.</returns>
    public static EquatableArray<T> Create<T>(ReadOnlySpan<T> items) => new([.. items]);
}
