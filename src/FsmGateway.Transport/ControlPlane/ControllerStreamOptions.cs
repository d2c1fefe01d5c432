using FsmGateway.Resources;

namespace FsmGateway.Transport.ControlPlane;

/// <summary>Where a data plane finds its controller's config stream, and which Gateway it serves (ADR 0010).</summary>
public sealed class ControllerStreamOptions
{
    /// <summary>
    /// The controller's stream addresses (<c>https://host:port</c>, or <c>http://host:port</c> for a controller that
    /// serves the stream without TLS), tried in turn: a Service name reaches any replica, several addresses name
    /// replicas one by one. At least one is required.
    /// </summary>
    public IList<Uri> Addresses { get; } = [];

    /// <summary>
    /// A PEM file of the CA certificate(s) the controller's serving certificate must chain to (in a cluster, the
    /// controller's CA from the ConfigMap the provisioner writes). Every address must then be <c>https://</c>, and
    /// only that CA is trusted (not the system's). Read again at every connect, so a replaced CA is picked up.
    /// Null: the system's trust store verifies <c>https://</c> addresses.
    /// </summary>
    public string? CertificateAuthorityFile { get; set; }

    /// <summary>
    /// A file holding the bearer token sent to the controller (in a cluster, the pod's projected ServiceAccount token
    /// of audience <c>fsm-gateway-controller</c>). Read again at every connect, since the kubelet renews it. Requires
    /// <c>https://</c> addresses: a credential is never sent in clear. Null: no token is sent.
    /// </summary>
    public string? TokenFile { get; set; }

    /// <summary>
    /// How often the <see cref="TokenFile"/> is read while a stream runs. When the kubelet has renewed it (it rotates a
    /// projected token at 80 % of its lifetime, by swapping the volume's <c>..data</c> link, which file-change
    /// notifications can miss), a new stream is opened with the new token and takes over once it has synced, and the
    /// old one is closed: no gap, and no stream is ended by its token's expiry. Default 10 s.
    /// </summary>
    public TimeSpan TokenFileCheckInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long any stream may take, from connecting, to sync its full set before it is given up. The stream a data
    /// plane runs on is then ended and, keeping its last config, the data plane connects again with its back-off (to
    /// the next controller address): a controller that accepts a stream and never sends the config (stalled, not dead,
    /// so keep-alive pings do not catch it) does not leave it without updates. A stream opened on a renewed token
    /// (<see cref="TokenFileCheckInterval"/>) is given up alone, with a Warning: the current stream keeps delivering
    /// and the renewed token is tried again at the next check. Default 30 s (the kubelet renews a token with a fifth
    /// of its lifetime, two minutes of a ten-minute token, left).
    /// </summary>
    public TimeSpan SyncTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The Gateway this data plane serves. Required.</summary>
    public ResourceKey? Gateway { get; set; }

    /// <summary>Who this data plane is, for the controller's logs and status messages. Default the host name (the pod name in a cluster).</summary>
    public string DataPlaneId { get; set; } = Environment.MachineName;

    /// <summary>The first wait before connecting again after a stream ends or fails. Default 250 ms.</summary>
    public TimeSpan MinReconnectDelay { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>The longest wait between attempts; waits double up to it, each with jitter. Default 10 s.</summary>
    public TimeSpan MaxReconnectDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a connection attempt may take. Default 5 s.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How often an idle stream is checked with an HTTP/2 ping; a controller that does not answer within the same time
    /// counts as gone and another is tried. Default 10 s.
    /// </summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(10);
}
