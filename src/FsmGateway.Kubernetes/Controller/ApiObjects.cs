using System.Net;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace FsmGateway.Kubernetes.Controller;

/// <summary>The few calls the controller makes, on any resource, as JSON: get, create, merge-patch, replace status, delete, list.</summary>
internal sealed class ApiObjects(IKubernetes client)
{
    /// <summary>The object, or null when it does not exist.</summary>
    public async Task<JsonObject?> GetAsync(ApiResource resource, string? ns, string name, CancellationToken cancellationToken)
    {
        try
        {
            return resource.Namespaced
                ? await client.CustomObjects.GetNamespacedCustomObjectAsync<JsonObject>(resource.Group, resource.Version, ns, resource.Plural, name, cancellationToken).ConfigureAwait(false)
                : await client.CustomObjects.GetClusterCustomObjectAsync<JsonObject>(resource.Group, resource.Version, resource.Plural, name, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    public Task<JsonObject> CreateAsync(ApiResource resource, string? ns, JsonObject body, CancellationToken cancellationToken) =>
        resource.Namespaced
            ? client.CustomObjects.CreateNamespacedCustomObjectAsync<JsonObject>(body, resource.Group, resource.Version, ns, resource.Plural, cancellationToken: cancellationToken)
            : client.CustomObjects.CreateClusterCustomObjectAsync<JsonObject>(body, resource.Group, resource.Version, resource.Plural, cancellationToken: cancellationToken);

    /// <summary>Applies a JSON merge patch (RFC 7386).</summary>
    public Task<JsonObject> MergePatchAsync(ApiResource resource, string? ns, string name, JsonObject patch, CancellationToken cancellationToken)
    {
        var body = new V1Patch(patch.ToJsonString(), V1Patch.PatchType.MergePatch);
        return resource.Namespaced
            ? client.CustomObjects.PatchNamespacedCustomObjectAsync<JsonObject>(body, resource.Group, resource.Version, ns, resource.Plural, name, cancellationToken: cancellationToken)
            : client.CustomObjects.PatchClusterCustomObjectAsync<JsonObject>(body, resource.Group, resource.Version, resource.Plural, name, cancellationToken: cancellationToken);
    }

    /// <summary>Replaces the status subresource; the body's <c>metadata.resourceVersion</c> makes it fail with 409 if the object changed meanwhile.</summary>
    public Task<JsonObject> ReplaceStatusAsync(ApiResource resource, string? ns, string name, JsonObject body, CancellationToken cancellationToken) =>
        resource.Namespaced
            ? client.CustomObjects.ReplaceNamespacedCustomObjectStatusAsync<JsonObject>(body, resource.Group, resource.Version, ns, resource.Plural, name, cancellationToken: cancellationToken)
            : client.CustomObjects.ReplaceClusterCustomObjectStatusAsync<JsonObject>(body, resource.Group, resource.Version, resource.Plural, name, cancellationToken: cancellationToken);

    /// <summary>Deletes the object; true when it existed.</summary>
    public async Task<bool> DeleteAsync(ApiResource resource, string? ns, string name, CancellationToken cancellationToken)
    {
        try
        {
            if (resource.Namespaced)
            {
                await client.CustomObjects.DeleteNamespacedCustomObjectAsync(resource.Group, resource.Version, ns, resource.Plural, name, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await client.CustomObjects.DeleteClusterCustomObjectAsync(resource.Group, resource.Version, resource.Plural, name, cancellationToken: cancellationToken).ConfigureAwait(false);
            }

            return true;
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }
    }

    /// <summary>Every object of <paramref name="resource"/> in every namespace that matches <paramref name="labelSelector"/>.</summary>
    public async Task<IReadOnlyList<JsonObject>> ListAsync(ApiResource resource, string labelSelector, CancellationToken cancellationToken)
    {
        var list = await client.CustomObjects.ListCustomObjectForAllNamespacesAsync<JsonObject>(
            resource.Group, resource.Version, resource.Plural, labelSelector: labelSelector, cancellationToken: cancellationToken).ConfigureAwait(false);
        return [.. (list["items"]?.AsArray() ?? []).OfType<JsonObject>()];
    }

    /// <summary>Whether <paramref name="error"/> is the API server's 409: the object changed since it was read, or it already exists.</summary>
    public static bool IsConflict(Exception error) => error is HttpOperationException { Response.StatusCode: HttpStatusCode.Conflict };
}
