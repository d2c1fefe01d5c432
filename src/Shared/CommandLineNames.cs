namespace FsmGateway;

/// <summary>
/// The command line's command and option names that another component writes too: the controller's provisioner builds
/// each data-plane pod's arguments from these, the host's command line defines its options with them, so the two
/// cannot drift apart. Compiled into the host and the Kubernetes package (linked source, not a public API).
/// </summary>
internal static class CommandLineNames
{
    /// <summary>The data-plane command: one Gateway.</summary>
    public const string GatewayCommand = "gateway";

    /// <summary>The Gateway a data plane serves, as <c>NAMESPACE/NAME</c>.</summary>
    public const string Gateway = "--gateway";

    /// <summary>The controller's config stream a data plane subscribes to (ADR 0010), as <c>https://HOST:PORT</c> (<c>http://</c> for a controller run with <c>--stream-insecure</c>).</summary>
    public const string ControllerAddress = "--controller-address";

    /// <summary>The CA certificate (PEM) a data plane verifies the controller's config stream against; requires https:// addresses.</summary>
    public const string ControllerCaFile = "--controller-ca-file";

    /// <summary>The file holding the token a data plane authenticates to the controller with (re-read at every connect: the kubelet renews it).</summary>
    public const string ControllerTokenFile = "--controller-token-file";

    /// <summary>The controller name whose GatewayClasses are ours.</summary>
    public const string ControllerName = "--controller-name";

    /// <summary>The address of the admin endpoints.</summary>
    public const string AdminAddress = "--admin-address";

    /// <summary>The port of the admin endpoints.</summary>
    public const string AdminPort = "--admin-port";

    /// <summary>How long open connections may finish on shutdown.</summary>
    public const string DrainTimeout = "--drain-timeout";
}
