using Microsoft.Extensions.Logging;

namespace FsmGateway.Transport.Health;

/// <summary>Active health checking's log messages, source-generated. Transitions only: a probe that changes nothing logs nothing.</summary>
internal static partial class HealthLog
{
    [LoggerMessage(50, LogLevel.Information, "Endpoint {Endpoint} of backend {Backend} is down: {Failures} consecutive failed {Protocol} health probe(s) (last: {Reason}); new connections skip it")]
    public static partial void EndpointDown(ILogger logger, string endpoint, string backend, int failures, string protocol, string reason);

    [LoggerMessage(51, LogLevel.Information, "Endpoint {Endpoint} of backend {Backend} is up again: {Successes} consecutive passed {Protocol} health probe(s)")]
    public static partial void EndpointUp(ILogger logger, string endpoint, string backend, int successes, string protocol);

    [LoggerMessage(52, LogLevel.Error, "Health probing of endpoint {Endpoint} (backend {Backend}) stopped on an unexpected error ({Error}); it keeps its last health")]
    public static partial void ProbeLoopFailed(ILogger logger, string endpoint, string backend, string error);
}
