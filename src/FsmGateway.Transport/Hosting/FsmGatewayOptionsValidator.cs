using Microsoft.Extensions.Options;

namespace FsmGateway.Transport.Hosting;

/// <summary>Checks <see cref="FsmGatewayOptions"/> at start-up, naming each bad option.</summary>
internal sealed class FsmGatewayOptionsValidator : IValidateOptions<FsmGatewayOptions>
{
    public ValidateOptionsResult Validate(string? name, FsmGatewayOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (options.Debounce < TimeSpan.Zero)
        {
            failures.Add($"FsmGatewayOptions.Debounce must not be negative (is {options.Debounce})");
        }

        // The maximum delay bounds the debounce under constant churn; below the debounce it would mean nothing.
        if (options.MaxDelay < options.Debounce)
        {
            failures.Add($"FsmGatewayOptions.MaxDelay ({options.MaxDelay}) must be at least FsmGatewayOptions.Debounce ({options.Debounce})");
        }

        if (options.BindRetryInterval <= TimeSpan.Zero)
        {
            failures.Add($"FsmGatewayOptions.BindRetryInterval must be positive (is {options.BindRetryInterval})");
        }

        if (!Enum.IsDefined(options.Mode))
        {
            failures.Add($"FsmGatewayOptions.Mode: {options.Mode} is not a mode (Standalone, Controller, DataPlane)");
        }
        else if (options.Mode == GatewayMode.DataPlane && options.ServedGateway is null)
        {
            failures.Add("FsmGatewayOptions.ServedGateway is required in mode DataPlane (the Gateway whose listeners it binds)");
        }
        else if (options.Mode != GatewayMode.DataPlane && options.ServedGateway is { } served)
        {
            failures.Add($"FsmGatewayOptions.ServedGateway ({served}) is only for mode DataPlane, not {options.Mode}");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
