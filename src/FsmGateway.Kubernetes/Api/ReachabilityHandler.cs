namespace FsmGateway.Kubernetes.Api;

/// <summary>
/// Reports the outcome of every request to <see cref="ApiServerReachability"/>. A request that gets no response
/// headers within <see cref="ResponseTimeout"/> (a blackholed API server) is cut and counted as a failure, as is any
/// cancellation its caller did not ask for; a cancellation by the caller (shutdown, a deadline of the caller's own)
/// says nothing about the API server and is not counted.
/// </summary>
internal sealed class ReachabilityHandler(ApiServerReachability reachability, TimeProvider? time = null, TimeSpan? responseTimeout = null) : DelegatingHandler
{
    /// <summary>How long a request may wait for response headers by default (a watch gets its headers at once).</summary>
    public static readonly TimeSpan DefaultResponseTimeout = TimeSpan.FromSeconds(30);

    /// <summary>How long a request may wait for response headers.</summary>
    public TimeSpan ResponseTimeout { get; } = responseTimeout ?? DefaultResponseTimeout;

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        using var timeout = new CancellationTokenSource(ResponseTimeout, time ?? TimeProvider.System);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        try
        {
            response = await base.SendAsync(request, linked.Token).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            reachability.Failed(ErrorText.Of(e));
            throw;
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            // Not the caller's cancellation: the API server did not answer in time (or the connection was cut so).
            var failure = timeout.IsCancellationRequested
                ? $"no response within {ResponseTimeout.TotalSeconds:0.###} s"
                : ErrorText.Of(e);
            reachability.Failed(failure);
            throw new TaskCanceledException($"The API server gave {failure}.", new TimeoutException(failure, e));
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
