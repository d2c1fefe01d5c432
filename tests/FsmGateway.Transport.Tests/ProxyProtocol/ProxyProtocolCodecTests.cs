using System.Buffers.Binary;
using System.Net;
using System.Text;
using FsmGateway.Routing;
using FsmGateway.Transport.ProxyProtocol;

namespace FsmGateway.Transport.Tests.ProxyProtocol;

/// <summary>
/// The PROXY protocol writer and parser against the specification's byte layouts, and the parser's promise that an
/// incomplete header never asks for a byte past its own end.
/// </summary>
public sealed class ProxyProtocolCodecTests
{
    private static readonly IPEndPoint Client4 = new(IPAddress.Parse("127.0.0.7"), 54321);
    private static readonly IPEndPoint Gateway4 = new(IPAddress.Parse("127.0.0.1"), 8080);
    private static readonly IPEndPoint Client6 = new(IPAddress.Parse("2001:db8::7"), 54321);
    private static readonly IPEndPoint Gateway6 = new(IPAddress.Parse("2001:db8::1"), 443);

    [Fact]
    public void Write_V1Tcp4_IsTheSpecificationsText() =>
        Assert.Equal("PROXY TCP4 127.0.0.7 127.0.0.1 54321 8080\r\n", Encoding.ASCII.GetString(ProxyProtocolWriter.ToArray(ProxyProtocolVersion.V1, Client4, Gateway4)));

    [Fact]
    public void Write_V1Tcp6_IsCompressedIpv6() =>
        Assert.Equal("PROXY TCP6 2001:db8::7 2001:db8::1 54321 443\r\n", Encoding.ASCII.GetString(ProxyProtocolWriter.ToArray(ProxyProtocolVersion.V1, Client6, Gateway6)));

    [Fact]
    public void Write_V1WithoutClientAddress_IsUnknown() =>
        Assert.Equal("PROXY UNKNOWN\r\n", Encoding.ASCII.GetString(ProxyProtocolWriter.ToArray(ProxyProtocolVersion.V1, null, Gateway4)));

    [Fact]
    public void Write_IPv4MappedIPv6_IsWrittenAsTcp4() =>
        Assert.Equal(
            "PROXY TCP4 127.0.0.7 127.0.0.1 54321 8080\r\n",
            Encoding.ASCII.GetString(ProxyProtocolWriter.ToArray(ProxyProtocolVersion.V1, new IPEndPoint(Client4.Address.MapToIPv6(), Client4.Port), new IPEndPoint(Gateway4.Address.MapToIPv6(), Gateway4.Port))));

    [Fact]
    public void Write_V2Tcp4_IsTheSpecificationsLayout()
    {
        var header = ProxyProtocolWriter.ToArray(ProxyProtocolVersion.V2, Client4, Gateway4);

        byte[] expected =
        [
            0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, // signature
            0x21, // version 2, PROXY
            0x11, // TCP over IPv4
            0x00, 0x0C, // 12 address bytes
            127, 0, 0, 7, 127, 0, 0, 1,
            0xD4, 0x31, // 54321
            0x1F, 0x90, // 8080
        ];
        Assert.Equal(expected, header);
    }

    [Fact]
    public void Write_V2Tcp6_Has36AddressBytes()
    {
        var header = ProxyProtocolWriter.ToArray(ProxyProtocolVersion.V2, Client6, Gateway6);

        Assert.Equal(16 + 36, header.Length);
        Assert.Equal(0x21, header[13]);
        Assert.Equal(36, BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(14)));
        Assert.Equal(Client6.Address.GetAddressBytes(), header[16..32]);
        Assert.Equal(Gateway6.Address.GetAddressBytes(), header[32..48]);
    }

    [Fact]
    public void Write_V2WithoutClientAddress_IsLocalUnspec()
    {
        var header = ProxyProtocolWriter.ToArray(ProxyProtocolVersion.V2, null, null);

        Assert.Equal(16, header.Length);
        Assert.Equal(0x20, header[12]);
        Assert.Equal(0x00, header[13]);
        Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(14)));
    }

    [Theory]
    [InlineData(ProxyProtocolVersion.V1, false)]
    [InlineData(ProxyProtocolVersion.V1, true)]
    [InlineData(ProxyProtocolVersion.V2, false)]
    [InlineData(ProxyProtocolVersion.V2, true)]
    public void Parse_WhatTheWriterWrote_GivesTheAddressesBack(ProxyProtocolVersion version, bool v6)
    {
        var (source, destination) = v6 ? (Client6, Gateway6) : (Client4, Gateway4);
        var bytes = ProxyProtocolWriter.ToArray(version, source, destination);

        var result = ProxyProtocolParser.Parse(bytes);

        Assert.Equal(ProxyProtocolParseStatus.Complete, result.Status);
        Assert.Equal(bytes.Length, result.Length);
        Assert.Equal(new ProxyProtocolHeader(version == ProxyProtocolVersion.V1 ? 1 : 2, ProxyProtocolCommand.Proxy, source, destination), result.Header);
    }

    [Theory]
    [InlineData("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n")]
    [InlineData("PROXY TCP6 ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n")]
    [InlineData("PROXY UNKNOWN\r\n")]
    [InlineData("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n")]
    [InlineData("PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n")]
    [InlineData("PROXY TCP6 :: ::1 1 2\r\n")]
    [InlineData("PROXY TCP6 ::ffff:127.0.0.7 ::1 1 2\r\n")]
    public void Parse_SpecificationExamples_AreComplete(string text)
    {
        // The specification's worst cases: "ffff:f...f:ffff" stands for a fully written IPv6 address.
        text = text.Replace("ffff:f...f:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", StringComparison.Ordinal);

        var result = ProxyProtocolParser.Parse(Encoding.ASCII.GetBytes(text));

        Assert.Equal(ProxyProtocolParseStatus.Complete, result.Status);
        Assert.Equal(text.Length, result.Length);
    }

    [Fact]
    public void Parse_LongestUnknownLine_Is107BytesAndAccepted()
    {
        var text = "PROXY UNKNOWN " + new string('x', 107 - 16) + "\r\n";
        Assert.Equal(107, text.Length);

        Assert.Equal(ProxyProtocolParseStatus.Complete, ProxyProtocolParser.Parse(Encoding.ASCII.GetBytes(text)).Status);
        Assert.Equal(ProxyProtocolParseStatus.Invalid, ProxyProtocolParser.Parse(Encoding.ASCII.GetBytes("PROXY UNKNOWN " + new string('x', 107 - 15) + "\r\n")).Status);
    }

    [Theory]
    [InlineData("PROXY TCP4 127.0.0.1 127.0.0.1 1 2\n")] // LF without CR
    [InlineData("PROXY TCP5 127.0.0.1 127.0.0.1 1 2\r\n")] // protocol
    [InlineData("PROXY TCP4 127.0.0.1 127.0.0.1 1\r\n")] // a field missing
    [InlineData("PROXY TCP4 127.0.0.1 127.0.0.1 1 2 3\r\n")] // a field too many
    [InlineData("PROXY TCP4 127.0.0.1  127.0.0.1 1 2\r\n")] // two spaces
    [InlineData("PROXY TCP4 127.0.0.256 127.0.0.1 1 2\r\n")] // octet
    [InlineData("PROXY TCP4 127.0.1 127.0.0.1 1 2\r\n")] // three parts
    [InlineData("PROXY TCP4 ::1 127.0.0.1 1 2\r\n")] // IPv6 in TCP4
    [InlineData("PROXY TCP6 127.0.0.1 ::1 1 2\r\n")] // IPv4 in TCP6
    [InlineData("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n")] // a scope
    [InlineData("PROXY TCP4 127.0.0.1 127.0.0.1 65536 2\r\n")] // port range
    [InlineData("PROXY TCP4 127.0.0.1 127.0.0.1 -1 2\r\n")] // sign
    [InlineData("PROXY TCP4 127.0.0.1 127.0.0.1 01 2\r\n")] // leading zero
    [InlineData("PROXY TCP4 127.0.0.1 127.0.0.1 1 2 \r\n")] // trailing space
    [InlineData("PROXY TCP4 127.0.0.1\r127.0.0.1 1 2\r\n")] // CR inside
    [InlineData("PROXY \r\n")]
    [InlineData("PROXY TCP4\r\n")]
    public void Parse_MalformedV1_IsInvalidNotAnException(string text) =>
        Assert.Equal(ProxyProtocolParseStatus.Invalid, ProxyProtocolParser.Parse(Encoding.ASCII.GetBytes(text)).Status);

    [Theory]
    [InlineData(0x11, 0x0C, false)] // version 1 in the version nibble
    [InlineData(0x22, 0x0C, false)] // command 2
    [InlineData(0x21, 0x0B, false)] // TCP4 with 11 address bytes
    [InlineData(0x21, 0x13, false)] // family 1, protocol 3
    [InlineData(0x21, 0x41, false)] // family 4
    [InlineData(0x21, 0x0C, true)] // 537 bytes after the fixed part
    public void Parse_MalformedV2_IsInvalidNotAnException(byte versionCommand, byte familyOrLength, bool oversized)
    {
        var header = ProxyProtocolWriter.ToArray(ProxyProtocolVersion.V2, Client4, Gateway4);
        header[12] = versionCommand;
        if (familyOrLength is 0x0B)
        {
            BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(14), familyOrLength);
        }
        else if (familyOrLength is not 0x0C)
        {
            header[13] = familyOrLength;
        }

        if (oversized)
        {
            BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(14), ProxyProtocolHeader.V2MaxPayload + 1);
        }

        Assert.Equal(ProxyProtocolParseStatus.Invalid, ProxyProtocolParser.Parse(header).Status);
    }

    [Fact]
    public void Parse_V2WithTlvs_SkipsThemAndEndsAfterThem()
    {
        var header = ProxyProtocolWriter.ToArray(ProxyProtocolVersion.V2, Client4, Gateway4);
        byte[] tlv = [0x04, 0x00, 0x03, (byte)'a', (byte)'b', (byte)'c']; // PP2_TYPE_NOOP, 3 bytes
        var withTlv = header.Concat(tlv).Concat("payload"u8.ToArray()).ToArray();
        BinaryPrimitives.WriteUInt16BigEndian(withTlv.AsSpan(14), (ushort)(12 + tlv.Length));

        var result = ProxyProtocolParser.Parse(withTlv);

        Assert.Equal(ProxyProtocolParseStatus.Complete, result.Status);
        Assert.Equal(header.Length + tlv.Length, result.Length);
        Assert.Equal(Client4, result.Header!.Source);
    }

    [Fact]
    public void Parse_V2Local_KeepsTheRealEndpointsWhateverTheFamily()
    {
        var header = ProxyProtocolWriter.ToArray(ProxyProtocolVersion.V2, Client4, Gateway4);
        header[12] = 0x20; // LOCAL, with the IPv4 block still there: ignored

        var result = ProxyProtocolParser.Parse(header);

        Assert.Equal(ProxyProtocolParseStatus.Complete, result.Status);
        Assert.Equal(new ProxyProtocolHeader(2, ProxyProtocolCommand.Local, null, null), result.Header);
    }

    [Fact]
    public void Parse_NeitherSignature_IsNoHeader()
    {
        Assert.Equal(ProxyProtocolParseStatus.NoHeader, ProxyProtocolParser.Parse("GET / HTTP/1.1\r\n"u8).Status);
        Assert.Equal(ProxyProtocolParseStatus.NoHeader, ProxyProtocolParser.Parse("PROXZ"u8).Status);
        Assert.Equal(ProxyProtocolParseStatus.NoHeader, ProxyProtocolParser.Parse([0x0D, 0x0A, 0x0D, 0x0B]).Status);
    }

    /// <summary>
    /// The property the reader's "never past the header" rests on: for every proper prefix of a valid header, the bytes
    /// the parser asks for do not reach past the header's end, over random v1 and v2 headers (with TLVs).
    /// </summary>
    [Fact]
    public void Parse_AnyPrefixOfAValidHeader_NeverAsksForMoreThanTheHeaderHolds()
    {
        var random = new Random(20261130);
        for (var i = 0; i < 2_000; i++)
        {
            var header = RandomValidHeader(random);
            for (var length = 0; length < header.Length; length++)
            {
                var result = ProxyProtocolParser.Parse(header.AsSpan(0, length));
                Assert.True(result.Status == ProxyProtocolParseStatus.Incomplete, $"prefix {length} of {Convert.ToHexString(header)}: {result.Status} {result.Error}");
                Assert.True(length + result.Needed <= header.Length, $"prefix {length} of {Convert.ToHexString(header)} asks for {result.Needed} more");
            }

            var complete = ProxyProtocolParser.Parse(header);
            Assert.True(complete.Status == ProxyProtocolParseStatus.Complete, $"{Convert.ToHexString(header)}: {complete.Error}");
            Assert.Equal(header.Length, complete.Length);
        }
    }

    /// <summary>Random bytes and mutated headers, fed whole and byte by byte: a result every time, never an exception.</summary>
    [Fact]
    public void Parse_MutatedHeaders_NeverThrow()
    {
        var random = new Random(7);
        for (var i = 0; i < 20_000; i++)
        {
            var bytes = ProxyProtocolMutations.Mutate(random, RandomValidHeader(random));
            for (var length = 0; length <= bytes.Length; length++)
            {
                var result = ProxyProtocolParser.Parse(bytes.AsSpan(0, length));
                if (result.Status == ProxyProtocolParseStatus.Complete)
                {
                    Assert.InRange(result.Length, 1, length);
                }
                else if (result.Status != ProxyProtocolParseStatus.Incomplete)
                {
                    break;
                }
            }
        }
    }

    internal static byte[] RandomValidHeader(Random random)
    {
        var v6 = random.Next(2) == 0;
        var source = new IPEndPoint(RandomAddress(random, v6), random.Next(65536));
        var destination = new IPEndPoint(RandomAddress(random, v6), random.Next(65536));
        switch (random.Next(5))
        {
            case 0:
                return ProxyProtocolWriter.ToArray(ProxyProtocolVersion.V1, source, destination);
            case 1:
                return random.Next(2) == 0
                    ? Encoding.ASCII.GetBytes("PROXY UNKNOWN\r\n")
                    : Encoding.ASCII.GetBytes($"PROXY UNKNOWN {new string('u', random.Next(80))}\r\n");
            case 2:
                return ProxyProtocolWriter.ToArray(ProxyProtocolVersion.V2, null, null);
            default:
                var header = ProxyProtocolWriter.ToArray(ProxyProtocolVersion.V2, source, destination);
                var tlvs = new byte[random.Next(2) == 0 ? 0 : random.Next(1, 200)];
                random.NextBytes(tlvs);
                var whole = header.Concat(tlvs).ToArray();
                BinaryPrimitives.WriteUInt16BigEndian(whole.AsSpan(14), (ushort)(whole.Length - 16));
                return whole;
        }
    }

    private static IPAddress RandomAddress(Random random, bool v6)
    {
        var bytes = new byte[v6 ? 16 : 4];
        random.NextBytes(bytes);
        return new IPAddress(bytes);
    }
}
