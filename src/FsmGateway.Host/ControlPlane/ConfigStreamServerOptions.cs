using System.Net;
using Microsoft.Extensions.Options;

namespace FsmGateway.Host.ControlPlane;

/// <summary>Where a controller serves the config stream to data planes (ADR 0010). Every replica serves it.</summary>
internal sealed class ConfigStreamServerOptions
{
    /// <summary>The default port: no other component of ours uses it, and Istio's plain xDS port is a familiar neighbour.</summary>
    public const int DefaultPort = 15010;

    /// <summary>The address to listen on. Default every IPv4 address (the Service reaches the pod's).</summary>
    public string Address { get; set; } = "0.0.0.0";

    /// <summary>The port (HTTP/2 only); 0 picks a free one.</summary>
    public int Port { get; set; } = DefaultPort;

    /// <summary>The controller's identity, sent to data planes for their logs. Default the host name.</summary>
    public string Identity { get; set; } = Environment.MachineName;

    /// <summary>Whether this controller provisions data planes, which words the status of a Gateway none has reported for.</summary>
    public bool Provisions { get; set; }
}

/// <summary>Checks <see cref="ConfigStreamServerOptions"/> at start.</summary>
internal sealed class ConfigStreamServerOptionsValidator : IValidateOptions<ConfigStreamServerOptions>
{
    public ValidateOptionsResult Validate(string? name, ConfigStreamServerOptions options)
    {
        var failures = new List<string>();
        if (!IPAddress.TryParse(options.Address, out _))
        {
            failures.Add($"--stream-address: '{options.Address}' is not an IP address");
        }

        if (options.Port is < 0 or > 65535)
        {
            failures.Add($"--stream-port: {options.Port} is not a port (1-65535, or 0 for a free one)");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
