using System.Net;
using FsmGateway.Routing;
using FsmGateway.Transport.Proxy;

namespace FsmGateway.Transport.AccessLog;

/// <summary>
/// What one access-log line says, captured on the data path as references and numbers: the writer formats it, so the
/// connection's thread only copies this struct into the queue.
/// </summary>
internal readonly record struct AccessLogEntry(
    AccessLogEvent Event,
    DateTimeOffset StartTime,
    TimeSpan Duration,
    EndPoint? Client,
    ListenerRoute Listener,
    RouteBackend? Backend,
    EndPoint? Endpoint,
    TimeSpan? ConnectTime,
    long BytesUpstream,
    long BytesDownstream,
    TerminationReason Reason);

/// <summary>The kind of an <see cref="AccessLogEntry"/>.</summary>
internal enum AccessLogEvent
{
    /// <summary>A connection was accepted.</summary>
    Start,

    /// <summary>A connection ended.</summary>
    End,

    /// <summary>Not a line: wakes the writer (to reopen the file after SIGHUP).</summary>
    Wake,
}
