using System.Buffers.Binary;

namespace FsmGateway.Transport.Tests.ProxyProtocol;

/// <summary>Mutations of a PROXY protocol header: what a broken or hostile sender might put first on a connection.</summary>
internal static class ProxyProtocolMutations
{
    /// <summary>The kinds of mutation, in the order <see cref="Mutate"/> picks from.</summary>
    public static readonly string[] Kinds = ["truncated", "oversized", "flipped byte", "wrong family", "wrong length", "random bytes", "v1 garbage field", "v1 no CRLF", "version/command"];

    /// <summary>A mutation of <paramref name="header"/> (which may, rarely, still be valid).</summary>
    /// <param name="random">The seeded source.</param>
    /// <param name="header">A valid header.</param>
    /// <returns>The mutated bytes.</returns>
    public static byte[] Mutate(Random random, byte[] header) => Mutate(random, header, random.Next(Kinds.Length));

    /// <summary>A mutation of the given kind.</summary>
    /// <param name="random">The seeded source.</param>
    /// <param name="header">A valid header.</param>
    /// <param name="kind">An index into <see cref="Kinds"/>.</param>
    /// <returns>The mutated bytes.</returns>
    public static byte[] Mutate(Random random, byte[] header, int kind)
    {
        var v2 = header[0] == 0x0D;
        var bytes = (byte[])header.Clone();
        switch (kind)
        {
            case 0: // truncated
                return bytes[..random.Next(1, bytes.Length)];
            case 1: // oversized
                if (v2)
                {
                    BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(14), (ushort)random.Next(537, 65536));
                    return bytes;
                }

                var padding = new byte[random.Next(100, 300)];
                Array.Fill(padding, (byte)'9');
                return [.. bytes[..^2], (byte)' ', .. padding, (byte)'\r', (byte)'\n'];
            case 2: // one byte flipped anywhere
                bytes[random.Next(bytes.Length)] ^= (byte)(1 << random.Next(8));
                return bytes;
            case 3: // wrong family
                if (v2)
                {
                    bytes[13] = (byte)random.Next(0x40, 0x100);
                    return bytes;
                }

                var swapped = System.Text.Encoding.ASCII.GetString(bytes);
                return System.Text.Encoding.ASCII.GetBytes(swapped.Contains("TCP4", StringComparison.Ordinal) ? swapped.Replace("TCP4", "TCP6", StringComparison.Ordinal) : swapped.Replace("TCP6", "TCP4", StringComparison.Ordinal).Replace("UNKNOWN", "UDP4", StringComparison.Ordinal));
            case 4: // wrong length field
                if (v2)
                {
                    var needed = bytes[13] >> 4 switch { 1 => 12, 2 => 36, _ => 1 };
                    BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(14), (ushort)random.Next(0, needed));
                    bytes[12] = 0x21;
                    if (bytes[13] == 0)
                    {
                        bytes[13] = 0x11;
                    }

                    return bytes;
                }

                return [.. bytes[..^2], (byte)' ', (byte)'1', (byte)'\r', (byte)'\n']; // a fifth field
            case 5: // random bytes behind the v1 or v2 signature
                var noise = new byte[random.Next(1, 200)];
                random.NextBytes(noise);
                return [.. bytes[..(v2 ? 12 : 6)], .. noise];
            case 6: // a v1 field replaced by garbage; for v2, the length field made longer than what follows (a truncated body)
                if (v2)
                {
                    BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(14), (ushort)Math.Min(536, bytes.Length - 16 + random.Next(1, 40)));
                    return bytes;
                }

                var text = System.Text.Encoding.ASCII.GetString(bytes);
                var fields = text.TrimEnd('\r', '\n').Split(' ');
                fields[random.Next(1, fields.Length)] = random.Next(4) switch { 0 => "-1", 1 => "99999", 2 => "1.2.3.4.5", _ => "zz" };
                return System.Text.Encoding.ASCII.GetBytes(string.Join(' ', fields) + "\r\n");
            case 7: // v1 line ending damaged
                return v2 ? bytes[..^1] : [.. bytes[..^2], (byte)'\n'];
            default: // version or command nibble
                if (v2)
                {
                    bytes[12] = (byte)random.Next(0x22, 0x100);
                    if (bytes[12] >> 4 == 2 && (bytes[12] & 0x0F) < 2)
                    {
                        bytes[12] = 0x13;
                    }

                    return bytes;
                }

                return [.. "PROXY"u8, (byte)random.Next(0x21, 0x7F), .. bytes[6..]];
        }
    }
}
