namespace FsmGateway.Kubernetes.Api;

/// <summary>Reports the outcome of every request to <see cref="ApiServerReachability"/>.</summary>
internal sealed class ReachabilityHandler(ApiServerReachability reachability) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            reachability.Failed(ErrorText.Of(e));
            throw;
        }

        if (ApiServerReachability.IsUnavailable(response.StatusCode))
        {
            reachability.Failed($"{(int)response.StatusCode} {response.ReasonPhrase}");
        }
        else
        {
            reachability.Answered();
        }

        return response;
    }
}
