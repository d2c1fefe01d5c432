using System.CommandLine;
using FsmGateway.Transport.AccessLog;

namespace FsmGateway.Host.Cli;

/// <summary>The access-log options of the modes that proxy traffic (<c>run</c>, <c>gateway</c>).</summary>
internal sealed class AccessLogCli
{
    private readonly Option<string> _destination = new("--access-log")
    {
        Description = "One line per connection when it ends: stdout, stderr, a file path (appended to; reopened on SIGHUP and when log rotation renames or deletes it), or off.",
        DefaultValueFactory = _ => "off",
    };

    private readonly Option<AccessLogFormat> _format = new("--access-log-format")
    {
        Description = "Access-log lines as json (one object per line) or text (key=value pairs, the same keys).",
        DefaultValueFactory = _ => AccessLogFormat.Json,
    };

    private readonly Option<bool> _start = new("--access-log-start") { Description = "Also write an access-log line when a connection is accepted." };

    private readonly Option<int> _queue = new("--access-log-queue")
    {
        Description = "How many access-log lines may wait for a slow sink; past that new lines are dropped and counted (fsmgateway_access_log_dropped_total).",
        DefaultValueFactory = _ => 8192,
    };

    public void AddTo(Command command)
    {
        foreach (var option in (Option[])[_destination, _format, _start, _queue])
        {
            command.Options.Add(option);
        }
    }

    /// <summary>Reads the options: null when the access log is off; throws <see cref="ArgumentException"/> naming the option when one is bad.</summary>
    public Action<AccessLogOptions>? Read(ParseResult parse)
    {
        var destination = parse.GetValue(_destination)!;
        var queue = parse.GetValue(_queue);
        if (queue is < 1 or > AccessLogOptions.MaxQueueCapacity)
        {
            throw new ArgumentException($"{_queue.Name}: '{queue}' is not between 1 and {AccessLogOptions.MaxQueueCapacity}");
        }

        if (destination == "off")
        {
            return null;
        }

        if (destination is not (AccessLogOptions.StandardOutput or AccessLogOptions.StandardError))
        {
            CheckFile(destination);
        }

        var format = parse.GetValue(_format);
        var start = parse.GetValue(_start);
        return o =>
        {
            o.Destination = destination;
            o.Format = format;
            o.LogConnectionStart = start;
            o.QueueCapacity = queue;
        };
    }

    /// <summary>A folder, a missing folder, or a new file that cannot be created is an error now, not a log line later.</summary>
    private void CheckFile(string path)
    {
        var shown = LogText.Escape(path);
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new ArgumentException($"{_destination.Name}: must be stdout, stderr, a file path or off");
        }

        if (Directory.Exists(path))
        {
            throw new ArgumentException($"{_destination.Name}: '{shown}' is a folder, not a file");
        }

        var folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null && !Directory.Exists(folder))
        {
            throw new ArgumentException($"{_destination.Name}: the folder of '{shown}' does not exist");
        }

        // An existing file is opened by the writer (a FIFO would block here until read); a new one is created now.
        if (!File.Exists(path))
        {
            try
            {
                using var created = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ArgumentException($"{_destination.Name}: cannot create '{shown}': {LogText.Escape(e.Message)}", e);
            }
        }
    }
}
