using System.Collections.Immutable;
using System.Reactive;
using System.Reactive.Concurrency;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using FsmGateway.Configuration;
using FsmGateway.Resources;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace FsmGateway.Kubernetes.Manifests;

/// <summary>
/// Manifest files as a config source: files, or folders of <c>.yaml</c>/<c>.yml</c>/<c>.json</c> manifests, watched
/// for changes (edits, new and removed files, and the atomic renames editors and <c>kubectl</c>-style tools do).
/// After each change settles it re-reads and sends the whole set as one <see cref="ConfigEvent.SourceReset"/>.
/// A file that no longer parses is reported (file, document, field) and the objects it held before stay in force
/// until it parses again.
/// </summary>
public sealed partial class ManifestFileSource : IConfigSource, IDisposable
{
    private readonly IReadOnlyList<string> _paths;
    private readonly string _defaultNamespace;
    private readonly ILogger _logger;
    private readonly Subject<Unit> _changeSubject = new();
    private readonly ISubject<Unit> _changes;
    private readonly List<FileSystemWatcher> _watchers = [];
    private readonly Dictionary<string, ImmutableArray<Resource>> _lastGood = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <summary>Creates the source; nothing is read or watched until <see cref="Events"/> is subscribed.</summary>
    /// <param name="paths">Files or folders (folders are read one level deep).</param>
    /// <param name="defaultNamespace">The namespace for objects that name none, as <c>kubectl apply -n</c>.</param>
    /// <param name="scheduler">Where the settle delay runs; the default scheduler when null.</param>
    /// <param name="logger">Where manifest errors and reloads are logged.</param>
    /// <param name="settle">How long file events must pause before a reload; default 200 ms.</param>
    public ManifestFileSource(IReadOnlyList<string> paths, string defaultNamespace = "default", IScheduler? scheduler = null, ILogger<ManifestFileSource>? logger = null, TimeSpan? settle = null)
    {
        ArgumentNullException.ThrowIfNull(paths);
        _paths = [.. paths.Select(Path.GetFullPath)];
        _defaultNamespace = defaultNamespace;
        _logger = logger ?? NullLogger<ManifestFileSource>.Instance;
        Name = "manifests";

        // File watcher events arrive on several threads at once; Rx subjects need one at a time.
        _changes = Subject.Synchronize(_changeSubject);
        var delay = settle ?? TimeSpan.FromMilliseconds(200);
        var timers = scheduler ?? DefaultScheduler.Instance;
        Events = Observable.Defer(() =>
            {
                // Without file notifications (e.g. the inotify limit is reached), fall back to polling.
                var changes = StartWatching()
                    ? _changes.AsObservable()
                    : _changes.Merge(Observable.Interval(PollInterval, timers).Select(static _ => Unit.Default));
                lock (_gate)
                {
                    _lastSent = default;
                }

                // Changes are subscribed before the first read, so an edit made during it is not lost.
                return changes
                    .Throttle(delay, timers)
                    .Merge(Observable.Return(Unit.Default))
                    .Select(_ => Reload())
                    .Where(static e => e is not null)
                    .Select(static e => e!);
            })
            .Replay(1)
            .RefCount();
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public IObservable<ConfigEvent> Events { get; }

    /// <summary>The errors of the last reload, each naming file, document and field; empty when every file parsed.</summary>
    public ImmutableArray<ManifestError> Errors { get; private set; } = [];

    /// <summary>How often files are re-read when file notifications are not available.</summary>
    public static TimeSpan PollInterval { get; } = TimeSpan.FromSeconds(2);

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (var watcher in _watchers)
            {
                watcher.Dispose();
            }

            _watchers.Clear();
        }

        // Completed, not disposed: a watcher event racing this call must find a subject that ignores it.
        _changes.OnCompleted();
    }

    private bool _disposed;

    private ImmutableArray<Resource> _lastSent;

    private ConfigEvent? Reload()
    {
        try
        {
            return ReloadCore();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A folder vanished or became unreadable mid-read: keep everything as it is until the next change.
            LogWatchError(_logger, e.Message);
            return null;
        }
    }

    private ConfigEvent? ReloadCore()
    {
        lock (_gate)
        {
            var errors = ImmutableArray.CreateBuilder<ManifestError>();
            var current = new Dictionary<string, ImmutableArray<Resource>>(StringComparer.Ordinal);
            foreach (var file in ManifestFiles())
            {
                var set = ManifestReader.ReadFile(file, _defaultNamespace);
                if (set.Succeeded)
                {
                    current[file] = set.Resources;
                    continue;
                }

                errors.AddRange(set.Errors);
                foreach (var error in set.Errors)
                {
                    LogManifestError(_logger, error.ToString());
                }

                if (_lastGood.TryGetValue(file, out var previous))
                {
                    LogKeptPrevious(_logger, file, previous.Length);
                    current[file] = previous;
                }
            }

            _lastGood.Clear();
            foreach (var (file, resources) in current)
            {
                _lastGood[file] = resources;
            }

            Errors = errors.ToImmutable();
            ImmutableArray<Resource> all = [.. current.OrderBy(static f => f.Key, StringComparer.Ordinal).SelectMany(static f => f.Value)];
            if (!_lastSent.IsDefault && all.SequenceEqual(_lastSent))
            {
                return null;
            }

            _lastSent = all;
            LogLoaded(_logger, all.Length, current.Count);
            return new ConfigEvent.SourceReset(Name, all);
        }
    }

    private IEnumerable<string> ManifestFiles()
    {
        foreach (var path in _paths)
        {
            if (Directory.Exists(path))
            {
                foreach (var file in ManifestReader.ManifestFilesIn(path))
                {
                    yield return file;
                }
            }
            else
            {
                // A named file that is missing (mid "rm then cp") is a read error, so its previous objects stay.
                yield return path;
            }
        }
    }

    private bool StartWatching()
    {
        lock (_gate)
        {
            if (_watchers.Count > 0)
            {
                return true;
            }

            // Watch the folder, not the file: an atomic rename replaces the file's inode, which a file watch would lose.
            foreach (var folder in _paths.Select(p => Directory.Exists(p) ? p : Path.GetDirectoryName(p)!).Distinct(StringComparer.Ordinal))
            {
                if (!Directory.Exists(folder))
                {
                    continue;
                }

                var watcher = new FileSystemWatcher(folder)
                {
                    NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime,
                    IncludeSubdirectories = false,
                };
                watcher.Changed += OnChanged;
                watcher.Created += OnChanged;
                watcher.Deleted += OnChanged;
                watcher.Renamed += OnChanged;
                watcher.Error += (_, e) =>
                {
                    LogWatchError(_logger, e.GetException().Message);
                    _changes.OnNext(Unit.Default);
                };
                try
                {
                    watcher.EnableRaisingEvents = true;
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    watcher.Dispose();
                    LogPolling(_logger, folder, e.Message, PollInterval);
                    return false;
                }

                _watchers.Add(watcher);
            }

            return true;
        }
    }

    private void OnChanged(object sender, FileSystemEventArgs e) => _changes.OnNext(Unit.Default);

    [LoggerMessage(1, LogLevel.Error, "Manifest error: {Error}")]
    private static partial void LogManifestError(ILogger logger, string error);

    [LoggerMessage(2, LogLevel.Warning, "Keeping the {Count} object(s) {File} held before, until it parses again")]
    private static partial void LogKeptPrevious(ILogger logger, string file, int count);

    [LoggerMessage(3, LogLevel.Information, "Loaded {Count} object(s) from {Files} manifest file(s)")]
    private static partial void LogLoaded(ILogger logger, int count, int files);

    [LoggerMessage(4, LogLevel.Warning, "Cannot watch {Folder} ({Reason}); re-reading manifests every {Interval} instead")]
    private static partial void LogPolling(ILogger logger, string folder, string reason, TimeSpan interval);

    [LoggerMessage(5, LogLevel.Warning, "Watching manifests failed ({Reason}); re-reading them")]
    private static partial void LogWatchError(ILogger logger, string reason);
}
