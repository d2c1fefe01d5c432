using System.Net;
using k8s;
using k8s.Autorest;

namespace FsmGateway.Kubernetes.Api;

/// <summary>Finds which of a kind's versions the cluster serves, through the discovery endpoints.</summary>
internal static class ApiDiscovery
{
    /// <summary>The most preferred version of <paramref name="kind"/> that the cluster serves, or null when it serves none (the CRD is not installed).</summary>
    public static Task<string?> ServedVersionAsync(IKubernetes client, ApiKind kind, CancellationToken cancellationToken) =>
        ServedVersionAsync(client, kind.Group, kind.Plural, kind.Versions, cancellationToken);

    /// <summary>The first of <paramref name="versions"/> at which the cluster serves <paramref name="plural"/> in <paramref name="group"/>, or null.</summary>
    public static async Task<string?> ServedVersionAsync(IKubernetes client, string group, string plural, IReadOnlyList<string> versions, CancellationToken cancellationToken)
    {
        foreach (var version in versions)
        {
            try
            {
                var resources = await client.CustomObjects.GetAPIResourcesAsync(group, version, cancellationToken).ConfigureAwait(false);
                if (resources.Resources?.Any(r => r.Name == plural) == true)
                {
                    return version;
                }
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
            {
                // This group/version is not served; try the next.
            }
        }

        return null;
    }
}
