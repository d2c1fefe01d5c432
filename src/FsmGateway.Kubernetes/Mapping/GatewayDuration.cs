using System.Globalization;
using System.Text.RegularExpressions;

namespace FsmGateway.Kubernetes.Mapping;

/// <summary>
/// Gateway API durations (GEP-2257), the format of every duration in FSM's and Envoy Gateway's policies: the pattern
/// <c>^([0-9]{1,5}(h|m|s|ms)){1,4}$</c>, e.g. <c>1s</c>, <c>500ms</c>, <c>1h30m</c>.
/// </summary>
internal static partial class GatewayDuration
{
    public static bool TryParse(string text, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        var match = Pattern().Match(text);
        if (!match.Success)
        {
            return false;
        }

        var total = TimeSpan.Zero;
        var numbers = match.Groups["n"].Captures;
        var units = match.Groups["u"].Captures;
        for (var i = 0; i < numbers.Count; i++)
        {
            var n = long.Parse(numbers[i].Value, NumberStyles.None, CultureInfo.InvariantCulture);
            total += units[i].Value switch
            {
                "h" => TimeSpan.FromHours(n),
                "m" => TimeSpan.FromMinutes(n),
                "s" => TimeSpan.FromSeconds(n),
                _ => TimeSpan.FromMilliseconds(n),
            };
        }

        duration = total;
        return true;
    }

    [GeneratedRegex("^(?:(?<n>[0-9]{1,5})(?<u>h|ms|m|s)){1,4}$", RegexOptions.CultureInvariant, matchTimeoutMilliseconds: 1000)]
    private static partial Regex Pattern();
}
