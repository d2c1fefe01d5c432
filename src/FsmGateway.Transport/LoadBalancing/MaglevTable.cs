using System.IO.Hashing;
using System.Net;
using System.Net.Sockets;
using System.Text;
using FsmGateway.Routing;

namespace FsmGateway.Transport.LoadBalancing;

/// <summary>
/// A Maglev lookup table (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load Balancer", NSDI 2016,
/// section 3.4; Envoy's <c>MaglevTable</c>): <see cref="Size"/> slots (a prime), each naming an endpoint, filled by
/// every endpoint in turn along its own permutation of the slots. Every endpoint gets an almost equal share of slots,
/// and adding or removing one endpoint changes only slightly more than its share. The permutation depends only on the
/// endpoint's address and port (XxHash3, fixed seeds), so every replica, and every process after a restart, builds the
/// same table from the same set.
/// </summary>
internal sealed class MaglevTable
{
    private const long OffsetSeed = 0x4d61676c6576L; // "Maglev"
    private const long SkipSeed = 0x536b6970L; // "Skip"

    private readonly int[] _slots;

    private MaglevTable(BackendEndpoint[] endpoints, int[] slots)
    {
        Endpoints = endpoints;
        _slots = slots;
    }

    /// <summary>The endpoints the table was built over; slots hold indexes into this array.</summary>
    public BackendEndpoint[] Endpoints { get; }

    /// <summary>The number of slots.</summary>
    public int Size => _slots.Length;

    /// <summary>The index (into <see cref="Endpoints"/>) of the endpoint in <paramref name="slot"/>.</summary>
    public int this[int slot] => _slots[slot];

    /// <summary>Builds the table over <paramref name="endpoints"/> (never empty).</summary>
    /// <param name="endpoints">The endpoints, in a fixed order (the table does not depend on it beyond ties).</param>
    /// <param name="size">The number of slots: a prime, larger than the number of endpoints for an even spread.</param>
    /// <returns>The table.</returns>
    public static MaglevTable Build(BackendEndpoint[] endpoints, int size)
    {
        ArgumentOutOfRangeException.ThrowIfZero(endpoints.Length);
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 2);
        var count = endpoints.Length;
        var offsets = new long[count];
        var skips = new long[count];
        var next = new long[count];
        Span<byte> name = stackalloc byte[300];
        for (var i = 0; i < count; i++)
        {
            var key = Key(endpoints[i], name);
            offsets[i] = (long)(XxHash3.HashToUInt64(key, OffsetSeed) % (ulong)size);
            skips[i] = (long)(XxHash3.HashToUInt64(key, SkipSeed) % (ulong)(size - 1)) + 1;
        }

        var slots = new int[size];
        slots.AsSpan().Fill(-1);
        var filled = 0;
        while (true)
        {
            for (var i = 0; i < count; i++)
            {
                var slot = (offsets[i] + (next[i] * skips[i])) % size;
                while (slots[slot] >= 0)
                {
                    next[i]++;
                    slot = (offsets[i] + (next[i] * skips[i])) % size;
                }

                slots[slot] = i;
                next[i]++;
                if (++filled == size)
                {
                    return new MaglevTable(endpoints, slots);
                }
            }
        }
    }

    /// <summary>The endpoint's name as the permutation hashes it: <c>address:port</c> in UTF-8.</summary>
    private static ReadOnlySpan<byte> Key(BackendEndpoint endpoint, Span<byte> buffer)
    {
        var text = $"{endpoint.Address}:{endpoint.Port}";
        var length = Encoding.UTF8.GetByteCount(text);
        var bytes = length <= buffer.Length ? buffer[..length] : new byte[length];
        Encoding.UTF8.GetBytes(text, bytes);
        return bytes;
    }
}

/// <summary>The hash of a client's IP address that source-IP affinity looks up: the same for IPv4 and IPv4-mapped IPv6.</summary>
internal static class SourceIpHash
{
    private const long Seed = 0x536f757263654950L; // "SourceIP"

    /// <summary>The hash of <paramref name="client"/>'s address, or null when it has none (not an IP endpoint).</summary>
    public static ulong? Of(EndPoint? client)
    {
        if (client is not IPEndPoint { Address: var address })
        {
            return null;
        }

        Span<byte> bytes = stackalloc byte[16];
        if (!address.TryWriteBytes(bytes, out var written))
        {
            return null;
        }

        var ip = bytes[..written];

        // A dual-mode listener reports IPv4 clients as ::ffff:a.b.c.d; they hash as the IPv4 address they are.
        if (address.AddressFamily == AddressFamily.InterNetworkV6 && address.IsIPv4MappedToIPv6)
        {
            ip = ip[12..];
        }

        return XxHash3.HashToUInt64(ip, Seed);
    }
}
