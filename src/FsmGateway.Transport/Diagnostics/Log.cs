using System.Net;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Transport.Proxy;

/// <summary>The proxy's log messages, source-generated.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Listening on {EndPoint} for listener '{Listener}' of {Gateway}")]
    public static partial void Listening(ILogger logger, EndPoint endPoint, string listener, string gateway);

    [LoggerMessage(2, LogLevel.Error, "Cannot listen on port {Port} for listener '{Listener}' of {Gateway}: {Reason}")]
    public static partial void BindFailed(ILogger logger, int port, string listener, string gateway, string reason);

    [LoggerMessage(3, LogLevel.Information, "Stopped listening on port {Port}; draining {Count} connection(s) for up to {Deadline}")]
    public static partial void Unbound(ILogger logger, int port, int count, TimeSpan deadline);

    [LoggerMessage(4, LogLevel.Warning, "Drain deadline passed on port {Port}: closing {Count} connection(s)")]
    public static partial void DrainDeadline(ILogger logger, int port, int count);

    [LoggerMessage(5, LogLevel.Debug, "Connection from {Client} on port {Port} closed at once: {Reason}")]
    public static partial void Rejected(ILogger logger, EndPoint? client, int port, string reason);

    // Debug, not Warning: with inline socket completions this runs on the epoll thread, and a dead backend under load
    // would flood the log queue. The fsmgateway.upstream.connect_failures metric counts them.
    [LoggerMessage(6, LogLevel.Debug, "Connect to {Endpoint} (backend {Backend}) failed on attempt {Attempt}: {Reason}")]
    public static partial void ConnectFailed(ILogger logger, string endpoint, string backend, int attempt, string reason);

    [LoggerMessage(7, LogLevel.Debug, "Closing connection from {Client} on port {Port}: {Reason}")]
    public static partial void LimitReached(ILogger logger, EndPoint? client, int port, string reason);

    [LoggerMessage(8, LogLevel.Information, "Routing table applied: {Count} listener(s); port {Port} now routes to {Route}")]
    public static partial void RouteUpdated(ILogger logger, int count, int port, string route);

    // At Information and above an exception is its type and message; the trace goes to a Debug companion.
    [LoggerMessage(10, LogLevel.Error, "Accepting on port {Port} failed ({ExceptionType}: {ExceptionMessage}); retrying")]
    public static partial void AcceptFailed(ILogger logger, int port, string exceptionType, string exceptionMessage);

    [LoggerMessage(11, LogLevel.Debug, "Accepting on port {Port} failed")]
    public static partial void AcceptFailedTrace(ILogger logger, Exception exception, int port);

    [LoggerMessage(9, LogLevel.Error, "Unexpected error on a connection from {Client} on port {Port} ({ExceptionType}: {ExceptionMessage})")]
    public static partial void ConnectionError(ILogger logger, EndPoint? client, int port, string exceptionType, string exceptionMessage);

    [LoggerMessage(12, LogLevel.Debug, "Unexpected error on a connection from {Client} on port {Port}")]
    public static partial void ConnectionErrorTrace(ILogger logger, Exception exception, EndPoint? client, int port);

    // Passive health. Bounded: an endpoint is ejected at most once per ejection time, and panic changes with ejections.
    [LoggerMessage(40, LogLevel.Warning, "Endpoint {Endpoint} of backend {Backend} ejected for {Duration} after {Failures} consecutive failed connect(s) (last: {Reason}); new connections skip it until then")]
    public static partial void EndpointEjected(ILogger logger, string endpoint, string backend, TimeSpan duration, int failures, string reason);

    [LoggerMessage(41, LogLevel.Warning, "Backend {Backend} has {Healthy} of {Count} endpoint(s) healthy, below its panic threshold ({Threshold}): panic mode, new connections try all {Count} of them")]
    public static partial void PanicEntered(ILogger logger, string backend, int healthy, int count, string threshold);

    [LoggerMessage(42, LogLevel.Information, "Backend {Backend} has {Healthy} of {Count} endpoint(s) healthy again: panic mode over")]
    public static partial void PanicLeft(ILogger logger, string backend, int healthy, int count);
}
