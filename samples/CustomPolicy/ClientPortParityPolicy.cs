using System.Net;
using FsmGateway.Transport.LoadBalancing;

namespace CustomPolicy;

/// <summary>
/// A load-balancing policy of our own: clients with an even source port go to the backend's first endpoint, odd
/// ones to the second (endpoints are sorted by address and port). Silly, but easy to verify.
/// </summary>
public sealed class ClientPortParityPolicy : ILoadBalancingPolicy
{
    public const string PolicyName = "ClientPortParity";

    public string Name => PolicyName;

    public int Pick(EndpointPickContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var parity = context.Client is IPEndPoint client ? client.Port % 2 : 0;
        return parity % context.Candidates.Count;
    }
}
