using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace FsmGateway.Transport.ProxyProtocol;

/// <summary>Where parsing the bytes received so far stands.</summary>
internal enum ProxyProtocolParseStatus
{
    /// <summary>A whole, valid header: <see cref="ProxyProtocolParseResult.Header"/> and <see cref="ProxyProtocolParseResult.Length"/> are set.</summary>
    Complete,

    /// <summary>Valid so far; at least <see cref="ProxyProtocolParseResult.Needed"/> more bytes belong to the header.</summary>
    Incomplete,

    /// <summary>The bytes start with neither signature: no PROXY protocol header at all.</summary>
    NoHeader,

    /// <summary>A header, but not a valid one: <see cref="ProxyProtocolParseResult.Error"/> says why.</summary>
    Invalid,
}

/// <summary>The outcome of <see cref="ProxyProtocolParser.Parse"/>.</summary>
/// <param name="Status">Where parsing stands.</param>
/// <param name="Header">The header, when complete.</param>
/// <param name="Length">The header's length in bytes, when complete.</param>
/// <param name="Needed">The fewest further bytes the header can still take, when incomplete (always at least 1).</param>
/// <param name="Error">Why the header is invalid.</param>
internal readonly record struct ProxyProtocolParseResult(ProxyProtocolParseStatus Status, ProxyProtocolHeader? Header, int Length, int Needed, string? Error)
{
    public static ProxyProtocolParseResult More(int needed) => new(ProxyProtocolParseStatus.Incomplete, null, 0, Math.Max(1, needed), null);

    public static ProxyProtocolParseResult Invalid(string error) => new(ProxyProtocolParseStatus.Invalid, null, 0, 0, error);

    public static ProxyProtocolParseResult Done(ProxyProtocolHeader header, int length) => new(ProxyProtocolParseStatus.Complete, header, length, 0, null);
}

/// <summary>
/// Parses a PROXY protocol header, v1 or v2 (https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt), from the
/// bytes received so far. When the header is incomplete it says how many more bytes it needs at the least, never more
/// than the header can still take: a reader that asks for exactly that many never receives a byte of the payload
/// behind the header. Bounded (107 bytes for v1, 16 + <see cref="ProxyProtocolHeader.V2MaxPayload"/> for v2); every
/// malformed header is an <see cref="ProxyProtocolParseStatus.Invalid"/> result, never an exception.
/// </summary>
internal static class ProxyProtocolParser
{
    private const int V1Prefix = 6; // "PROXY "

    // The shortest text of each v1 field after the protocol: source, destination, source port, destination port.
    private static readonly int[] MinTcp4 = [7, 7, 1, 1]; // 0.0.0.0
    private static readonly int[] MinTcp6 = [2, 2, 1, 1]; // ::

    /// <summary>Parses the header at the start of <paramref name="data"/>.</summary>
    /// <param name="data">The bytes received so far.</param>
    /// <returns>Complete, incomplete with the bytes still needed, no header, or invalid with the reason.</returns>
    public static ProxyProtocolParseResult Parse(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return ProxyProtocolParseResult.More(ProxyProtocolHeader.V1MinLength);
        }

        var v2 = ProxyProtocolHeader.V2Signature;
        if (data[..Math.Min(data.Length, v2.Length)].SequenceEqual(v2[..Math.Min(data.Length, v2.Length)]))
        {
            return ParseV2(data);
        }

        var v1 = ProxyProtocolHeader.V1Signature;
        if (data[..Math.Min(data.Length, v1.Length)].SequenceEqual(v1[..Math.Min(data.Length, v1.Length)]))
        {
            return data.Length < V1Prefix ? ProxyProtocolParseResult.More(ProxyProtocolHeader.V1MinLength - data.Length) : ParseV1(data);
        }

        return new ProxyProtocolParseResult(ProxyProtocolParseStatus.NoHeader, null, 0, 0, "no PROXY protocol signature");
    }

    private static ProxyProtocolParseResult ParseV2(ReadOnlySpan<byte> data)
    {
        if (data.Length < ProxyProtocolHeader.V2FixedLength)
        {
            return ProxyProtocolParseResult.More(ProxyProtocolHeader.V2FixedLength - data.Length);
        }

        var versionCommand = data[12];
        if (versionCommand >> 4 != 2)
        {
            return ProxyProtocolParseResult.Invalid($"v2 header with version {versionCommand >> 4}");
        }

        var command = versionCommand & 0x0F;
        if (command > 1)
        {
            return ProxyProtocolParseResult.Invalid($"v2 header with unknown command {command}");
        }

        var family = data[13];
        var addressLength = family switch
        {
            0x00 => 0,          // UNSPEC
            0x11 or 0x12 => 12, // TCP or UDP over IPv4
            0x21 or 0x22 => 36, // TCP or UDP over IPv6
            0x31 or 0x32 => 216, // UNIX stream or datagram
            _ => -1,
        };

        if (addressLength < 0)
        {
            return ProxyProtocolParseResult.Invalid($"v2 header with unknown address family and protocol 0x{family:X2}");
        }

        int length = BinaryPrimitives.ReadUInt16BigEndian(data[14..]);
        if (length > ProxyProtocolHeader.V2MaxPayload)
        {
            return ProxyProtocolParseResult.Invalid($"v2 header of {length} address and TLV bytes (at most {ProxyProtocolHeader.V2MaxPayload} are accepted)");
        }

        // LOCAL: the receiver ignores the address block whatever it says; PROXY: the block must hold the family's addresses.
        if (command == 1 && length < addressLength)
        {
            return ProxyProtocolParseResult.Invalid($"v2 header length {length} is shorter than the {addressLength} address bytes of family 0x{family:X2}");
        }

        var total = ProxyProtocolHeader.V2FixedLength + length;
        if (data.Length < total)
        {
            return ProxyProtocolParseResult.More(total - data.Length);
        }

        var block = data[ProxyProtocolHeader.V2FixedLength..total];
        if (command == 0 || (family >> 4) is 0 or 3)
        {
            // LOCAL, AF_UNSPEC, AF_UNIX: no address this gateway can use; the connection's own endpoints stand.
            return ProxyProtocolParseResult.Done(new ProxyProtocolHeader(2, ProxyProtocolCommand.Local, null, null), total);
        }

        var size = family >> 4 == 1 ? 4 : 16;
        var source = new IPEndPoint(new IPAddress(block[..size]), BinaryPrimitives.ReadUInt16BigEndian(block[(2 * size)..]));
        var destination = new IPEndPoint(new IPAddress(block.Slice(size, size)), BinaryPrimitives.ReadUInt16BigEndian(block[((2 * size) + 2)..]));
        return ProxyProtocolParseResult.Done(new ProxyProtocolHeader(2, ProxyProtocolCommand.Proxy, source, destination), total);
    }

    private static ProxyProtocolParseResult ParseV1(ReadOnlySpan<byte> data)
    {
        var max = ProxyProtocolHeader.V1MaxLength;
        var end = data[..Math.Min(data.Length, max)].IndexOf((byte)'\n');
        if (end < 0)
        {
            if (data.Length >= max)
            {
                return ProxyProtocolParseResult.Invalid($"v1 header without CRLF in the first {max} bytes");
            }

            var needed = V1Needed(data[V1Prefix..], out var error);
            if (error is not null)
            {
                return ProxyProtocolParseResult.Invalid(error);
            }

            return data.Length + needed > max
                ? ProxyProtocolParseResult.Invalid($"v1 header cannot end within {max} bytes")
                : ProxyProtocolParseResult.More(needed);
        }

        if (end == 0 || data[end - 1] != (byte)'\r')
        {
            return ProxyProtocolParseResult.Invalid("v1 header ends with LF without CR");
        }

        var line = data[V1Prefix..(end - 1)];
        if (line.IndexOf((byte)'\r') >= 0)
        {
            return ProxyProtocolParseResult.Invalid("v1 header with a CR before its end");
        }

        var length = end + 1;
        var space = line.IndexOf((byte)' ');
        var protocol = space < 0 ? line : line[..space];
        if (protocol.SequenceEqual("UNKNOWN"u8))
        {
            // The specification: the receiver ignores whatever follows UNKNOWN up to the CRLF, and uses the real endpoints.
            return ProxyProtocolParseResult.Done(new ProxyProtocolHeader(1, ProxyProtocolCommand.Local, null, null), length);
        }

        bool v4;
        if (protocol.SequenceEqual("TCP4"u8))
        {
            v4 = true;
        }
        else if (protocol.SequenceEqual("TCP6"u8))
        {
            v4 = false;
        }
        else
        {
            return ProxyProtocolParseResult.Invalid("v1 header with an unknown protocol (TCP4, TCP6 or UNKNOWN)");
        }

        if (space < 0)
        {
            return ProxyProtocolParseResult.Invalid("v1 header without addresses");
        }

        Span<Range> fields = stackalloc Range[5];
        var rest = line[(space + 1)..];
        if (SplitOnSpaces(rest, fields) != 4)
        {
            return ProxyProtocolParseResult.Invalid("v1 header without exactly four fields after the protocol, separated by single spaces");
        }

        if (!TryParseAddress(rest[fields[0]], v4, out var sourceAddress) || !TryParseAddress(rest[fields[1]], v4, out var destinationAddress))
        {
            return ProxyProtocolParseResult.Invalid(v4 ? "v1 header with an invalid IPv4 address" : "v1 header with an invalid IPv6 address");
        }

        if (!TryParsePort(rest[fields[2]], out var sourcePort) || !TryParsePort(rest[fields[3]], out var destinationPort))
        {
            return ProxyProtocolParseResult.Invalid("v1 header with an invalid port (0-65535, decimal, no leading zero)");
        }

        return ProxyProtocolParseResult.Done(
            new ProxyProtocolHeader(1, ProxyProtocolCommand.Proxy, new IPEndPoint(sourceAddress, sourcePort), new IPEndPoint(destinationAddress, destinationPort)),
            length);
    }

    /// <summary>
    /// The fewest bytes an unterminated v1 header after <c>"PROXY "</c> still needs, from the fields seen so far
    /// (each field's shortest text, the single spaces, the CRLF); sets <paramref name="error"/> when what is there can
    /// no longer become a valid header.
    /// </summary>
    private static int V1Needed(ReadOnlySpan<byte> rest, out string? error)
    {
        error = null;
        if (rest.IndexOf((byte)'\r') is var cr and >= 0)
        {
            if (cr != rest.Length - 1)
            {
                error = "v1 header with a CR before its end";
            }

            return 1;
        }

        var space = rest.IndexOf((byte)' ');
        if (space < 0)
        {
            // The protocol is still arriving: UNKNOWN + CRLF, or TCP4/TCP6 and four fields + CRLF.
            if ("UNKNOWN"u8.StartsWith(rest))
            {
                return "UNKNOWN"u8.Length - rest.Length + 2;
            }

            if ("TCP4"u8.StartsWith(rest) || "TCP6"u8.StartsWith(rest))
            {
                return 4 - rest.Length + 1 + 2 + 1 + 2 + 1 + 1 + 1 + 1 + 2;
            }

            error = "v1 header with an unknown protocol (TCP4, TCP6 or UNKNOWN)";
            return 0;
        }

        var protocol = rest[..space];
        if (protocol.SequenceEqual("UNKNOWN"u8))
        {
            return 2;
        }

        int[] minimum;
        if (protocol.SequenceEqual("TCP4"u8))
        {
            minimum = MinTcp4;
        }
        else if (protocol.SequenceEqual("TCP6"u8))
        {
            minimum = MinTcp6;
        }
        else
        {
            error = "v1 header with an unknown protocol (TCP4, TCP6 or UNKNOWN)";
            return 0;
        }

        // Walk the fields that have started; the last one may still be growing.
        var fields = rest[(space + 1)..];
        var index = 0;
        while (true)
        {
            var next = fields.IndexOf((byte)' ');
            var field = next < 0 ? fields : fields[..next];
            if (index >= minimum.Length || (next >= 0 && field.IsEmpty) || !ValidSoFar(field, index, minimum == MinTcp4))
            {
                error = index >= minimum.Length
                    ? "v1 header with more than four fields after the protocol"
                    : "v1 header with an invalid address or port field";
                return 0;
            }

            if (next < 0)
            {
                var needed = Math.Max(0, minimum[index] - field.Length) + 2;
                for (var later = index + 1; later < minimum.Length; later++)
                {
                    needed += 1 + minimum[later];
                }

                return needed;
            }

            fields = fields[(next + 1)..];
            index++;
        }
    }

    /// <summary>Whether a field's bytes so far may still become a valid value (address characters, at most 5 port digits).</summary>
    private static bool ValidSoFar(ReadOnlySpan<byte> field, int index, bool v4)
    {
        if (index >= 2)
        {
            return field.Length <= 5 && !field.ContainsAnyExceptInRange((byte)'0', (byte)'9');
        }

        return field.Length <= (v4 ? 15 : 45) && !field.ContainsAnyExcept(v4 ? Ipv4Characters : Ipv6Characters);
    }

    private static ReadOnlySpan<byte> Ipv4Characters => "0123456789."u8;

    private static ReadOnlySpan<byte> Ipv6Characters => "0123456789abcdefABCDEF:."u8;

    private static int SplitOnSpaces(ReadOnlySpan<byte> text, Span<Range> fields)
    {
        var count = 0;
        var start = 0;
        for (var i = 0; i <= text.Length; i++)
        {
            if (i == text.Length || text[i] == (byte)' ')
            {
                if (i == start || count == fields.Length)
                {
                    return -1; // an empty field (two spaces, leading or trailing space) or too many
                }

                fields[count++] = new Range(start, i);
                start = i + 1;
            }
        }

        return count;
    }

    /// <summary>Strict: dotted decimal IPv4 (four parts of 1-3 digits up to 255), or textual IPv6 without a scope.</summary>
    private static bool TryParseAddress(ReadOnlySpan<byte> text, bool v4, out IPAddress address)
    {
        address = IPAddress.None;
        if (v4)
        {
            Span<byte> bytes = stackalloc byte[4];
            var part = 0;
            var digits = 0;
            var value = 0;
            foreach (var c in text)
            {
                if (c == (byte)'.')
                {
                    if (digits == 0 || part == 3)
                    {
                        return false;
                    }

                    bytes[part++] = (byte)value;
                    digits = value = 0;
                }
                else if (c is >= (byte)'0' and <= (byte)'9' && digits < 3)
                {
                    value = (value * 10) + (c - '0');
                    digits++;
                    if (value > 255)
                    {
                        return false;
                    }
                }
                else
                {
                    return false;
                }
            }

            if (digits == 0 || part != 3)
            {
                return false;
            }

            bytes[3] = (byte)value;
            address = new IPAddress(bytes);
            return true;
        }

        if (text.Length is < 2 or > 45 || text.ContainsAnyExcept(Ipv6Characters))
        {
            return false;
        }

        Span<char> chars = stackalloc char[45];
        for (var i = 0; i < text.Length; i++)
        {
            chars[i] = (char)text[i];
        }

        if (!IPAddress.TryParse(chars[..text.Length], out var parsed) || parsed.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return false;
        }

        address = parsed;
        return true;
    }

    private static bool TryParsePort(ReadOnlySpan<byte> text, out int port)
    {
        port = 0;
        if (text.Length is 0 or > 5 || (text.Length > 1 && text[0] == (byte)'0'))
        {
            return false;
        }

        foreach (var c in text)
        {
            if (c is < (byte)'0' or > (byte)'9')
            {
                return false;
            }

            port = (port * 10) + (c - '0');
        }

        return port <= 65535;
    }
}
