using System.CommandLine;
using System.Globalization;

namespace FsmGateway.Host.Cli;

/// <summary>Byte sizes as operators write them: <c>8MiB</c>, <c>512KiB</c>, <c>1GiB</c>, or plain bytes (K, M and G are binary too).</summary>
internal static class SizeParser
{
    private static readonly (string Suffix, long Factor)[] Units =
    [
        ("GiB", 1L << 30), ("MiB", 1L << 20), ("KiB", 1L << 10),
        ("G", 1L << 30), ("M", 1L << 20), ("K", 1L << 10), ("B", 1),
    ];

    public static bool TryParse(string text, out long bytes)
    {
        bytes = 0;
        text = text.Trim();
        var (number, factor) = (text, 1L);
        foreach (var (suffix, unit) in Units)
        {
            if (text.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
            {
                (number, factor) = (text[..^suffix.Length].TrimEnd(), unit);
                break;
            }
        }

        if (!long.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value > long.MaxValue / factor)
        {
            return false;
        }

        bytes = value * factor;
        return true;
    }

    /// <summary>The value of a size option within [<paramref name="min"/>, <paramref name="max"/>]; throws <see cref="ArgumentException"/> naming the option otherwise.</summary>
    public static long Read(ParseResult parse, Option<string> option, long min, long max)
    {
        var text = parse.GetValue(option)!;
        if (!TryParse(text, out var value))
        {
            throw new ArgumentException($"{option.Name}: '{text}' is not a size (e.g. 8MiB, 512KiB, 1048576)");
        }

        return value >= min && value <= max
            ? value
            : throw new ArgumentException($"{option.Name}: '{text}' is out of range (at least {min} byte(s), at most {max} bytes)");
    }
}
