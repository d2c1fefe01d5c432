using FsmGateway.Routing.Compilation;

namespace FsmGateway.Routing.Tests;

/// <summary>
/// Issue 10: an IPRestriction entry becomes the network the transport matches: a bare address is one host, host bits are
/// cleared, and only the textual forms FSM (Go) accepts are read, so no entry silently names another host.
/// </summary>
public sealed class IPRestrictionNormalizationTests
{
    [Theory]
    [InlineData("10.0.0.0/8", "10.0.0.0/8")]
    [InlineData("10.1.2.3/8", "10.0.0.0/8")]
    [InlineData("192.168.1.7", "192.168.1.7/32")]
    [InlineData(" 192.168.1.7 ", "192.168.1.7/32")]
    [InlineData("0.0.0.0/0", "0.0.0.0/0")]
    [InlineData("2001:db8::1", "2001:db8::1/128")]
    [InlineData("2001:db8::1/32", "2001:db8::/32")]
    [InlineData("2001:DB8:0:0::/48", "2001:db8::/48")]
    [InlineData("::/0", "::/0")]
    [InlineData("::ffff:10.0.0.1", "::ffff:10.0.0.1/128")]
    public void A_valid_entry_is_normalized(string entry, string network)
    {
        Assert.Equal(network, FsmFilters.Normalize(entry));
    }

    [Theory]
    [InlineData("10.0.0.010")]
    [InlineData("010.0.0.1")]
    [InlineData("0x0a.0.0.1")]
    [InlineData("0x0a000001")]
    [InlineData("10.1")]
    [InlineData("167772161")]
    [InlineData("10.0.0.256")]
    [InlineData("10.0.0.0/33")]
    [InlineData("2001:db8::/129")]
    [InlineData("10.0.0.0/")]
    [InlineData("10.0.0.0/-1")]
    [InlineData("10.0.0.0/+8")]
    [InlineData("fe80::1%eth0")]
    [InlineData("example.com")]
    [InlineData("")]
    public void An_entry_that_is_not_an_ip_or_cidr_is_refused(string entry)
    {
        Assert.Null(FsmFilters.Normalize(entry));
    }
}
