using System.Collections.Immutable;

namespace FsmGateway.Resources;

/// <summary>A Kubernetes label selector: every <c>matchLabels</c> entry and every <c>matchExpressions</c> requirement must hold.</summary>
/// <param name="MatchLabels">Labels that must be present with exactly these values.</param>
/// <param name="MatchExpressions">Set-based requirements.</param>
public sealed record LabelSelector(ImmutableSortedDictionary<string, string> MatchLabels, EquatableArray<LabelSelectorRequirement> MatchExpressions)
{
    /// <summary>Whether <paramref name="labels"/> satisfy this selector. An empty selector matches everything.</summary>
    /// <param name="labels">The labels of the object being selected.</param>
    /// <returns><see langword="true"/> when every term holds.</returns>
    public bool Matches(IReadOnlyDictionary<string, string> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        foreach (var (key, value) in MatchLabels)
        {
            if (!labels.TryGetValue(key, out var actual) || !string.Equals(actual, value, StringComparison.Ordinal))
            {
                return false;
            }
        }

        foreach (var requirement in MatchExpressions)
        {
            if (!requirement.Matches(labels))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Compares both terms by content.</summary>
    /// <param name="other">The selector to compare with.</param>
    /// <returns>Whether both select the same way.</returns>
    public bool Equals(LabelSelector? other) =>
        other is not null && MatchLabels.SequenceEqual(other.MatchLabels) && MatchExpressions == other.MatchExpressions;

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(MatchLabels.Count, MatchExpressions);
}

/// <summary>One <c>matchExpressions</c> term.</summary>
/// <param name="Key">The label key.</param>
/// <param name="Operator">The operator.</param>
/// <param name="Values">The values, for <c>In</c> and <c>NotIn</c>.</param>
public sealed record LabelSelectorRequirement(string Key, LabelSelectorOperator Operator, EquatableArray<string> Values)
{
    /// <summary>Whether <paramref name="labels"/> satisfy this term.</summary>
    /// <param name="labels">The labels of the object being selected.</param>
    /// <returns><see langword="true"/> when the term holds.</returns>
    public bool Matches(IReadOnlyDictionary<string, string> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        var present = labels.TryGetValue(Key, out var value);
        return Operator switch
        {
            LabelSelectorOperator.In => present && Values.Contains(value!, StringComparer.Ordinal),
            LabelSelectorOperator.NotIn => !present || !Values.Contains(value!, StringComparer.Ordinal),
            LabelSelectorOperator.Exists => present,
            LabelSelectorOperator.DoesNotExist => !present,
            _ => false,
        };
    }
}

/// <summary>The operators of a label selector requirement.</summary>
public enum LabelSelectorOperator
{
    /// <summary>The label's value is one of the values.</summary>
    In,

    /// <summary>The label is absent or its value is none of the values.</summary>
    NotIn,

    /// <summary>The label is present.</summary>
    Exists,

    /// <summary>The label is absent.</summary>
    DoesNotExist,
}
