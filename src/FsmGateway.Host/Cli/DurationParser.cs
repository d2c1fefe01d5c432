using System.CommandLine;
using System.Globalization;

namespace FsmGateway.Host.Cli;

/// <summary>Durations as operators write them: <c>30s</c>, <c>500ms</c>, <c>2m</c>, or plain seconds.</summary>
internal static class DurationParser
{
    /// <summary>About 30 years: anything longer is a typo, and would overflow later arithmetic.</summary>
    private const double MaxSeconds = 1e9;

    public static bool TryParse(string text, out TimeSpan duration)
    {
        duration = default;
        var (number, unit) = text.EndsWith("ms", StringComparison.Ordinal) ? (text[..^2], 0.001)
            : text.EndsWith('s') ? (text[..^1], 1.0)
            : text.EndsWith('m') ? (text[..^1], 60.0)
            : text.EndsWith('h') ? (text[..^1], 3600.0)
            : (text, 1.0);
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || value < 0 || value * unit > MaxSeconds)
        {
            return false;
        }

        duration = TimeSpan.FromSeconds(value * unit);
        return true;
    }

    /// <summary>The value of a duration option; throws <see cref="ArgumentException"/> naming the option when malformed.</summary>
    public static TimeSpan Read(ParseResult parse, Option<string> option)
    {
        var text = parse.GetValue(option)!;
        return TryParse(text, out var value)
            ? value
            : throw new ArgumentException($"{option.Name}: '{LogText.Escape(text)}' is not a duration (e.g. 30s, 500ms, 2m)");
    }
}
