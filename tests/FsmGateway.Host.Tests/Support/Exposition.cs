using System.Globalization;
using System.Text.RegularExpressions;

namespace FsmGateway.Host.Tests.Support;

/// <summary>The samples of a Prometheus text exposition: metric name, labels, value.</summary>
internal sealed partial class Exposition
{
    private readonly List<(string Name, Dictionary<string, string> Labels, double Value)> _samples = [];

    public Exposition(string text)
    {
        Text = text;
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var match = Sample().Match(line);
            if (!match.Success)
            {
                throw new FormatException($"not a sample line: {line}");
            }

            var labels = LabelPair().Matches(match.Groups["labels"].Value).ToDictionary(static m => m.Groups[1].Value, static m => m.Groups[2].Value);
            var value = match.Groups["value"].Value switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                var v => double.Parse(v, NumberStyles.Float, CultureInfo.InvariantCulture),
            };
            _samples.Add((match.Groups["name"].Value, labels, value));
        }
    }

    public string Text { get; }

    public static async Task<Exposition> ScrapeAsync(HttpClient http, Uri metrics) => new(await http.GetStringAsync(metrics));

    public bool Has(string name) => _samples.Any(s => s.Name == name);

    /// <summary>The sum over the samples named <paramref name="name"/> whose labels include <paramref name="labels"/> (0 when none).</summary>
    public double Sum(string name, params (string Label, string Value)[] labels) =>
        _samples.Where(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Label, out var v) && v == l.Value)).Sum(static s => s.Value);

    /// <summary>The label sets of the samples named <paramref name="name"/>.</summary>
    public IEnumerable<IReadOnlyDictionary<string, string>> LabelsOf(string name) => _samples.Where(s => s.Name == name).Select(static s => (IReadOnlyDictionary<string, string>)s.Labels);

    public IEnumerable<string> Names => _samples.Select(static s => s.Name).Distinct();

    [GeneratedRegex("""^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>.*)\})? (?<value>\S+)( \d+)?$""")]
    private static partial Regex Sample();

    [GeneratedRegex(@"([a-zA-Z_][a-zA-Z0-9_]*)=""((?:[^""\\]|\\.)*)""")]
    private static partial Regex LabelPair();
}
