using k8s;

namespace FsmGateway.Kubernetes;

/// <summary>How the gateway reaches the API server and how it watches it.</summary>
public sealed class KubernetesOptions
{
    /// <summary>
    /// A kubeconfig file. When null (and <see cref="ClientConfiguration"/> is null): in a pod, the in-cluster config;
    /// elsewhere <c>$KUBECONFIG</c> or <c>~/.kube/config</c>.
    /// </summary>
    public string? KubeconfigPath { get; set; }

    /// <summary>The kubeconfig context to use; its current context when null.</summary>
    public string? Context { get; set; }

    /// <summary>A ready client configuration; when set, <see cref="KubeconfigPath"/> and <see cref="Context"/> are ignored.</summary>
    public KubernetesClientConfiguration? ClientConfiguration { get; set; }

    /// <summary>How long the API server keeps one watch request open before the gateway opens the next (<c>timeoutSeconds</c>). Default 5 min.</summary>
    public TimeSpan WatchTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// A watch that sends nothing, not even a bookmark, for this long is taken for dead (a silently dropped connection)
    /// and reopened from the last resourceVersion seen. Default 2 min.
    /// </summary>
    public TimeSpan WatchInactivityTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>The first delay before reconnecting after a failure; doubled per failure up to <see cref="MaxRetryDelay"/>. Default 500 ms.</summary>
    public TimeSpan MinRetryDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The longest delay between reconnection attempts. Default 30 s.</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often a kind the cluster does not serve (its CRD is not installed) is looked for again. Default 30 s.</summary>
    public TimeSpan MissingKindRetryInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The User-Agent sent to the API server, so its audit log tells the controller and the data planes apart. Default <c>fsm-gateway</c>.</summary>
    public string UserAgent { get; set; } = "fsm-gateway";

    /// <summary>Objects per page when listing. Default 500.</summary>
    public int PageSize { get; set; } = 500;

    /// <summary>Builds the client configuration these options describe.</summary>
    /// <returns>The configuration.</returns>
    public KubernetesClientConfiguration BuildClientConfiguration()
    {
        if (ClientConfiguration is { } given)
        {
            return given;
        }

        if (KubeconfigPath is { } path)
        {
            return KubernetesClientConfiguration.BuildConfigFromConfigFile(path, Context);
        }

        return KubernetesClientConfiguration.IsInCluster() && Context is null
            ? KubernetesClientConfiguration.InClusterConfig()
            : KubernetesClientConfiguration.BuildConfigFromConfigFile(currentContext: Context);
    }
}
