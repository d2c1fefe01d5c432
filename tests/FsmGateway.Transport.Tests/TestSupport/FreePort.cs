using FsmGateway.Testing;

namespace FsmGateway.Transport.Tests.TestSupport;

/// <summary>Ports for tests that must name a port before anything listens on it (see <see cref="TestPorts"/>).</summary>
internal static class FreePort
{
    /// <summary>A loopback port that is free now and that nothing binding port 0 can take before the test binds it.</summary>
    /// <returns>The port.</returns>
    public static int Get() => TestPorts.Next();

    /// <summary>Several distinct free ports.</summary>
    /// <param name="count">How many.</param>
    /// <returns>The ports.</returns>
    public static int[] Get(int count) => TestPorts.Next(count);
}
