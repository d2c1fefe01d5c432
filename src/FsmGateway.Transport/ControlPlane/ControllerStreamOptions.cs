using FsmGateway.Resources;

namespace FsmGateway.Transport.ControlPlane;

/// <summary>Where a data plane finds its controller's config stream, and which Gateway it serves (ADR 0010).</summary>
public sealed class ControllerStreamOptions
{
    /// <summary>
    /// The controller's stream addresses (<c>http://host:port</c>), tried in turn: a Service name reaches any replica,
    /// several addresses name replicas one by one. At least one is required.
    /// </summary>
    public IList<Uri> Addresses { get; } = [];

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
