using System.Runtime.InteropServices;
using System.Threading.Channels;
using FsmGateway.Transport.Proxy;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Transport.AccessLog;

/// <summary>
/// Writes the access log off the data path: connections enqueue an <see cref="AccessLogEntry"/> into a bounded queue
/// (never waiting: when it is full the new line is dropped and counted), and one dedicated thread formats and writes
/// them in batches. A sink that blocks (a full pipe, a stalled disk) blocks that thread only. A file is reopened on
/// SIGHUP and when the file at the path is no longer the open one (checked at most once a second, before a write).
/// </summary>
internal sealed partial class AccessLogWriter : IAsyncDisposable
{
    /// <summary>How often, at most, the file at the path is compared with the open one.</summary>
    internal static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(1);

    /// <summary>How long stopping waits for queued lines to be written before giving up on a blocked sink.</summary>
    private static readonly TimeSpan FlushOnStop = TimeSpan.FromSeconds(5);

    // A write of at most PIPE_BUF bytes to a pipe is atomic: lines to stdout/stderr are never torn by the log's lines.
    private const int PipeAtomicBytes = 4096;
    private const int BatchBytes = 256 * 1024;

    private readonly Channel<AccessLogEntry> _queue;
    private readonly string _destination;
    private readonly AccessLogFormat _format;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ProxyMetrics _metrics;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly PosixSignalRegistration? _hangUp;
    private Stream? _stream;
    private FileIdentity? _openIdentity;
    private long _lastCheck;
    private long _lastOpenFailure;
    private bool _failing;
    private int _reopenRequested;

    public AccessLogWriter(AccessLogOptions options, TimeProvider time, ILogger logger, ProxyMetrics metrics)
    {
        _destination = options.Destination ?? throw new ArgumentException("no access-log destination", nameof(options));
        _format = options.Format;
        LogsStart = options.LogConnectionStart;
        _time = time;
        _logger = logger;
        _metrics = metrics;
        _queue = Channel.CreateBounded<AccessLogEntry>(
            new BoundedChannelOptions(options.QueueCapacity) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true },
            _ => _metrics.AccessLogDropped(1));
        if (IsFile && !OperatingSystem.IsWindows())
        {
            _hangUp = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
            {
                context.Cancel = true; // SIGHUP reopens the access log; it does not end the process
                Interlocked.Exchange(ref _reopenRequested, 1);
                _queue.Writer.TryWrite(default(AccessLogEntry) with { Event = AccessLogEvent.Wake });
            });
        }

        new Thread(Run) { IsBackground = true, Name = "fsmgateway-access-log" }.Start();
    }

    /// <summary>Whether a line is written when a connection starts, too.</summary>
    public bool LogsStart { get; }

    private bool IsFile => _destination is not (AccessLogOptions.StandardOutput or AccessLogOptions.StandardError);

    /// <summary>Queues a line; never waits. A full queue drops it (counted).</summary>
    public void Write(in AccessLogEntry entry) => _queue.Writer.TryWrite(entry);

    public async ValueTask DisposeAsync()
    {
        _hangUp?.Dispose();
        _queue.Writer.TryComplete();
        try
        {
            await _stopped.Task.WaitAsync(FlushOnStop, _time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // The thread is a background one: a sink blocked for good does not keep the process alive.
            LogStopBlocked(_logger, LogText.Escape(_destination), FlushOnStop);
        }
    }

    private void Run()
    {
        var formatter = new AccessLogFormatter(_format);
        var reader = _queue.Reader;
        try
        {
            while (true)
            {
                if (!reader.TryRead(out var entry))
                {
                    // The only thread that waits here is this one; no socket completion runs on it.
                    if (!reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
                    {
                        return;
                    }

                    continue;
                }

                formatter.Clear();
                var lines = 0;
                do
                {
                    if (entry.Event != AccessLogEvent.Wake)
                    {
                        formatter.Append(entry);
                        lines++;
                    }
                }
                while (formatter.Written.Length < BatchBytes && reader.TryRead(out entry));

                WriteBatch(formatter.Written, lines);
            }
        }
        catch (Exception e)
        {
            LogWriterFailed(_logger, e.GetType().Name, e.Message);
        }
        finally
        {
            Close();
            _stopped.TrySetResult();
        }
    }

    private void WriteBatch(ReadOnlyMemory<byte> bytes, int lines)
    {
        EnsureOpen();
        if (_stream is null)
        {
            _metrics.AccessLogDropped(lines);
            return;
        }

        try
        {
            if (IsFile)
            {
                _stream.Write(bytes.Span);
            }
            else
            {
                WriteInPipeSizedChunks(_stream, bytes.Span);
            }

            _stream.Flush();
            _metrics.AccessLogWritten(lines);
            _failing = false;
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException)
        {
            _metrics.AccessLogDropped(lines);
            if (!_failing)
            {
                _failing = true;
                LogWriteFailed(_logger, LogText.Escape(_destination), e.GetType().Name, e.Message);
            }

            if (IsFile)
            {
                Close(); // opened again on the next batch
            }
        }
    }

    /// <summary>Writes whole lines in writes of at most <see cref="PipeAtomicBytes"/> (a longer line alone).</summary>
    private static void WriteInPipeSizedChunks(Stream stream, ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            var length = bytes.Length;
            if (length > PipeAtomicBytes)
            {
                var cut = bytes[..PipeAtomicBytes].LastIndexOf((byte)'\n');
                if (cut < 0)
                {
                    cut = bytes.IndexOf((byte)'\n'); // a line longer than that goes alone
                }

                length = cut < 0 ? bytes.Length : cut + 1;
            }

            stream.Write(bytes[..length]);
            bytes = bytes[length..];
        }
    }

    private void EnsureOpen()
    {
        if (!IsFile)
        {
            _stream ??= _destination == AccessLogOptions.StandardOutput ? Console.OpenStandardOutput() : Console.OpenStandardError();
            return;
        }

        var now = _time.GetTimestamp();
        var requested = Interlocked.Exchange(ref _reopenRequested, 0) == 1;
        string? why = null;
        if (_stream is not null)
        {
            why = requested ? "SIGHUP" : null;
            if (why is null && _time.GetElapsedTime(_lastCheck, now) >= CheckInterval)
            {
                _lastCheck = now;
                var atPath = FileIdentity.OfPath(_destination);
                if (atPath is null && !File.Exists(_destination))
                {
                    why = "the file was renamed or deleted";
                }
                else if (atPath is { } current && _openIdentity is { } open && current != open)
                {
                    why = "another file is at the path";
                }
            }

            if (why is null)
            {
                return;
            }

            Close();
        }
        else if (!requested && _lastOpenFailure != 0 && _time.GetElapsedTime(_lastOpenFailure, now) < CheckInterval)
        {
            return; // failed to open a moment ago: drop lines rather than try on every batch
        }

        try
        {
            var file = new FileStream(_destination, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, bufferSize: 0);
            _openIdentity = FileIdentity.OfHandle(file.SafeFileHandle);
            _stream = file;
            _lastCheck = now;
            _lastOpenFailure = 0;
            if (why is not null)
            {
                // Once the new file exists: whoever reads this can find it at the path.
                LogReopening(_logger, LogText.Escape(_destination), why);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            if (_lastOpenFailure == 0)
            {
                LogOpenFailed(_logger, LogText.Escape(_destination), e.GetType().Name, e.Message);
            }

            _lastOpenFailure = now;
        }
    }

    private void Close()
    {
        if (_stream is FileStream file)
        {
            try
            {
                file.Dispose();
            }
            catch (IOException)
            {
                // Closing cannot lose what a flush already wrote; nothing to do.
            }

            _stream = null;
        }
    }

    [LoggerMessage(1, LogLevel.Error, "Cannot open the access log {Path} ({ExceptionType}: {ExceptionMessage}); its lines are dropped (fsmgateway.access_log.dropped) until it can be opened")]
    private static partial void LogOpenFailed(ILogger logger, string path, string exceptionType, string exceptionMessage);

    [LoggerMessage(2, LogLevel.Error, "Writing the access log {Path} failed ({ExceptionType}: {ExceptionMessage}); lines are dropped (fsmgateway.access_log.dropped)")]
    private static partial void LogWriteFailed(ILogger logger, string path, string exceptionType, string exceptionMessage);

    [LoggerMessage(3, LogLevel.Information, "Reopening the access log {Path}: {Why}")]
    private static partial void LogReopening(ILogger logger, string path, string why);

    [LoggerMessage(4, LogLevel.Warning, "The access log {Path} did not take the last lines within {Wait}; they are dropped")]
    private static partial void LogStopBlocked(ILogger logger, string path, TimeSpan wait);

    [LoggerMessage(5, LogLevel.Error, "The access-log writer stopped ({ExceptionType}: {ExceptionMessage}); no more lines are written")]
    private static partial void LogWriterFailed(ILogger logger, string exceptionType, string exceptionMessage);
}
