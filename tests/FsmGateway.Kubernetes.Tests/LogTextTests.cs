using Xunit;

namespace FsmGateway.Kubernetes.Tests;

public sealed class LogTextTests
{
    [Theory]
    [InlineData("gateway.yaml", "gateway.yaml")]
    [InlineData("a\nfail: forged line", "a\\nfail: forged line")]
    [InlineData("a\r\nb\tc", "a\\r\\nb\\tc")]
    [InlineData("\u001b[31mred", "\\u001b[31mred")]
    [InlineData("evil\u202egnp.yaml", "evil\\u202egnp.yaml")]
    [InlineData("ünïcødé 🚀.yaml", "ünïcødé 🚀.yaml")]
    [InlineData("a\\nb", "a\\\\nb")]
    public void Input_text_cannot_break_or_forge_a_log_line(string input, string expected) =>
        Assert.Equal(expected, LogText.Escape(input));

    [Fact]
    public void Long_input_is_cut()
    {
        var escaped = LogText.Escape(new string('x', 10_000));
        Assert.Equal(LogText.MaxLength + 1, escaped.Length);
        Assert.EndsWith("…", escaped, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("\n")]
    [InlineData("\u001b")]
    [InlineData("\\")]
    [InlineData("🚀")]
    public void Long_input_is_cut_between_characters_never_inside_an_escape_or_a_pair(string last)
    {
        // One character short of the limit, then something two characters wide: it must go whole or not at all.
        var prefix = new string('x', LogText.MaxLength - 1);
        Assert.Equal(prefix + "…", LogText.Escape(prefix + last + "tail"));
    }
}
