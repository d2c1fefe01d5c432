using System.Net;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace FsmGateway.Kubernetes.Controller;

/// <summary>The few calls the controller makes, on any resource, as JSON: get, server-side apply, replace status, delete, list.</summary>
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

    /// <summary>
    /// Server-side apply (<c>application/apply-patch+yaml</c>) of <paramref name="body"/> as field manager
    /// <paramref name="fieldManager"/>: creates the object, or sets the fields it names and removes those this manager
    /// set before and no longer names. Without <paramref name="force"/> a field another manager set to another value is
    /// a 409 conflict; with it, the field is taken over. Returns the object as it is now, and whether it was created.
    /// </summary>
    public async Task<(JsonObject Result, bool Created)> ApplyAsync(ApiResource resource, string? ns, string name, object body, string fieldManager, bool force, CancellationToken cancellationToken)
    {
        // JSON is YAML: the apply content type takes the model serialized as JSON.
        var patch = new V1Patch(KubernetesJson.Serialize(body), V1Patch.PatchType.ApplyPatch);
        using var response = resource.Namespaced
            ? await client.CustomObjects.PatchNamespacedCustomObjectWithHttpMessagesAsync<JsonObject>(patch, resource.Group, resource.Version, ns, resource.Plural, name, fieldManager: fieldManager, force: force, cancellationToken: cancellationToken).ConfigureAwait(false)
            : await client.CustomObjects.PatchClusterCustomObjectWithHttpMessagesAsync<JsonObject>(patch, resource.Group, resource.Version, resource.Plural, name, fieldManager: fieldManager, force: force, cancellationToken: cancellationToken).ConfigureAwait(false);
        return (response.Body, response.Response.StatusCode == HttpStatusCode.Created);
    }

    /// <summary>Replaces the status subresource; the body's <c>metadata.resourceVersion</c> makes it fail with 409 if the object changed meanwhile.</summary>
    public Task<JsonObject> ReplaceStatusAsync(ApiResource resource, string? ns, string name, JsonObject body, CancellationToken cancellationToken) =>
        resource.Namespaced
            ? client.CustomObjects.ReplaceNamespacedCustomObjectStatusAsync<JsonObject>(body, resource.Group, resource.Version, ns, resource.Plural, name, cancellationToken: cancellationToken)
            : client.CustomObjects.ReplaceClusterCustomObjectStatusAsync<JsonObject>(body, resource.Group, resource.Version, resource.Plural, name, cancellationToken: cancellationToken);

    /// <summary>Deletes the object; true when it existed.</summary>
    public Task<bool> DeleteAsync(ApiResource resource, string? ns, string name, CancellationToken cancellationToken) =>
        DeleteAsync(resource, ns, name, uid: null, cancellationToken);

    /// <summary>
    /// Deletes the object; true when it existed. With <paramref name="uid"/>, only that object (a precondition): one
    /// re-created under the same name meanwhile makes it a 409 conflict.
    /// </summary>
    public async Task<bool> DeleteAsync(ApiResource resource, string? ns, string name, string? uid, CancellationToken cancellationToken)
    {
        var options = uid is null ? null : new V1DeleteOptions { Preconditions = new V1Preconditions { Uid = uid } };
        try
        {
            if (resource.Namespaced)
            {
                await client.CustomObjects.DeleteNamespacedCustomObjectAsync(resource.Group, resource.Version, ns, resource.Plural, name, body: options, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await client.CustomObjects.DeleteClusterCustomObjectAsync(resource.Group, resource.Version, resource.Plural, name, body: options, cancellationToken: cancellationToken).ConfigureAwait(false);
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

    /// <summary>Whether <paramref name="error"/> is the API server's 403: RBAC does not allow the call.</summary>
    public static bool IsForbidden(Exception error) => error is HttpOperationException { Response.StatusCode: HttpStatusCode.Forbidden };
}
