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
    public void Input_text_cannot_break_or_forge_a_log_line(string input, string expected) =>
        Assert.Equal(expected, LogText.Escape(input));

    [Fact]
    public void Long_input_is_cut()
    {
        var escaped = LogText.Escape(new string('x', 10_000));
        Assert.Equal(LogText.MaxLength + 1, escaped.Length);
        Assert.EndsWith("…", escaped, StringComparison.Ordinal);
    }
}
