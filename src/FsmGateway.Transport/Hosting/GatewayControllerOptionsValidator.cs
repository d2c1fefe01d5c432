using Microsoft.Extensions.Options;

namespace FsmGateway.Transport.Hosting;

/// <summary>Checks <see cref="GatewayControllerOptions"/> at start-up: the controller name must not be empty.</summary>
internal sealed class GatewayControllerOptionsValidator : IValidateOptions<GatewayControllerOptions>
{
    public ValidateOptionsResult Validate(string? name, GatewayControllerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return string.IsNullOrWhiteSpace(options.ControllerName)
            ? ValidateOptionsResult.Fail("GatewayControllerOptions.ControllerName must not be empty")
            : ValidateOptionsResult.Success;
    }
}
