using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using FsmGateway.Routing;

namespace FsmGateway.Transport.ProxyProtocol;

/// <summary>
/// Writes the PROXY protocol header (https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt) that goes first on an
/// upstream connection. TCP over IPv4 or IPv6; without a usable client address, v1 <c>UNKNOWN</c> or v2 <c>LOCAL</c>.
/// </summary>
internal static class ProxyProtocolWriter
{
    /// <summary>The most bytes <see cref="Write"/> writes: a v1 header's 107.</summary>
    public const int MaxLength = ProxyProtocolHeader.V1MaxLength;

    /// <summary>Writes the header into <paramref name="buffer"/>.</summary>
    /// <param name="version">V1 (text) or V2 (binary).</param>
    /// <param name="source">The client's address and port; <see langword="null"/> (or not IP) when unknown.</param>
    /// <param name="destination">The address and port the client connected to; <see langword="null"/> (or not IP) when unknown.</param>
    /// <param name="buffer">At least <see cref="MaxLength"/> bytes.</param>
    /// <returns>The number of bytes written.</returns>
    public static int Write(ProxyProtocolVersion version, EndPoint? source, EndPoint? destination, Span<byte> buffer)
    {
        if (buffer.Length < MaxLength)
        {
            throw new ArgumentException($"The buffer must hold at least {MaxLength} bytes.", nameof(buffer));
        }

        var addresses = Addresses(source, destination);
        return version == ProxyProtocolVersion.V1 ? WriteV1(addresses, buffer) : WriteV2(addresses, buffer);
    }

    /// <summary>Writes the header into a new array (for tests and tools; the connection path uses <see cref="Write"/>).</summary>
    /// <param name="version">V1 or V2.</param>
    /// <param name="source">The client's address and port, or <see langword="null"/>.</param>
    /// <param name="destination">The address and port the client connected to, or <see langword="null"/>.</param>
    /// <returns>The header's bytes.</returns>
    public static byte[] ToArray(ProxyProtocolVersion version, EndPoint? source, EndPoint? destination)
    {
        Span<byte> buffer = stackalloc byte[MaxLength];
        return buffer[..Write(version, source, destination, buffer)].ToArray();
    }

    /// <summary>Both endpoints as IP endpoints of one family (IPv4-mapped IPv6 as IPv4), or null when either is unusable.</summary>
    private static (IPEndPoint Source, IPEndPoint Destination)? Addresses(EndPoint? source, EndPoint? destination)
    {
        if (source is not IPEndPoint src || destination is not IPEndPoint dst)
        {
            return null;
        }

        var s = src.Address.IsIPv4MappedToIPv6 ? src.Address.MapToIPv4() : src.Address;
        var d = dst.Address.IsIPv4MappedToIPv6 ? dst.Address.MapToIPv4() : dst.Address;
        if (s.AddressFamily != d.AddressFamily)
        {
            // One IPv4, one IPv6 (a dual-stack socket's oddity): both as IPv6, which represents either.
            s = s.MapToIPv6();
            d = d.MapToIPv6();
        }

        if (s.AddressFamily == AddressFamily.InterNetworkV6 && (s.ScopeId != 0 || d.ScopeId != 0))
        {
            // The header has no room for a scope (link-local %eth0); the bare address is what a receiver can parse.
            s = new IPAddress(s.GetAddressBytes());
            d = new IPAddress(d.GetAddressBytes());
        }

        // The usual case, nothing mapped: the endpoints as they are, no allocation.
        return ReferenceEquals(s, src.Address) && ReferenceEquals(d, dst.Address)
            ? (src, dst)
            : (new IPEndPoint(s, src.Port), new IPEndPoint(d, dst.Port));
    }

    private static int WriteV1((IPEndPoint Source, IPEndPoint Destination)? addresses, Span<byte> buffer)
    {
        if (addresses is not var (source, destination))
        {
            "PROXY UNKNOWN\r\n"u8.CopyTo(buffer);
            return ProxyProtocolHeader.V1MinLength;
        }

        var length = 0;
        Append(buffer, ref length, source.AddressFamily == AddressFamily.InterNetwork ? "PROXY TCP4 "u8 : "PROXY TCP6 "u8);
        length += Format(source.Address, buffer[length..]);
        buffer[length++] = (byte)' ';
        length += Format(destination.Address, buffer[length..]);
        buffer[length++] = (byte)' ';
        length += Format(source.Port, buffer[length..]);
        buffer[length++] = (byte)' ';
        length += Format(destination.Port, buffer[length..]);
        Append(buffer, ref length, "\r\n"u8);
        return length;
    }

    private static int WriteV2((IPEndPoint Source, IPEndPoint Destination)? addresses, Span<byte> buffer)
    {
        ProxyProtocolHeader.V2Signature.CopyTo(buffer);
        if (addresses is not var (source, destination))
        {
            buffer[12] = 0x20; // version 2, LOCAL
            buffer[13] = 0x00; // AF_UNSPEC
            BinaryPrimitives.WriteUInt16BigEndian(buffer[14..], 0);
            return ProxyProtocolHeader.V2FixedLength;
        }

        var v4 = source.AddressFamily == AddressFamily.InterNetwork;
        var size = v4 ? 4 : 16;
        buffer[12] = 0x21; // version 2, PROXY
        buffer[13] = v4 ? (byte)0x11 : (byte)0x21; // TCP over IPv4 / IPv6
        BinaryPrimitives.WriteUInt16BigEndian(buffer[14..], (ushort)((2 * size) + 4));
        var at = ProxyProtocolHeader.V2FixedLength;
        source.Address.TryWriteBytes(buffer.Slice(at, size), out _);
        destination.Address.TryWriteBytes(buffer.Slice(at + size, size), out _);
        BinaryPrimitives.WriteUInt16BigEndian(buffer[(at + (2 * size))..], (ushort)source.Port);
        BinaryPrimitives.WriteUInt16BigEndian(buffer[(at + (2 * size) + 2)..], (ushort)destination.Port);
        return at + (2 * size) + 4;
    }

    private static void Append(Span<byte> buffer, ref int length, ReadOnlySpan<byte> text)
    {
        text.CopyTo(buffer[length..]);
        length += text.Length;
    }

    private static int Format<T>(T value, Span<byte> buffer)
        where T : IUtf8SpanFormattable
    {
        // IPv6 is written compressed (RFC 5952), IPv4 dotted decimal: what the specification asks for.
        value.TryFormat(buffer, out var written, default, System.Globalization.CultureInfo.InvariantCulture);
        return written;
    }
}
