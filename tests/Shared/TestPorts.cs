using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace FsmGateway.Testing;

/// <summary>
/// Ports for tests that must name a port before anything listens on it (a listener in a manifest, an admin port).
/// </summary>
/// <remarks>
/// The ports come from below the kernel's ephemeral range (<c>/proc/sys/net/ipv4/ip_local_port_range</c>), so no
/// socket bound to port 0 and no outgoing connection in this or any other process can be handed one of them between
/// the pick and the bind, which is how a port released by "bind to 0, read, close" gets stolen. Within a process the
/// picks never repeat; processes start at random points of the range, and each pick is checked to be bindable.
/// </remarks>
internal static class TestPorts
{
    private const int Lowest = 20000;
    private const int FallbackCeiling = 32768;
    private static readonly int Ceiling = EphemeralLow();
    private static int _cursor = Random.Shared.Next(0, Ceiling - Lowest);

    /// <summary>A loopback port that is free now and outside the ephemeral range.</summary>
    /// <returns>The port.</returns>
    public static int Next()
    {
        var span = Ceiling - Lowest;
        for (var attempt = 0; attempt < span; attempt++)
        {
            var port = Lowest + (int)((uint)Interlocked.Increment(ref _cursor) % (uint)span);
            if (IsFree(port))
            {
                return port;
            }
        }

        throw new InvalidOperationException($"no free loopback port in [{Lowest}, {Ceiling})");
    }

    /// <summary>Several distinct free ports.</summary>
    /// <param name="count">How many.</param>
    /// <returns>The ports.</returns>
    public static int[] Next(int count) => [.. Enumerable.Range(0, count).Select(static _ => Next())];

    private static bool IsFree(int port)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static int EphemeralLow()
    {
        try
        {
            var low = int.Parse(File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries)[0], CultureInfo.InvariantCulture);
            return low > Lowest + 1000 ? low : FallbackCeiling;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return FallbackCeiling;
        }
    }
}
