using System.Net;
using FsmGateway.Kubernetes.ControlPlane;
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

    /// <summary>
    /// Plain HTTP/2 and no authentication of data planes (<c>--stream-insecure</c>): for local use and tests. By
    /// default the stream is TLS with a certificate from the controller's CA Secret, and each data plane is
    /// authenticated by its ServiceAccount token (ADR 0010).
    /// </summary>
    public bool Insecure { get; set; }

    /// <summary>
    /// How often the token an open stream was admitted with is reviewed again (<c>--stream-token-review-interval</c>):
    /// a revoked ServiceAccount (or a deleted pod, whose bound token dies with it) stops receiving config within this.
    /// A stream also ends when the token expires. One TokenReview per open stream per interval.
    /// </summary>
    public TimeSpan TokenReviewInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// How long a caller has, from opening a stream, to send its Hello and be admitted: a client that opens a stream
    /// and says nothing (or whose token review cannot finish) holds nothing for longer.
    /// </summary>
    public TimeSpan HelloTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long a stream connection may be silent before the controller sends an HTTP/2 PING (Kestrel's
    /// <c>KeepAlivePingDelay</c>): a data plane whose node died without closing its connection is noticed by the
    /// controller too, not only when its token expires. At least one second (Kestrel's minimum).
    /// </summary>
    public TimeSpan KeepAlivePingDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long the controller waits for a PING's answer before it closes the connection (Kestrel's <c>KeepAlivePingTimeout</c>); at least one second.</summary>
    public TimeSpan KeepAlivePingTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>
    /// The shortest time between two reports of one stream taking effect: a data plane that reports in a storm has
    /// its latest report applied once per interval (and the first at once), not a recompile and a report share per message.
    /// </summary>
    public TimeSpan ReportInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How many TokenReviews the controller makes at once; more callers wait (asynchronously) for a turn, within their
    /// <see cref="HelloTimeout"/>. A flood of distinct junk tokens costs the API server at most this many requests in flight.
    /// </summary>
    public int MaxConcurrentTokenReviews { get; set; } = 8;

    /// <summary>When and how the CA is rotated (<c>--stream-ca-*</c>, docs/adr/0014).</summary>
    public CaRotationOptions CaRotation { get; set; } = new();

    /// <summary>The controller's namespace: where the CA Secret is, and whose Service DNS names the serving certificate holds.</summary>
    public string Namespace { get; set; } = "fsm-system";

    /// <summary>More names (DNS, or IP addresses) the serving certificate holds besides the controller Service's, e.g. the host of the data planes' controller address.</summary>
    public IList<string> ExtraServingNames { get; } = [];

    /// <summary>The name of the controller's Service (deploy/20-controller.yaml).</summary>
    public const string ServiceName = "fsm-gateway-controller";

    /// <summary>The names the serving certificate is issued for: the Service's DNS names in <see cref="Namespace"/>, then <see cref="ExtraServingNames"/>.</summary>
    public IReadOnlyList<string> ServingNames() =>
    [
        ServiceName,
        $"{ServiceName}.{Namespace}",
        $"{ServiceName}.{Namespace}.svc",
        $"{ServiceName}.{Namespace}.svc.cluster.local",
        .. ExtraServingNames,
    ];
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

        if (!options.Insecure && string.IsNullOrEmpty(options.Namespace))
        {
            failures.Add("--leader-election-namespace: the controller's namespace (where the config stream's CA Secret is kept) must not be empty");
        }

        if (options.TokenReviewInterval <= TimeSpan.Zero)
        {
            failures.Add($"--stream-token-review-interval: {options.TokenReviewInterval} is not a positive duration");
        }

        if (options.HelloTimeout <= TimeSpan.Zero)
        {
            failures.Add($"HelloTimeout: {options.HelloTimeout} is not a positive duration");
        }

        if (options.KeepAlivePingDelay < TimeSpan.FromSeconds(1) || options.KeepAlivePingTimeout < TimeSpan.FromSeconds(1))
        {
            failures.Add($"KeepAlivePingDelay and KeepAlivePingTimeout: {options.KeepAlivePingDelay} and {options.KeepAlivePingTimeout} must each be at least one second");
        }

        if (options.ReportInterval < TimeSpan.Zero)
        {
            failures.Add($"ReportInterval: {options.ReportInterval} is negative");
        }

        if (options.MaxConcurrentTokenReviews < 1)
        {
            failures.Add($"MaxConcurrentTokenReviews: {options.MaxConcurrentTokenReviews} must be at least 1");
        }

        if (!options.Insecure)
        {
            failures.AddRange(options.CaRotation.Validate());
        }

        if (options.Port is < 0 or > 65535)
        {
            failures.Add($"--stream-port: {options.Port} is not a port (1-65535, or 0 for a free one)");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
