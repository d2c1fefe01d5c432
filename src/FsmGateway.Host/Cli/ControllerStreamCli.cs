using System.CommandLine;
using FsmGateway.Resources;
using FsmGateway.Transport;
using FsmGateway.Transport.Hosting;

namespace FsmGateway.Host.Cli;

/// <summary>
/// <c>gateway --controller-address</c>: the data plane fed by the controller's config stream (ADR 0010). Shared by the
/// full host's <c>gateway</c> command and the Native AOT data plane's (ADR 0011), which has only this way to read config.
/// </summary>
internal static class ControllerStreamCli
{
    public static Option<string[]> CreateAddressOption(bool required) => new(CommandLineNames.ControllerAddress)
    {
        Description = "Read config from the controller's config stream at this address (https://HOST:PORT, or http://HOST:PORT for a controller run with --stream-insecure; repeat it to name several replicas) instead of the API server: no Kubernetes credentials are used.",
        Required = required,
    };

    /// <summary>--controller-ca-file: the CA the controller's certificate must chain to.</summary>
    public static Option<string?> CreateCaFileOption() => new(CommandLineNames.ControllerCaFile)
    {
        Description = "Verify the controller's config stream against the CA certificate(s) in this PEM file (only those; the addresses must be https://). In a cluster, the controller's CA from ConfigMap fsm-gateway-controller-ca. Read again at every connect.",
    };

    /// <summary>--controller-token-file: the bearer token sent to the controller.</summary>
    public static Option<string?> CreateTokenFileOption() => new(CommandLineNames.ControllerTokenFile)
    {
        Description = "Authenticate to the controller with the token in this file (in a cluster, the pod's projected ServiceAccount token of audience fsm-gateway-controller; https:// addresses only). Read again at every connect, since the kubelet renews it.",
    };

    /// <summary>Reads the addresses; false, after writing why, when one is not <c>http(s)://HOST:PORT</c>.</summary>
    public static bool TryRead(ParseResult parse, Option<string[]> option, TextWriter error, out List<Uri> addresses)
    {
        addresses = [];
        foreach (var text in parse.GetValue(option) ?? [])
        {
            if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.AbsolutePath != "/")
            {
                error.WriteLine($"gateway: --controller-address '{LogText.Escape(text)}' is not https://HOST:PORT (or http://HOST:PORT for a controller run with --stream-insecure)");
                return false;
            }

            addresses.Add(uri);
        }

        return true;
    }

    /// <summary>Reads <c>--gateway NAMESPACE/NAME</c>; false, after writing why, when malformed.</summary>
    public static bool TryReadGateway(string name, TextWriter error, out ResourceKey gateway)
    {
        var parts = name.Split('/');
        if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
        {
            error.WriteLine($"gateway: --gateway '{LogText.Escape(name)}' is not NAMESPACE/NAME");
            gateway = default;
            return false;
        }

        gateway = new ResourceKey(ResourceKind.Gateway, parts[0], parts[1]);
        return true;
    }

    public static void Use(IFsmGatewayBuilder gateway, IReadOnlyList<Uri> addresses, ResourceKey served, string? caFile, string? tokenFile) =>
        gateway.LoadFromController(o =>
        {
            foreach (var address in addresses)
            {
                o.Addresses.Add(address);
            }

            o.Gateway = served;
            o.CertificateAuthorityFile = caFile;
            o.TokenFile = tokenFile;
            if (Environment.GetEnvironmentVariable("POD_NAME") is { Length: > 0 } pod)
            {
                o.DataPlaneId = pod;
            }
        });

#if DATA_PLANE
    /// <summary>The Native AOT data plane's <c>gateway</c>: the config stream only.</summary>
    public static Command CreateGateway()
    {
        var gatewayName = new Option<string>(CommandLineNames.Gateway, "-g") { Description = "The Gateway to serve, as NAMESPACE/NAME.", Required = true };
        var controllerAddress = CreateAddressOption(required: true);
        var caFile = CreateCaFileOption();
        var tokenFile = CreateTokenFileOption();
        var serve = new ServeOptions();
        var accessLog = new AccessLogCli();
        var command = new Command(CommandLineNames.GatewayCommand, "Run the data plane of one Gateway: bind its listeners and route them, reading config from the controller's config stream.")
        {
            gatewayName, controllerAddress, caFile, tokenFile,
        };
        serve.AddTo(command);
        accessLog.AddTo(command);
        command.SetAction((parse, cancellationToken) =>
        {
            var error = parse.InvocationConfiguration.Error;
            if (!TryReadGateway(parse.GetValue(gatewayName)!, error, out var served) || !TryRead(parse, controllerAddress, error, out var controllers))
            {
                return Task.FromResult(ExitCodes.BadInput);
            }

            ServeSettings settings;
            Action<Transport.AccessLog.AccessLogOptions>? configureAccessLog;
            try
            {
                settings = serve.Read(parse);
                configureAccessLog = accessLog.Read(parse);
            }
            catch (ArgumentException e)
            {
                error.WriteLine($"gateway: {e.Message}");
                return Task.FromResult(ExitCodes.BadInput);
            }

            return GatewayServer.RunAsync(
                "gateway",
                settings,
                o =>
                {
                    o.ServedGateway = served;
                    o.Mode = GatewayMode.DataPlane;
                },
                gateway =>
                {
                    if (configureAccessLog is not null)
                    {
                        gateway.AddAccessLog(configureAccessLog);
                    }

                    Use(gateway, controllers, served, parse.GetValue(caFile), parse.GetValue(tokenFile));
                },
                error,
                cancellationToken);
        });
        return command;
    }
#endif
}
