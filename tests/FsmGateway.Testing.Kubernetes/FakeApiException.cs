using System.Text.Json.Nodes;

namespace FsmGateway.Testing.Kubernetes;

/// <summary>A failure the fake API server reports as a Kubernetes <c>Status</c>; thrown by the server-side store methods too.</summary>
public sealed class FakeApiException : Exception
{
    public FakeApiException(int code, string reason, string message, string? name = null, string? group = null, string? kind = null)
        : base(message)
    {
        Code = code;
        Reason = reason;
        DetailsName = name;
        DetailsGroup = group;
        DetailsKind = kind;
    }

    public FakeApiException()
        : this(500, "InternalError", "internal error")
    {
    }

    public FakeApiException(string message)
        : this(500, "InternalError", message)
    {
    }

    public FakeApiException(string message, Exception innerException)
        : base(message, innerException)
    {
        Code = 500;
        Reason = "InternalError";
    }

    /// <summary>HTTP status code, e.g. 404.</summary>
    public int Code { get; }

    /// <summary>Kubernetes reason, e.g. <c>NotFound</c>.</summary>
    public string Reason { get; }

    public string? DetailsName { get; }

    public string? DetailsGroup { get; }

    public string? DetailsKind { get; }

    /// <summary>The <c>Status</c> object the real API server would send.</summary>
    public JsonObject ToStatus() => Status(Code, Reason, Message, DetailsName, DetailsGroup, DetailsKind);

    internal static JsonObject Status(int code, string reason, string message, string? name = null, string? group = null, string? kind = null)
    {
        var status = new JsonObject
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject(),
            ["status"] = "Failure",
            ["message"] = message,
            ["reason"] = reason,
        };
        if (name is not null || kind is not null)
        {
            var details = new JsonObject();
            if (name is not null)
            {
                details["name"] = name;
            }
            if (group is not null)
            {
                details["group"] = group;
            }
            if (kind is not null)
            {
                details["kind"] = kind;
            }
            status["details"] = details;
        }
        status["code"] = code;
        return status;
    }

    internal static FakeApiException NotFound(ResourceType t, string name) =>
        new(404, "NotFound", $"{Qualified(t)} \"{name}\" not found", name, t.Group, t.Plural);

    internal static FakeApiException AlreadyExists(ResourceType t, string name) =>
        new(409, "AlreadyExists", $"{Qualified(t)} \"{name}\" already exists", name, t.Group, t.Plural);

    internal static FakeApiException Conflict(ResourceType t, string name) =>
        new(409, "Conflict", $"Operation cannot be fulfilled on {Qualified(t)} \"{name}\": the object has been modified; please apply your changes to the latest version and try again", name, t.Group, t.Plural);

    internal static FakeApiException Invalid(ResourceType t, string? name, string message) =>
        new(422, "Invalid", $"{t.Kind} \"{name}\" is invalid: {message}", name, t.Group, t.Kind);

    internal static FakeApiException BadRequest(string message) => new(400, "BadRequest", message);

    internal static FakeApiException Expired(string message) => new(410, "Expired", message);

    internal static FakeApiException UnknownResource() => new(404, "NotFound", "the server could not find the requested resource");

    private static string Qualified(ResourceType t) => t.Group.Length == 0 ? t.Plural : t.Plural + "." + t.Group;
}
