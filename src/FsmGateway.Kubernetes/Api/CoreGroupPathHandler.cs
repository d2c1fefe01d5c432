namespace FsmGateway.Kubernetes.Api;

/// <summary>
/// Lets the client's generic (custom object) operations reach core-group resources: they build
/// <c>/apis/{group}/{version}/...</c>, which for the core group (empty name) must be <c>/api/{version}/...</c>.
/// KubernetesClient's own <c>GenericClient</c> does the same rewrite.
/// </summary>
internal sealed class CoreGroupPathHandler : DelegatingHandler
{
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (request.RequestUri is { } uri && uri.AbsolutePath.Contains("/apis//", StringComparison.Ordinal))
        {
            var builder = new UriBuilder(uri) { Path = uri.AbsolutePath.Replace("/apis//", "/api/", StringComparison.Ordinal) };
            request.RequestUri = builder.Uri;
        }

        return base.SendAsync(request, cancellationToken);
    }
}
