namespace FsmGateway.Testing.Kubernetes;

/// <summary>Settings of a <see cref="FakeApiServer"/>.</summary>
public sealed class FakeApiServerOptions
{
    /// <summary>When set, the most items a list page holds: caps a client's <c>limit</c>, and pages lists that asked for no limit at all.</summary>
    public int? PageSizeLimit { get; set; }

    /// <summary>How often a watch with <c>allowWatchBookmarks=true</c> gets a BOOKMARK (when nothing else is pending).</summary>
    public TimeSpan BookmarkInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>When set, every request must carry <c>Authorization: Bearer &lt;Token&gt;</c> (else 401); also what the kubeconfig and client configuration send.</summary>
    public string? Token { get; set; }

    /// <summary>How many events the server keeps for watches that resume from a resourceVersion; older ones are compacted away (410 Gone).</summary>
    public int EventHistoryLimit { get; set; } = 10_000;

    /// <summary>Installs the Gateway API CRDs (<see cref="FakeApiServer.InstallGatewayApiCrds"/> with its defaults) at start.</summary>
    public bool InstallGatewayApiCrds { get; set; }
}
