using System.Net.Http.Headers;

namespace FsmGateway.Kubernetes.Api;

/// <summary>Sends our own User-Agent, so the API server's audit log names the component that called it.</summary>
internal sealed class UserAgentHandler(string userAgent) : DelegatingHandler
{
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        request.Headers.UserAgent.Clear();
        request.Headers.TryAddWithoutValidation("User-Agent", userAgent);
        return base.SendAsync(request, cancellationToken);
    }
}
