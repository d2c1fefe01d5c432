using k8s;
using Microsoft.Extensions.Options;

namespace FsmGateway.Kubernetes.Api;

/// <summary>
/// The gateway's own client of the API server, built from <see cref="KubernetesOptions"/> (kept apart from any client
/// the application registers). Its I/O never blocks or runs our code on a socket-completion thread
/// (<see cref="OffSocketThreadHandler"/>, innermost, so that every handler above it resumes off those threads too).
/// Every request's outcome is reported to <see cref="ApiServerReachability"/>.
/// </summary>
internal sealed class KubernetesConnection(IOptions<KubernetesOptions> options, ApiServerReachability reachability) : IDisposable
{
    private readonly Lazy<k8s.Kubernetes> _client = new(() => new k8s.Kubernetes(
        options.Value.BuildClientConfiguration(),
        new CoreGroupPathHandler(),
        new UserAgentHandler(options.Value.UserAgent),
        new ReachabilityHandler(reachability),
        new OffSocketThreadHandler()));

    public IKubernetes Client => _client.Value;

    public void Dispose()
    {
        if (_client.IsValueCreated)
        {
            _client.Value.Dispose();
        }
    }
}
