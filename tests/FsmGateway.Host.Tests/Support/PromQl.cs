using System.Text;
using System.Text.RegularExpressions;

namespace FsmGateway.Host.Tests.Support;

/// <summary>
/// Just enough of PromQL's lexical structure to list the metric names an expression selects: string literals, label
/// matchers (<c>{...}</c>), ranges (<c>[...]</c>) and label lists (<c>by (...)</c>, <c>on (...)</c>, ...) are skipped;
/// an identifier followed by <c>(</c> is a function or an aggregation; keywords are not names; what is left selects
/// a metric. Grafana's variables (<c>$__rate_interval</c>, <c>$namespace</c>) are replaced first.
/// </summary>
internal static partial class PromQl
{
    private static readonly HashSet<string> Keywords = new(StringComparer.OrdinalIgnoreCase)
    {
        "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan", "atan2",
    };

    /// <summary><paramref name="expression"/> with Grafana's variables replaced by values Prometheus accepts.</summary>
    public static string WithoutGrafanaVariables(string expression) =>
        GrafanaVariable().Replace(expression.Replace("$__rate_interval", "1m", StringComparison.Ordinal).Replace("$__interval", "1m", StringComparison.Ordinal).Replace("$__range", "1h", StringComparison.Ordinal), ".*");

    /// <summary>The metric names <paramref name="expression"/> selects.</summary>
    public static IReadOnlySet<string> MetricNames(string expression)
    {
        var text = WithoutGrafanaVariables(expression);
        var skipped = new StringBuilder(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            switch (text[i])
            {
                case '"' or '\'' or '`':
                    i = SkipString(text, i);
                    skipped.Append(' ');
                    break;
                case '{':
                    i = SkipTo(text, i, '}');
                    skipped.Append(' ');
                    break;
                case '[':
                    i = SkipTo(text, i, ']');
                    skipped.Append(' ');
                    break;
                default:
                    skipped.Append(text[i]);
                    break;
            }
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        var rest = LabelList().Replace(skipped.ToString(), " ");
        foreach (Match token in Identifier().Matches(rest))
        {
            var after = rest.AsSpan(token.Index + token.Length).TrimStart();
            if (!Keywords.Contains(token.Value) && (after.IsEmpty || after[0] != '('))
            {
                names.Add(token.Value);
            }
        }

        return names;
    }

    private static int SkipString(string text, int start)
    {
        var quote = text[start];
        for (var i = start + 1; i < text.Length; i++)
        {
            if (text[i] == '\\' && quote != '`')
            {
                i++;
            }
            else if (text[i] == quote)
            {
                return i;
            }
        }

        throw new FormatException($"unterminated string in {text}");
    }

    private static int SkipTo(string text, int start, char close)
    {
        for (var i = start + 1; i < text.Length; i++)
        {
            if (text[i] is '"' or '\'' or '`')
            {
                i = SkipString(text, i);
            }
            else if (text[i] == close)
            {
                return i;
            }
        }

        throw new FormatException($"no '{close}' closes the one at {start} in {text}");
    }

    // Not preceded by a digit or '.', so 1e3, 0.5 and 5m are numbers and durations, not names.
    [GeneratedRegex(@"(?<![0-9.\w])[a-zA-Z_:][a-zA-Z0-9_:]*")]
    private static partial Regex Identifier();

    [GeneratedRegex(@"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", RegexOptions.IgnoreCase)]
    private static partial Regex LabelList();

    [GeneratedRegex(@"\$\{?[a-zA-Z_][a-zA-Z0-9_]*\}?")]
    private static partial Regex GrafanaVariable();
}
