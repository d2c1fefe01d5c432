namespace FsmGateway.Host.Cli;

/// <summary>The host's exit codes, stable so scripts can act on them.</summary>
internal static class ExitCodes
{
    /// <summary>Success.</summary>
    public const int Ok = 0;

    /// <summary>Input (manifests, arguments, config paths) could not be used.</summary>
    public const int BadInput = 1;

    /// <summary>A listener port could not be bound.</summary>
    public const int PortUnavailable = 3;

    /// <summary>An unforeseen failure stopped the process (a background service ended with an exception).</summary>
    public const int Crashed = 4;
}
