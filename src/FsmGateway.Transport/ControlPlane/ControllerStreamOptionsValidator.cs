using Microsoft.Extensions.Options;

namespace FsmGateway.Transport.ControlPlane;

/// <summary>Checks <see cref="ControllerStreamOptions"/> at start, naming each bad field.</summary>
internal sealed class ControllerStreamOptionsValidator : IValidateOptions<ControllerStreamOptions>
{
    public ValidateOptionsResult Validate(string? name, ControllerStreamOptions options)
    {
        var failures = new List<string>();
        if (options.Addresses.Count == 0)
        {
            failures.Add("ControllerStream.Addresses: at least one controller address is required (e.g. https://fsm-gateway-controller.fsm-system:15010)");
        }

        foreach (var address in options.Addresses)
        {
            if (address is null || !address.IsAbsoluteUri || (address.Scheme != Uri.UriSchemeHttp && address.Scheme != Uri.UriSchemeHttps) || address.AbsolutePath != "/")
            {
                failures.Add($"ControllerStream.Addresses: '{address}' is not http://HOST:PORT or https://HOST:PORT");
            }
        }

        var plain = options.Addresses.Where(a => a is not null && a.IsAbsoluteUri && a.Scheme == Uri.UriSchemeHttp).ToList();
        if (options.CertificateAuthorityFile is { } caFile)
        {
            if (plain.Count > 0)
            {
                failures.Add($"ControllerStream.CertificateAuthorityFile: a CA to verify the controller with needs https:// addresses, not '{plain[0]}'");
            }

            if (ControllerTls.LoadAuthorities(caFile) is { Error: { } error })
            {
                failures.Add($"ControllerStream.CertificateAuthorityFile: {error}");
            }
        }

        if (options.TokenFile is { } tokenFile)
        {
            if (plain.Count > 0)
            {
                failures.Add($"ControllerStream.TokenFile: a token is sent only over https://, not to '{plain[0]}'");
            }

            if (ControllerTls.ReadToken(tokenFile) is { Error: { } error })
            {
                failures.Add($"ControllerStream.TokenFile: {error}");
            }
        }

        if (options.Gateway is not { Kind: Resources.ResourceKind.Gateway } gateway || gateway.Namespace.Length == 0 || gateway.Name.Length == 0)
        {
            failures.Add("ControllerStream.Gateway: the Gateway to serve (namespace and name) is required");
        }

        if (string.IsNullOrEmpty(options.DataPlaneId))
        {
            failures.Add("ControllerStream.DataPlaneId: must not be empty");
        }

        if (options.MinReconnectDelay <= TimeSpan.Zero || options.MaxReconnectDelay < options.MinReconnectDelay)
        {
            failures.Add($"ControllerStream.MinReconnectDelay/MaxReconnectDelay: need 0 < min ({options.MinReconnectDelay}) <= max ({options.MaxReconnectDelay})");
        }

        if (options.ConnectTimeout <= TimeSpan.Zero)
        {
            failures.Add($"ControllerStream.ConnectTimeout: {options.ConnectTimeout} must be positive");
        }

        if (options.TokenFileCheckInterval <= TimeSpan.Zero)
        {
            failures.Add($"ControllerStream.TokenFileCheckInterval: {options.TokenFileCheckInterval} must be positive");
        }

        if (options.SyncTimeout <= TimeSpan.Zero)
        {
            failures.Add($"ControllerStream.SyncTimeout: {options.SyncTimeout} must be positive");
        }

        if (options.KeepAliveInterval <= TimeSpan.Zero)
        {
            failures.Add($"ControllerStream.KeepAliveInterval: {options.KeepAliveInterval} must be positive");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
