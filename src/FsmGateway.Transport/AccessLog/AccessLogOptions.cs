namespace FsmGateway.Transport.AccessLog;

/// <summary>
/// The access log: one line per client connection when it ends (and optionally one when it starts), written by one
/// background writer from a bounded queue, so the data path never waits for the sink. When the sink is slower than the
/// traffic, lines are dropped and counted (<c>fsmgateway.access_log.dropped</c>). Off unless
/// <see cref="Destination"/> is set.
/// </summary>
public sealed class AccessLogOptions
{
    /// <summary>The <see cref="Destination"/> that writes to the process's standard output.</summary>
    public const string StandardOutput = "stdout";

    /// <summary>The <see cref="Destination"/> that writes to the process's standard error.</summary>
    public const string StandardError = "stderr";

    /// <summary>The largest <see cref="QueueCapacity"/>.</summary>
    public const int MaxQueueCapacity = 1_000_000;

    /// <summary>
    /// Where lines go: <see cref="StandardOutput"/>, <see cref="StandardError"/>, or a file path (appended to; its
    /// folder must exist). A file is reopened on SIGHUP and, on Linux, when the file at the path is no longer the one
    /// open (renamed or deleted by log rotation). <see langword="null"/> (the default): no access log.
    /// </summary>
    public string? Destination { get; set; }

    /// <summary>The line format. Default <see cref="AccessLogFormat.Json"/>.</summary>
    public AccessLogFormat Format { get; set; } = AccessLogFormat.Json;

    /// <summary>Also write a line when a connection is accepted (<c>"event":"start"</c>). Default <see langword="false"/>.</summary>
    public bool LogConnectionStart { get; set; }

    /// <summary>How many lines may wait for the sink before new ones are dropped. Default 8192.</summary>
    public int QueueCapacity { get; set; } = 8192;
}

/// <summary>The format of access-log lines.</summary>
public enum AccessLogFormat
{
    /// <summary>One JSON object per line.</summary>
    Json,

    /// <summary>One line of <c>key=value</c> pairs (logfmt), the same keys as JSON.</summary>
    Text,
}
