using System.Text.Json.Nodes;
using FsmGateway.Kubernetes.Api;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Kubernetes.Controller;

/// <summary>
/// Removes the cluster-scoped RBAC that versions before the secured config stream (ADR 0010) made for data planes,
/// which no longer need any API permission: the ClusterRoleBindings <c>fsm-gateway-dataplane-&lt;namespace&gt;</c> the
/// provisioner wrote, and the ClusterRole <c>fsm-gateway-dataplane</c> that <c>deploy/</c> shipped (which
/// <c>kubectl apply</c> does not prune). Run by the leader, once per process, before its first pass.
/// <para>
/// Only ours: a binding is deleted when it carries our label <c>app.kubernetes.io/managed-by=fsm-gateway-controller</c>,
/// is named <c>fsm-gateway-dataplane-…</c>, binds a ClusterRole to ServiceAccounts named <c>fsm-gateway</c> only, and
/// names this controller in its controller-name annotation (the earliest versions wrote none; a binding naming another
/// controller is that controller's and is kept). The ClusterRole is deleted when it carries the labels <c>deploy/</c>
/// gave it and no remaining ClusterRoleBinding, nor RoleBinding in any namespace (a RoleBinding may grant a
/// ClusterRole's rules in its namespace), refers to it; when RoleBindings cannot be listed (403) it is kept, with a
/// Warning, since it cannot be proved unused. Each delete is conditional on the uid that was read.
/// </para>
/// <para>
/// RBAC that does not allow it (a <c>deploy/</c> from before this, or an operator who removed the rule) is not an
/// error: it is said once, with the kubectl commands, and not tried again. Any other failure is tried again at the
/// next pass.
/// </para>
/// </summary>
internal sealed partial class LegacyDataPlaneRbac(ApiObjects api, string controllerName, ILogger logger, KubernetesMetrics? metrics = null)
{
    /// <summary>The ClusterRole earlier <c>deploy/</c> manifests shipped for data planes.</summary>
    public const string ClusterRoleName = "fsm-gateway-dataplane";

    /// <summary>The prefix of the per-namespace bindings earlier provisioners wrote (a hashed suffix for long namespaces).</summary>
    public const string BindingPrefix = "fsm-gateway-dataplane-";

    private const string ComponentLabel = "app.kubernetes.io/component";
    private const string NameLabel = "app.kubernetes.io/name";

    private bool _done;

    /// <summary>Whether the clean-up has run to its end (or found it may not run).</summary>
    public bool Done => _done;

    /// <summary>Runs the clean-up unless it has run; never throws but for cancellation.</summary>
    public async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        if (_done)
        {
            return;
        }

        try
        {
            var bindings = await api.ListAsync(ApiResource.ClusterRoleBinding, $"{DataPlaneManifests.ManagedByLabel}={DataPlaneManifests.ManagedByValue}", cancellationToken).ConfigureAwait(false);
            var removed = 0;
            foreach (var binding in bindings.Where(IsOurLegacyBinding))
            {
                var name = Meta(binding, "name")!;
                if (await api.DeleteAsync(ApiResource.ClusterRoleBinding, null, name, Meta(binding, "uid"), cancellationToken).ConfigureAwait(false))
                {
                    removed++;
                    metrics?.Provisioned(ApiResource.ClusterRoleBinding.Kind, KubernetesMetrics.Deleted);
                    LogRemovedBinding(logger, name, string.Join(", ", Subjects(binding).Select(s => $"{s?["namespace"]?.GetValue<string>()}/{s?["name"]?.GetValue<string>()}")));
                }
            }

            var role = await api.GetAsync(ApiResource.ClusterRole, null, ClusterRoleName, cancellationToken).ConfigureAwait(false);
            var roleRemoved = false;
            if (role is not null && IsShippedRole(role))
            {
                var all = await api.ListAsync(ApiResource.ClusterRoleBinding, string.Empty, cancellationToken).ConfigureAwait(false);
                var users = all.Where(RefersToRole).Select(b => Meta(b, "name")).ToList();

                // A RoleBinding in any namespace may refer to a ClusterRole too (granting its rules in that namespace).
                // Listing them needs its own permission; without it the ClusterRole cannot be proved unused, so it stays.
                IReadOnlyList<JsonObject>? roleBindings;
                try
                {
                    roleBindings = await api.ListAsync(ApiResource.RoleBinding, string.Empty, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (ApiObjects.IsForbidden(e))
                {
                    LogRoleKeptUnprovable(logger, ClusterRoleName, ErrorText.Of(e));
                    roleBindings = null;
                }

                var namespacedUsers = (roleBindings ?? []).Where(RefersToRole).Select(b => $"{Meta(b, "namespace")}/{Meta(b, "name")}").ToList();
                if (users.Count > 0 || namespacedUsers.Count > 0)
                {
                    LogRoleKept(logger, ClusterRoleName, users.Count > 0 ? string.Join(", ", users) : "none", namespacedUsers.Count > 0 ? string.Join(", ", namespacedUsers) : "none");
                }
                else if (roleBindings is not null && await api.DeleteAsync(ApiResource.ClusterRole, null, ClusterRoleName, Meta(role, "uid"), cancellationToken).ConfigureAwait(false))
                {
                    roleRemoved = true;
                    metrics?.Provisioned(ApiResource.ClusterRole.Kind, KubernetesMetrics.Deleted);
                    LogRemovedRole(logger, ClusterRoleName);
                }
            }

            if (removed > 0 || roleRemoved)
            {
                LogCleaned(logger, removed, roleRemoved ? 1 : 0);
            }
            else
            {
                LogNothing(logger);
            }

            _done = true;
        }
        catch (Exception e) when (ApiObjects.IsForbidden(e))
        {
            LogForbidden(logger, ErrorText.Of(e));
            _done = true;
        }
        catch (Exception e) when (ApiObjects.IsConflict(e))
        {
            // Deleted and made again under the same name between the read and the delete: look again next pass.
            LogFailed(logger, ErrorText.Of(e));
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogFailed(logger, ErrorText.Of(e));
            LogFailedInFull(logger, e);
        }
    }

    /// <summary>A binding an earlier provisioner of this controller wrote for a namespace's data planes.</summary>
    internal bool IsOurLegacyBinding(JsonObject binding)
    {
        var annotation = binding["metadata"]?["annotations"]?[DataPlaneManifests.ControllerAnnotation];
        var subjects = Subjects(binding);
        return Meta(binding, "name") is { } name && name.StartsWith(BindingPrefix, StringComparison.Ordinal)
            && binding["metadata"]?["labels"]?[DataPlaneManifests.ManagedByLabel]?.GetValue<string>() == DataPlaneManifests.ManagedByValue
            && (annotation is null || annotation.GetValue<string>() == controllerName)
            && binding["roleRef"]?["kind"]?.GetValue<string>() == "ClusterRole"
            && subjects.Count > 0
            && subjects.All(s => s?["kind"]?.GetValue<string>() == "ServiceAccount" && s["name"]?.GetValue<string>() == DataPlaneManifests.ServiceAccountName);
    }

    /// <summary>Whether a ClusterRoleBinding or RoleBinding grants the legacy ClusterRole.</summary>
    private static bool RefersToRole(JsonObject binding) =>
        binding["roleRef"]?["kind"]?.GetValue<string>() == "ClusterRole" && binding["roleRef"]?["name"]?.GetValue<string>() == ClusterRoleName;

    /// <summary>The data-plane ClusterRole as <c>deploy/</c> shipped it (its labels), not one of that name someone else made.</summary>
    private static bool IsShippedRole(JsonObject role) =>
        role["metadata"]?["labels"]?[NameLabel]?.GetValue<string>() == "fsm-gateway"
        && role["metadata"]?["labels"]?[ComponentLabel]?.GetValue<string>() == "dataplane";

    private static JsonArray Subjects(JsonObject binding) => binding["subjects"] as JsonArray ?? [];

    private static string? Meta(JsonObject item, string field) => item["metadata"]?[field]?.GetValue<string>();

    [LoggerMessage(1, LogLevel.Information, "Removed ClusterRoleBinding {Name}, which an earlier version made for the data planes of ServiceAccount {Subjects}: data planes need no API permission now")]
    private static partial void LogRemovedBinding(ILogger logger, string name, string subjects);

    [LoggerMessage(2, LogLevel.Information, "Removed ClusterRole {Name}, which earlier versions of deploy/ shipped for data planes")]
    private static partial void LogRemovedRole(ILogger logger, string name);

    [LoggerMessage(3, LogLevel.Information, "Kept ClusterRole {Name}: bindings not made by this controller still refer to it (ClusterRoleBinding(s) {Bindings}; RoleBinding(s) {RoleBindings})")]
    private static partial void LogRoleKept(ILogger logger, string name, string bindings, string roleBindings);

    [LoggerMessage(9, LogLevel.Warning, "Kept ClusterRole {Name}: RoleBindings cannot be listed ({Error}), so whether one still refers to it is unknown; apply deploy/10-rbac.yaml (rolebindings list), or check and remove it by hand: kubectl get rolebindings -A -o wide | grep {Name}; kubectl delete clusterrole {Name}")]
    private static partial void LogRoleKeptUnprovable(ILogger logger, string name, string error);

    [LoggerMessage(4, LogLevel.Information, "Clean-up of earlier versions' data-plane RBAC: removed {Bindings} ClusterRoleBinding(s) and {Roles} ClusterRole(s)")]
    private static partial void LogCleaned(ILogger logger, int bindings, int roles);

    [LoggerMessage(5, LogLevel.Debug, "Clean-up of earlier versions' data-plane RBAC: nothing left to remove")]
    private static partial void LogNothing(ILogger logger);

    [LoggerMessage(6, LogLevel.Warning, "Clean-up of earlier versions' data-plane RBAC is not allowed ({Error}); apply deploy/10-rbac.yaml, or remove them by hand: kubectl delete clusterrolebinding -l app.kubernetes.io/managed-by=fsm-gateway-controller; kubectl delete clusterrole fsm-gateway-dataplane")]
    private static partial void LogForbidden(ILogger logger, string error);

    [LoggerMessage(7, LogLevel.Warning, "Clean-up of earlier versions' data-plane RBAC failed: {Error}; trying again at the next pass")]
    private static partial void LogFailed(ILogger logger, string error);

    [LoggerMessage(8, LogLevel.Debug, "Clean-up of earlier versions' data-plane RBAC failed; in full")]
    private static partial void LogFailedInFull(ILogger logger, Exception exception);
}
