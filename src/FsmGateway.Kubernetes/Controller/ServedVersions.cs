using FsmGateway.Kubernetes.Api;
using FsmGateway.Resources;
using k8s;

namespace FsmGateway.Kubernetes.Controller;

/// <summary>
/// The version of each kind the cluster serves, found through discovery once and kept until forgotten (a 404 on an
/// object may mean that version is no longer served). Shared by the status writer and the provisioner.
/// </summary>
internal sealed class ServedVersions(IKubernetes client)
{
    private readonly Dictionary<ResourceKind, string> _found = [];

    /// <summary>The kind as a resource at its served version, or null when the cluster serves none of its versions.</summary>
    public async Task<ApiResource?> ResourceAsync(ApiKind kind, CancellationToken cancellationToken)
    {
        if (!_found.TryGetValue(kind.Kind, out var version))
        {
            if (await ApiDiscovery.ServedVersionAsync(client, kind, cancellationToken).ConfigureAwait(false) is not { } served)
            {
                return null;
            }

            _found[kind.Kind] = version = served;
        }

        return new ApiResource(kind.Group, version, kind.Plural, kind.ApiKindName, kind.Namespaced);
    }

    /// <summary>Asks discovery again for <paramref name="kind"/> next time.</summary>
    public void Forget(ApiKind kind) => _found.Remove(kind.Kind);

    /// <summary>Asks discovery again for every kind next time.</summary>
    public void Clear() => _found.Clear();
}
