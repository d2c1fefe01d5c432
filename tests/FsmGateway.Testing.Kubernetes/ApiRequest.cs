namespace FsmGateway.Testing.Kubernetes;

/// <summary>
/// One request the fake API server handled. <paramref name="Verb"/> is the Kubernetes verb (get, list, watch, create, update, patch,
/// delete, deletecollection); discovery and other non-resource requests have verb "get", an empty resource and their <see cref="Path"/>.
/// </summary>
public sealed record ApiRequest(string Verb, string Group, string Version, string Resource, string? Subresource, string? Namespace, string? Name, int StatusCode)
{
    /// <summary>The User-Agent header the client sent.</summary>
    public string? UserAgent { get; init; }

    /// <summary>The request path and query.</summary>
    public string Path { get; init; } = "";

    /// <summary>The HTTP method.</summary>
    public string Method { get; init; } = "";
}
