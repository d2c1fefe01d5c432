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

    /// <summary>
    /// When set, responses (other than watches) larger than this many bytes are sent chunked instead of with a
    /// Content-Length, as kube-apiserver does above 2 KiB (<c>2048</c>), with the final chunk written separately
    /// <see cref="FinalChunkDelay"/> after the rest. Unset: every response has a Content-Length.
    /// </summary>
    public int? ChunkedAbove { get; set; }

    /// <summary>How long after the rest of a chunked response its final (empty) chunk is written.</summary>
    public TimeSpan FinalChunkDelay { get; set; } = TimeSpan.FromMilliseconds(20);
}
