using System.Globalization;

namespace FsmGateway.Kubernetes.Mapping;

/// <summary>The integer subset of Kubernetes quantities (<c>resource.Quantity</c>) that byte counts use: digits and an optional suffix.</summary>
internal static class Quantity
{
    private static readonly (string Suffix, long Factor)[] Suffixes =
    [
        ("Ki", 1L << 10), ("Mi", 1L << 20), ("Gi", 1L << 30), ("Ti", 1L << 40),
        ("k", 1_000), ("M", 1_000_000), ("G", 1_000_000_000), ("T", 1_000_000_000_000),
    ];

    public static bool TryParse(string text, out long value)
    {
        value = 0;
        if (text.Length is 0 or > 32)
        {
            return false;
        }

        var factor = 1L;
        var digits = text;
        foreach (var (suffix, f) in Suffixes)
        {
            if (text.EndsWith(suffix, StringComparison.Ordinal))
            {
                factor = f;
                digits = text[..^suffix.Length];
                break;
            }
        }

        if (digits.Length == 0 || !digits.All(char.IsAsciiDigit)
            || !long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            return false;
        }

        try
        {
            value = checked(number * factor);
            return true;
        }
        catch (OverflowException)
        {
            return false;
        }
    }
}
