using System.Text.Json.Nodes;
using FsmGateway.Resources;

namespace FsmGateway.Status;

/// <summary>
/// Statuses as the Kubernetes API writes them (<c>status</c> objects), without <c>lastTransitionTime</c>: the one
/// JSON form shared by the offline compiler's output and the status writer.
/// </summary>
public static class StatusJson
{
    /// <summary>The Kubernetes <c>status</c> object of a GatewayClass.</summary>
    /// <param name="status">The status.</param>
    /// <returns>A new JSON object.</returns>
    public static JsonObject GatewayClass(GatewayClassStatus status)
    {
        ArgumentNullException.ThrowIfNull(status);
        return new JsonObject { ["conditions"] = ConditionsOf(status.Conditions) };
    }

    /// <summary>The Kubernetes <c>status</c> object of a Gateway.</summary>
    /// <param name="status">The status.</param>
    /// <returns>A new JSON object.</returns>
    public static JsonObject Gateway(GatewayStatus status)
    {
        ArgumentNullException.ThrowIfNull(status);
        var json = new JsonObject();
        if (!status.Addresses.IsEmpty)
        {
            json["addresses"] = new JsonArray([.. status.Addresses.Select(static a => new JsonObject { ["type"] = a.Type, ["value"] = a.Value })]);
        }

        json["conditions"] = ConditionsOf(status.Conditions);
        json["listeners"] = new JsonArray([.. status.Listeners.Select(static l => new JsonObject
        {
            ["name"] = l.Name,
            ["supportedKinds"] = new JsonArray([.. l.SupportedKinds.Select(static k => new JsonObject { ["group"] = k.Group, ["kind"] = k.Kind })]),
            ["attachedRoutes"] = l.AttachedRoutes,
            ["conditions"] = ConditionsOf(l.Conditions),
        })]);
        return json;
    }

    /// <summary>The Kubernetes <c>status</c> object of a route.</summary>
    /// <param name="status">The status.</param>
    /// <returns>A new JSON object.</returns>
    public static JsonObject Route(RouteStatus status)
    {
        ArgumentNullException.ThrowIfNull(status);
        return new JsonObject
        {
            ["parents"] = new JsonArray([.. status.Parents.Select(static p => new JsonObject
            {
                ["parentRef"] = ParentRefJson(p.ParentRef),
                ["controllerName"] = p.ControllerName,
                ["conditions"] = ConditionsOf(p.Conditions),
            })]),
        };
    }

    /// <summary>The Kubernetes <c>status</c> object of a policy (GEP-713 <c>ancestors</c>).</summary>
    /// <param name="status">The status.</param>
    /// <returns>A new JSON object.</returns>
    public static JsonObject Policy(PolicyStatus status)
    {
        ArgumentNullException.ThrowIfNull(status);
        return new JsonObject
        {
            ["ancestors"] = new JsonArray([.. status.Ancestors.Select(static a => new JsonObject
            {
                ["ancestorRef"] = ParentRefJson(a.AncestorRef),
                ["controllerName"] = a.ControllerName,
                ["conditions"] = ConditionsOf(a.Conditions),
            })]),
        };
    }

    /// <summary>The Kubernetes <c>status</c> object of a kind with only <c>status.conditions</c>.</summary>
    /// <param name="status">The status.</param>
    /// <returns>A new JSON object.</returns>
    public static JsonObject Conditions(ConditionsStatus status)
    {
        ArgumentNullException.ThrowIfNull(status);
        return new JsonObject { ["conditions"] = ConditionsOf(status.Conditions) };
    }

    private static JsonArray ConditionsOf(IEnumerable<Condition> conditions) =>
        new([.. conditions.Select(static c => new JsonObject
        {
            ["type"] = c.Type,
            ["status"] = c.Status.ToString(),
            ["reason"] = c.Reason,
            ["message"] = c.Message,
            ["observedGeneration"] = c.ObservedGeneration,
        })]);

    private static JsonObject ParentRefJson(ParentReference parentRef)
    {
        var json = new JsonObject
        {
            ["group"] = parentRef.Group,
            ["kind"] = parentRef.Kind,
            ["namespace"] = parentRef.Namespace,
            ["name"] = parentRef.Name,
        };
        if (parentRef.SectionName is not null)
        {
            json["sectionName"] = parentRef.SectionName;
        }

        if (parentRef.Port is not null)
        {
            json["port"] = parentRef.Port;
        }

        return json;
    }
}
