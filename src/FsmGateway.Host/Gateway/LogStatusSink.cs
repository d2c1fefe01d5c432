using System.Text;
using FsmGateway.Resources;
using FsmGateway.Status;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Host.Gateway;

/// <summary>
/// The status sink of file mode: there is no API server to write status to, so each object's conditions (a policy's
/// per ancestor) are logged, one line per object, whenever they change.
/// </summary>
internal sealed partial class LogStatusSink(ILogger<LogStatusSink> logger) : IStatusSink
{
    private Dictionary<ResourceKey, string> _previous = [];

    public ValueTask PublishAsync(StatusSet statuses, CancellationToken cancellationToken)
    {
        var current = new Dictionary<ResourceKey, string>();
        foreach (var (key, status) in statuses.GatewayClasses)
        {
            current[key] = Summary(status.Conditions);
        }

        foreach (var (key, status) in statuses.Gateways)
        {
            var text = new StringBuilder(Summary(status.Conditions));
            foreach (var listener in status.Listeners)
            {
                text.Append($"; listener {listener.Name}: {Summary(listener.Conditions)} attachedRoutes={listener.AttachedRoutes}");
            }

            current[key] = text.ToString();
        }

        foreach (var (key, status) in statuses.Routes)
        {
            current[key] = string.Join("; ", status.Parents.Select(p =>
                $"parent {p.ParentRef.Namespace}/{p.ParentRef.Name}{(p.ParentRef.SectionName is { } s ? $"/{s}" : string.Empty)}{(p.ParentRef.Port is { } port ? $":{port}" : string.Empty)}: {Summary(p.Conditions)}"));
        }

        foreach (var (key, status) in statuses.Policies)
        {
            current[key] = status.Ancestors.IsEmpty
                ? "reaches no Gateway"
                : string.Join("; ", status.Ancestors.Select(a =>
                    $"ancestor {ResourceKeyText(a.AncestorRef)}: {Summary(a.Conditions)}"));
        }

        foreach (var (key, text) in current)
        {
            if (!_previous.TryGetValue(key, out var before) || before != text)
            {
                // Names, listener names and messages come from input: escaped, so they cannot forge a log line.
                LogStatus(logger, LogText.Escape(key.ToString()), LogText.Escape(text, LogText.MaxMessageLength));
            }
        }

        _previous = current;
        return ValueTask.CompletedTask;
    }

    private static string ResourceKeyText(ParentReference reference) =>
        $"{reference.Kind} {reference.Namespace}/{reference.Name}{(reference.SectionName is { } s ? $"/{s}" : string.Empty)}";

    /// <summary>Healthy conditions as <c>Type=Status</c>; unhealthy ones with their reason and message, which say what to fix.</summary>
    private static string Summary(IEnumerable<Condition> conditions) =>
        string.Join(" ", conditions.Select(static c => IsHealthy(c)
            ? $"{c.Type}={c.Status}"
            : $"{c.Type}={c.Status}/{c.Reason} ({c.Message})"));

    private static bool IsHealthy(Condition condition) =>
        condition.Type == ConditionTypes.Conflicted
            ? condition.Status == ConditionStatus.False
            : condition.Status == ConditionStatus.True && condition.Reason == condition.Type;

    [LoggerMessage(1, LogLevel.Information, "Status of {Object}: {Status}")]
    private static partial void LogStatus(ILogger logger, string @object, string status);
}
