using System.Text;
using System.Text.RegularExpressions;
using FsmGateway.Testing.Kubernetes;

namespace FsmGateway.Host.Tests.Support;

/// <summary>A manifest for fuzzing: what it is (to reproduce it) and its bytes.</summary>
internal sealed record FuzzManifest(string Description, byte[] Bytes);

/// <summary>
/// Makes hostile manifests for fuzz tests, deterministically from a seed: mutants of valid manifests (the repository's
/// samples and routing scenarios) at the byte level (flips, cuts, inserts of YAML's special characters, invalid UTF-8)
/// and at the token level (a scalar replaced by <c>.inf</c>, a huge number or an alias; lines swapped, repeated,
/// re-indented; a document repeated, altered or not, so objects are defined twice), plus <see cref="Specials"/>:
/// the known-hostile inputs (aliases, deep nesting, huge scalars, non-UTF-8, empty and 50 MB files...).
/// Used by the <c>compile</c> fuzz test and reusable by any test that feeds manifests to the gateway.
/// </summary>
internal sealed partial class ManifestMutator
{
    private static readonly string[] InterestingScalars =
    [
        ".inf", "-.inf", ".nan", ".NaN", "1e999", "-1e999", "99999999999999999999", "-99999999999999999999",
        "9223372036854775808", "-9223372036854775809", "2147483648", "4294967376", "65536", "0", "-1", "1.5", "1e3",
        "0x50", "0o17", "+80", "~", "null", "true", "no", "\"\"", "''", "[]", "{}", "[[[[]]]]", "*a", "&a x", "&a", "*undefined",
        "!!binary aGk=", "!!int \"80\"", "!custom x", "<<", "? a", "|", ">-", "\"\\u202e\\u0000\"", "\"a\\nb\"", "'it''s'",
        "UPPER_case", "-leading", "trailing-", "a.b.c", "a/b", "\"\t\"", "%YAML", "@", "`", "Ǳ", "名前", "😀",
    ];

    private static readonly byte[][] InterestingBytes =
    [
        ":"u8.ToArray(), "-"u8.ToArray(), "["u8.ToArray(), "]"u8.ToArray(), "{"u8.ToArray(), "}"u8.ToArray(),
        ","u8.ToArray(), "&"u8.ToArray(), "*"u8.ToArray(), "!"u8.ToArray(), "|"u8.ToArray(), ">"u8.ToArray(),
        "'"u8.ToArray(), "\""u8.ToArray(), "#"u8.ToArray(), "\n"u8.ToArray(), "\t"u8.ToArray(), " "u8.ToArray(),
        "%"u8.ToArray(), "@"u8.ToArray(), "?"u8.ToArray(), "\r"u8.ToArray(), "\n---\n"u8.ToArray(), "\n...\n"u8.ToArray(),
        [0x00], [0xff], [0xc3], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xef, 0xbb, 0xbf], [0xe2, 0x80, 0xae], [0x1b],
    ];

    private readonly Random _random;
    private readonly IReadOnlyList<(string Name, string Text)> _seeds;

    /// <summary>Creates a mutator; the same <paramref name="seed"/> and seeds give the same mutants in the same order.</summary>
    public ManifestMutator(int seed, IReadOnlyList<(string Name, string Text)> seeds)
    {
        _random = new Random(seed);
        _seeds = seeds;
    }

    /// <summary>The repository's valid manifests, in a stable order: the samples and the routing scenarios.</summary>
    public static IReadOnlyList<(string Name, string Text)> RepositorySeeds() =>
    [
        .. Directory.EnumerateFiles(RepoPaths.Of("samples"), "*.yaml", SearchOption.AllDirectories)
            .Concat(Directory.EnumerateFiles(RepoPaths.Of("tests/FsmGateway.Routing.Tests/Scenarios"), "*.yaml"))
            .Order(StringComparer.Ordinal)
            .Select(f => (Path.GetRelativePath(RepoPaths.Root, f), File.ReadAllText(f))),
    ];

    /// <summary>The next mutant: one to three mutations of one seed.</summary>
    public FuzzManifest Next()
    {
        var (name, text) = _seeds[_random.Next(_seeds.Count)];
        var bytes = Encoding.UTF8.GetBytes(text);
        var applied = new List<string>();
        var count = 1 + _random.Next(3);
        for (var i = 0; i < count; i++)
        {
            var (what, mutated) = _random.Next(2) == 0 ? MutateBytes(bytes) : MutateTokens(Encoding.UTF8.GetString(bytes));
            bytes = mutated;
            applied.Add(what);
        }

        return new FuzzManifest($"{name}: {string.Join("; ", applied)}", bytes);
    }

    /// <summary>
    /// The known-hostile inputs. Each is made when asked for (one is 50 MB), from <paramref name="valid"/>, a valid
    /// manifest with a Service (to embed hostile values where a real manifest has them).
    /// </summary>
    public static IEnumerable<(string Name, Func<byte[]> Bytes)> Specials(string valid)
    {
        static byte[] U(string s) => Encoding.UTF8.GetBytes(s);
        const string head = "apiVersion: v1\nkind: Service\nmetadata: { name: svc }\n";
        yield return ("empty file", () => []);
        yield return ("only whitespace", () => U("  \n\n\t\n"));
        yield return ("only separators and comments", () => U("---\n# x\n---\n...\n---\n"));
        yield return ("self-referencing alias", () => U("apiVersion: v1\nkind: Service\nmetadata: &m {name: x, labels: *m}\n"));
        yield return ("alias inside its own sequence", () => U(head + "spec: &s { ports: [ *s ] }\n"));
        yield return ("alias to a later anchor", () => U(head + "a: *later\nb: &later 1\n"));
        yield return ("alias as a key", () => U(head + "x: &k a\n*k : 1\n"));
        yield return ("anchor on every node", () => U(head.Replace("metadata: {", "metadata: &m0 {", StringComparison.Ordinal) + "spec: &s { ports: &p [ &q { port: &r 80 } ] }\nother: *s\n"));
        yield return ("billion laughs (9 levels)", () => U(BillionLaughs(head, 9)));
        yield return ("2,000 alias-heavy documents in one file", () => U(string.Join("---\n", Enumerable.Repeat(BillionLaughs(head, 4), 2_000))));
        yield return ("billion laughs in a mapping", () => U(head + "a: &a {a: x, b: x, c: x, d: x, e: x, f: x, g: x, h: x}\n" + string.Concat(Enumerable.Range(1, 8).Select(i => $"l{i}: &a{i} {{a: *a{(i == 1 ? "" : i - 1)}, b: *a{(i == 1 ? "" : i - 1)}, c: *a{(i == 1 ? "" : i - 1)}, d: *a{(i == 1 ? "" : i - 1)}, e: *a{(i == 1 ? "" : i - 1)}}}\n"))));
        yield return ("deep flow sequences", () => U(head + "spec: " + new string('[', 200_000) + new string(']', 200_000) + "\n"));
        yield return ("deep flow mappings", () => U(head + "spec: " + string.Concat(Enumerable.Repeat("{a: ", 100_000)) + "x" + new string('}', 100_000) + "\n"));
        yield return ("deep block sequences", () => U(head + "spec:\n  " + string.Concat(Enumerable.Repeat("- ", 100_000)) + "x\n"));
        yield return ("deep block mappings", () => U(head + "spec:\n" + string.Concat(Enumerable.Range(1, 5_000).Select(i => new string(' ', i) + "a:\n"))));
        yield return ("unclosed flow sequence", () => U("apiVersion: v1\nkind: Service\nmetadata:\n  name: [foo\nspec:\n  ports:\n    - port: 80\n"));
        yield return ("unclosed quote", () => U("apiVersion: v1\nkind: Service\nmetadata:\n  name: \"foo\nspec: {}\n"));
        yield return ("huge scalar value (8 MB)", () => U(head.Replace("name: svc", "name: " + new string('a', 8 << 20), StringComparison.Ordinal)));
        yield return ("huge key (1 MB)", () => U(head + new string('k', 1 << 20) + ": 1\n"));
        yield return ("huge block scalar (4 MB)", () => U(head + "data: |\n" + string.Concat(Enumerable.Repeat("  line of text\n", 300_000))));
        yield return ("many keys (300,000)", () => U(head + "x: {" + string.Join(", ", Enumerable.Range(0, 300_000).Select(i => $"k{i}: {i}")) + "}\n"));
        yield return ("many documents (10,000)", () => U(string.Concat(Enumerable.Range(0, 10_000).Select(i => $"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: c{i} }}\n"))));
        yield return ("over 16 MiB (50 MB)", () => U(string.Concat(Enumerable.Repeat("# padding to fifty megabytes of comment lines, which are valid YAML....\n", 700_000))));
        yield return ("invalid UTF-8 byte", () => [.. U(head), 0xff, .. U(": x\n")]);
        yield return ("overlong UTF-8", () => [.. U(head + "x: "), 0xc0, 0xaf, .. U("\n")]);
        yield return ("UTF-8 encoded surrogate", () => [.. U(head + "x: "), 0xed, 0xa0, 0x80, .. U("\n")]);
        yield return ("truncated UTF-8 at the end", () => [.. U(head + "x: "), 0xe2, 0x82]);
        yield return ("UTF-16 with a byte-order mark", () => [0xff, 0xfe, .. Encoding.Unicode.GetBytes(valid)]);
        yield return ("NUL bytes", () => [.. U(head), 0x00, 0x00, .. U("x: 1\n")]);
        yield return ("byte-order mark mid-file", () => U(head + "\ufeffx: 1\n"));
        yield return ("control characters and bidi overrides in a name", () => U("apiVersion: v1\nkind: Service\nmetadata: { name: \"a\\u001b[31m\\u202eb\\nc\" }\n"));
        yield return ("newline in a kind and an apiVersion", () => U("apiVersion: \"v1\\nerror: forged\"\nkind: \"Service\\r\\nerror: forged\"\nmetadata: { name: a }\n"));
        yield return (".inf port", () => U(head + "spec: { ports: [ { port: .inf } ] }\n"));
        yield return (".nan weight", () => U("apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TCPRoute\nmetadata: { name: r }\nspec: { rules: [ { backendRefs: [ { name: a, port: 80, weight: .nan } ] } ] }\n"));
        yield return (".inf name and -.inf generation", () => U("apiVersion: v1\nkind: Service\nmetadata: { name: .inf, generation: -.inf }\n"));
        yield return ("1e999 port", () => U(head + "spec: { ports: [ { port: 1e999 } ] }\n"));
        yield return ("int overflow everywhere", () => U("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: { name: g, generation: 99999999999999999999999 }\nspec: { gatewayClassName: fsm, listeners: [ { name: a, port: 4294967376, protocol: TCP } ] }\n"));
        yield return ("weights summing past int.MaxValue", () => U("apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TCPRoute\nmetadata: { name: r }\nspec: { parentRefs: [ { name: g } ], rules: [ { backendRefs: [" + string.Join(", ", Enumerable.Range(0, 3000).Select(i => $"{{ name: s{i}, port: 80, weight: 1000000 }}")) + "] } ] }\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: { name: g }\nspec: { gatewayClassName: fsm, listeners: [ { name: a, port: 80, protocol: TCP } ] }\n"));
        yield return ("duplicate keys", () => U(head + "spec: { ports: [ { port: 80, port: 81 } ] }\nspec: {}\n"));
        yield return ("the same object twice, different", () => U(valid + "\n---\n" + valid.Replace("port: 8000", "port: 8002", StringComparison.Ordinal) + "\n"));
        yield return ("the same object twice, identical", () => U(valid + "\n---\n" + valid + "\n"));
        yield return ("2,000 listeners on one Gateway", () => U("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: { name: g }\nspec:\n  gatewayClassName: fsm\n  listeners:\n" + string.Concat(Enumerable.Range(0, 2000).Select(i => $"    - {{ name: l{i}, port: {1000 + i}, protocol: TCP }}\n"))));
        yield return ("2,000 routes to one Gateway", () => U("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: { name: g }\nspec: { gatewayClassName: fsm, listeners: [ { name: a, port: 80, protocol: TCP } ] }\n" + string.Concat(Enumerable.Range(0, 2000).Select(i => $"---\napiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TCPRoute\nmetadata: {{ name: r{i} }}\nspec: {{ parentRefs: [ {{ name: g }} ], rules: [ {{ backendRefs: [ {{ name: s{i}, port: 80 }} ] }} ] }}\n"))));
        yield return ("kind: List holding lists", () => U("apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: List\n    items: [ { apiVersion: v1, kind: Service, metadata: { name: a } } ]\n  - 7\n  - null\n  - [ x ]\n"));
        yield return ("tags", () => U("apiVersion: !!str v1\nkind: !<tag:yaml.org,2002:str> Service\nmetadata: !!map { name: !!binary c3Zj }\nspec: { ports: [ { port: !!int \"80\" } ] }\n"));
        yield return ("merge keys", () => U("apiVersion: v1\nkind: Service\nmetadata: &m { name: a }\nspec: { <<: *m, ports: [ { <<: { port: 80 } } ] }\n"));
        yield return ("directives and document ends", () => U("%YAML 1.1\n%TAG ! tag:example.com,2000:\n--- !x\n" + valid + "\n...\n%YAML 1.2\n---\n" + valid + "\n"));
        yield return ("complex keys", () => U(head + "? [a, b]\n: 1\n? { a: b }\n: 2\n"));
        yield return ("CRLF and lone CR line ends", () => U(valid.Replace("\n", "\r\n", StringComparison.Ordinal) + "\r---\rapiVersion: v1\r"));
        yield return ("tabs for indentation", () => U(valid.Replace("  ", "\t", StringComparison.Ordinal)));
        yield return ("scalar document", () => U("just a string\n---\n42\n---\n- a\n- b\n"));
        yield return ("invalid names of every kind", () => U("apiVersion: v1\nkind: Namespace\nmetadata: { name: A_B }\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: { name: \"\" }\nspec: { controllerName: x }\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: { name: \"" + new string('a', 300) + "\", namespace: \"-x\" }\naddressType: IPv4\n"));
    }

    private static string BillionLaughs(string head, int levels)
    {
        var text = new StringBuilder(head).Append("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for (var i = 1; i <= levels; i++)
        {
            text.Append($"l{i}: &l{i} [").AppendJoin(", ", Enumerable.Repeat($"*l{i - 1}", 10)).Append("]\n");
        }

        return text.ToString();
    }

    private (string What, byte[] Bytes) MutateBytes(byte[] bytes)
    {
        var list = new List<byte>(bytes);
        var at = list.Count == 0 ? 0 : _random.Next(list.Count);
        switch (_random.Next(6))
        {
            case 0 when list.Count > 0:
                var bit = (byte)(1 << _random.Next(8));
                list[at] ^= bit;
                return ($"flip bit {bit:x2} at byte {at}", [.. list]);
            case 1 when list.Count > 0:
                var length = Math.Min(list.Count - at, 1 + _random.Next(64));
                list.RemoveRange(at, length);
                return ($"cut {length} bytes at {at}", [.. list]);
            case 2:
                var insert = InterestingBytes[_random.Next(InterestingBytes.Length)];
                list.InsertRange(at, insert);
                return ($"insert {Convert.ToHexString(insert)} at {at}", [.. list]);
            case 3 when list.Count > 0:
                var span = Math.Min(list.Count - at, 1 + _random.Next(200));
                list.InsertRange(at, list.GetRange(at, span));
                return ($"repeat {span} bytes at {at}", [.. list]);
            case 4:
                list.RemoveRange(at, list.Count - at);
                return ($"truncate at {at}", [.. list]);
            default:
                var random = new byte[1 + _random.Next(8)];
                _random.NextBytes(random);
                list.InsertRange(at, random);
                return ($"insert random {Convert.ToHexString(random)} at {at}", [.. list]);
        }
    }

    private (string What, byte[] Bytes) MutateTokens(string text)
    {
        var lines = text.Split('\n').ToList();
        var line = _random.Next(lines.Count);
        switch (_random.Next(8))
        {
            case 0:
            case 1:
                // Replace one scalar (a word or number after a colon or dash) with an interesting value.
                var scalars = Scalar().Matches(text).ToList();
                if (scalars.Count == 0)
                {
                    goto default;
                }

                var match = scalars[_random.Next(scalars.Count)];
                var value = _random.Next(10) == 0 ? new string('x', 10_000 + _random.Next(100_000)) : InterestingScalars[_random.Next(InterestingScalars.Length)];
                return ($"scalar '{match.Value}' at {match.Index} -> '{Shorten(value)}'", Encoding.UTF8.GetBytes(text[..match.Index] + value + text[(match.Index + match.Length)..]));
            case 2:
                var other = _random.Next(lines.Count);
                (lines[line], lines[other]) = (lines[other], lines[line]);
                return ($"swap lines {line + 1} and {other + 1}", Join(lines));
            case 3:
                lines.Insert(line, lines[line]);
                return ($"repeat line {line + 1}", Join(lines));
            case 4:
                lines.RemoveAt(line);
                return ($"delete line {line + 1}", Join(lines));
            case 5:
                var indent = _random.Next(2) == 0 ? "  " + lines[line] : lines[line].TrimStart();
                lines[line] = indent;
                return ($"re-indent line {line + 1}", Join(lines));
            case 6:
                // An object defined twice: the text repeated, half the time with one value changed.
                var copy = _random.Next(2) == 0 ? text : Scalar().Replace(text, "changed", 1, _random.Next(Math.Max(1, text.Length)));
                return ("document repeated" + (ReferenceEquals(copy, text) ? string.Empty : " with a change"), Encoding.UTF8.GetBytes(text + "\n---\n" + copy));
            case 7:
                var keys = Key().Matches(text).ToList();
                if (keys.Count == 0)
                {
                    goto default;
                }

                var key = keys[_random.Next(keys.Count)];
                var typo = key.Groups[1].Value.Length > 1 ? Swap(key.Groups[1].Value, _random.Next(key.Groups[1].Value.Length - 1)) : key.Groups[1].Value + "x";
                return ($"key '{key.Groups[1].Value}' -> '{typo}'", Encoding.UTF8.GetBytes(text[..key.Groups[1].Index] + typo + text[(key.Groups[1].Index + key.Groups[1].Length)..]));
            default:
                lines.Insert(line, "---");
                return ($"document break before line {line + 1}", Join(lines));
        }
    }

    private static byte[] Join(List<string> lines) => Encoding.UTF8.GetBytes(string.Join('\n', lines));

    private static string Swap(string s, int i) => string.Concat(s.AsSpan(0, i), s.AsSpan(i + 1, 1), s.AsSpan(i, 1), s.AsSpan(i + 2));

    private static string Shorten(string s) => s.Length > 40 ? $"{s[..10]}...({s.Length} chars)" : s;

    [GeneratedRegex(@"(?<=[:\-\[,{]\s)[A-Za-z0-9_.\-/""']+")]
    private static partial Regex Scalar();

    [GeneratedRegex(@"([A-Za-z][A-Za-z0-9]*):")]
    private static partial Regex Key();
}
