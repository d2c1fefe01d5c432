using Microsoft.Extensions.Options;

namespace FsmGateway.Transport.Proxy;

/// <summary>
/// Checks <see cref="ProxyOptions"/> at start-up (and whenever a proxy is built), naming each bad option. A zero buffer
/// would close every connection without relaying a byte; a zero timeout would fail every connect.
/// </summary>
internal sealed class ProxyOptionsValidator : IValidateOptions<ProxyOptions>
{
    /// <summary>The largest relay buffer per direction: more is a typo (and each open connection may hold two).</summary>
    public const int MaxBufferSize = 16 * 1024 * 1024;

    /// <summary>The most listening sockets per endpoint: more is a typo.</summary>
    public const int MaxListenerShards = 1024;

    public static ProxyOptionsValidator Instance { get; } = new();

    public ValidateOptionsResult Validate(string? name, ProxyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (options.ConnectTimeout <= TimeSpan.Zero)
        {
            failures.Add($"ProxyOptions.ConnectTimeout must be positive (is {options.ConnectTimeout})");
        }

        if (options.ConnectAttempts < 1)
        {
            failures.Add($"ProxyOptions.ConnectAttempts must be at least 1 (is {options.ConnectAttempts})");
        }

        if (options.IdleTimeout is { } idle && idle <= TimeSpan.Zero)
        {
            failures.Add($"ProxyOptions.IdleTimeout must be positive, or null for never (is {idle})");
        }

        if (options.HalfClosedTimeout is { } halfClosed && halfClosed <= TimeSpan.Zero)
        {
            failures.Add($"ProxyOptions.HalfClosedTimeout must be positive, or null for never (is {halfClosed})");
        }

        if (options.MaxConnectionDuration is { } duration && duration <= TimeSpan.Zero)
        {
            failures.Add($"ProxyOptions.MaxConnectionDuration must be positive, or null for no limit (is {duration})");
        }

        if (options.DrainTimeout < TimeSpan.Zero)
        {
            failures.Add($"ProxyOptions.DrainTimeout must not be negative (is {options.DrainTimeout})");
        }

        if (options.BufferSize is < 1 or > MaxBufferSize)
        {
            failures.Add($"ProxyOptions.BufferSize must be between 1 and {MaxBufferSize} bytes (is {options.BufferSize})");
        }

        if (options.PassiveHealthConsecutiveFailures < 0)
        {
            failures.Add($"ProxyOptions.PassiveHealthConsecutiveFailures must be 0 (passive health off) or more (is {options.PassiveHealthConsecutiveFailures})");
        }

        if (options.PassiveHealthEjectionTime <= TimeSpan.Zero)
        {
            failures.Add($"ProxyOptions.PassiveHealthEjectionTime must be positive (is {options.PassiveHealthEjectionTime})");
        }

        if (options.PassiveHealthMaxEjectionTime < options.PassiveHealthEjectionTime)
        {
            failures.Add($"ProxyOptions.PassiveHealthMaxEjectionTime must be at least PassiveHealthEjectionTime ({options.PassiveHealthEjectionTime}) (is {options.PassiveHealthMaxEjectionTime})");
        }

        if (string.IsNullOrWhiteSpace(options.LoadBalancingPolicy))
        {
            failures.Add("ProxyOptions.LoadBalancingPolicy must name a policy");
        }

        if (!Enum.IsDefined(options.Transport))
        {
            failures.Add($"ProxyOptions.Transport must be Auto, Sockets or Linux (is {(int)options.Transport})");
        }
        else if (options.Transport == ProxyTransport.Linux && !Linux.LinuxTransport.IsSupported)
        {
            failures.Add($"ProxyOptions.Transport is Linux, which runs on Linux only (this is {System.Runtime.InteropServices.RuntimeInformation.OSDescription}); use Auto or Sockets");
        }

        if (options.ListenerShards is { } shards and (< 1 or > MaxListenerShards))
        {
            failures.Add($"ProxyOptions.ListenerShards must be between 1 and {MaxListenerShards}, or null for one per processor (is {shards})");
        }

        AccessLog.AccessLogOptionsValidator.Validate(options.AccessLog, failures);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
