using System.Net;
using System.Net.Sockets;

namespace FsmGateway.Transport.Tests.TestSupport;

/// <summary>Ports for tests that must name a port before anything listens on it.</summary>
internal static class FreePort
{
    /// <summary>A loopback port that was free a moment ago: bind port 0, read the port the kernel chose, release it.</summary>
    /// <returns>The port.</returns>
    public static int Get()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    /// <summary>Several distinct free ports.</summary>
    /// <param name="count">How many.</param>
    /// <returns>The ports.</returns>
    public static int[] Get(int count)
    {
        // Hold all of them at once so that the kernel cannot hand out the same port twice.
        var sockets = Enumerable.Range(0, count).Select(_ => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)).ToList();
        try
        {
            foreach (var socket in sockets)
            {
                socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            }

            return [.. sockets.Select(static s => ((IPEndPoint)s.LocalEndPoint!).Port)];
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }
    }
}
