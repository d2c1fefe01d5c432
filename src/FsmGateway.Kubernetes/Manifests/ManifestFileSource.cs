using System.Collections.Immutable;
using System.Reactive;
using System.Reactive.Concurrency;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using System.Threading.Channels;
using FsmGateway.Configuration;
using FsmGateway.Reactive;
using FsmGateway.Resources;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace FsmGateway.Kubernetes.Manifests;

/// <summary>
/// Manifest files as a config source: files, or folders of <c>.yaml</c>/<c>.yml</c>/<c>.json</c> manifests, watched
/// for changes (edits, new and removed files, and the atomic renames editors, <c>kubectl</c>-style tools and
/// Kubernetes ConfigMap volumes do). After each change settles (or at the latest after
/// <see cref="ManifestFileSourceOptions.MaxDelay"/>) it re-reads and sends the whole set as one
/// <see cref="ConfigEvent.SourceReset"/>. A file that no longer parses, or cannot be read (not a regular file, a
/// symbolic link loop, over the size cap, unreadable, a read that hangs), is reported once (file, document, field)
/// and the objects it held before stay in force until it reads and parses again. No file can block the reloads or
/// shutdown.
/// </summary>
public sealed partial class ManifestFileSource : IConfigSource, IDisposable
{
    private readonly IReadOnlyList<string> _paths;
    private readonly string _defaultNamespace;
    private readonly ManifestFileSourceOptions _options;
    private readonly IScheduler _timers;
    private readonly Func<string, long, ManifestFile.Outcome> _readFile;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Subject<Unit> _changeSubject = new();
    private readonly ISubject<Unit> _changes;
    private readonly List<FileSystemWatcher> _watchers = [];
    private readonly Lock _gate = new();
    private bool _disposed;

    /// <summary>Creates the source; nothing is read or watched until <see cref="Events"/> is subscribed.</summary>
    /// <param name="paths">Files or folders (folders are read one level deep).</param>
    /// <param name="defaultNamespace">The namespace for objects that name none, as <c>kubectl apply -n</c>.</param>
    /// <param name="scheduler">Where the settle delay runs; the default scheduler when null.</param>
    /// <param name="logger">Where manifest errors and reloads are logged.</param>
    /// <param name="settle">How long file events must pause before a reload; default 200 ms.</param>
    public ManifestFileSource(IReadOnlyList<string> paths, string defaultNamespace = "default", IScheduler? scheduler = null, ILogger<ManifestFileSource>? logger = null, TimeSpan? settle = null)
        : this(paths, WithSettle(settle), defaultNamespace, scheduler, logger)
    {
    }

    /// <summary>Creates the source; nothing is read or watched until <see cref="Events"/> is subscribed.</summary>
    /// <param name="paths">Files or folders (folders are read one level deep).</param>
    /// <param name="options">How files are watched and read.</param>
    /// <param name="defaultNamespace">The namespace for objects that name none, as <c>kubectl apply -n</c>.</param>
    /// <param name="scheduler">Where the settle delay runs; the default scheduler when null.</param>
    /// <param name="logger">Where manifest errors and reloads are logged.</param>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public ManifestFileSource(IReadOnlyList<string> paths, ManifestFileSourceOptions options, string defaultNamespace = "default", IScheduler? scheduler = null, ILogger<ManifestFileSource>? logger = null)
        : this(paths, options, defaultNamespace, scheduler, logger, ManifestFile.Read, TimeProvider.System)
    {
    }

    /// <summary>The full constructor; tests replace how a file is read and the clock of the read timeout.</summary>
    internal ManifestFileSource(
        IReadOnlyList<string> paths,
        ManifestFileSourceOptions options,
        string defaultNamespace,
        IScheduler? scheduler,
        ILogger<ManifestFileSource>? logger,
        Func<string, long, ManifestFile.Outcome> readFile,
        TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(defaultNamespace);
        ManifestFileSourceOptionsValidator.ThrowIfInvalid(options);
        _paths = [.. paths.Select(Path.GetFullPath)];
        _defaultNamespace = defaultNamespace;
        _options = options;
        _timers = scheduler ?? DefaultScheduler.Instance;
        _readFile = readFile;
        _time = time;
        _logger = logger ?? NullLogger<ManifestFileSource>.Instance;
        Name = "manifests";

        // File watcher events arrive on several threads at once; Rx subjects need one at a time.
        _changes = Subject.Synchronize(_changeSubject);
        Events = Observable.Create<ConfigEvent>(RunAsync).Replay(1).RefCount();
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public IObservable<ConfigEvent> Events { get; }

    /// <summary>The errors of the last reload, each naming file, document and field; empty when every file was read.</summary>
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

    private static ManifestFileSourceOptions WithSettle(TimeSpan? settle)
    {
        var options = new ManifestFileSourceOptions();
        if (settle is { } given)
        {
            options.Settle = given;
            options.MaxDelay = given > options.MaxDelay ? given : options.MaxDelay;
        }

        return options;
    }

    /// <summary>
    /// One subscription: a reload at once, then one after each settled burst of changes. A burst during a reload
    /// leaves one more reload to do, never a queue. Nothing here holds a lock across a read, so disposing never waits.
    /// </summary>
    private async Task RunAsync(IObserver<ConfigEvent> observer, CancellationToken cancel)
    {
        var wake = Channel.CreateBounded<Unit>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

        // Without file notifications (e.g. the inotify limit is reached), fall back to polling.
        var changes = StartWatching()
            ? _changes.AsObservable()
            : _changes.Merge(Observable.Interval(PollInterval, _timers).Select(static _ => Unit.Default));

        // Changes are subscribed before the first read, so an edit made during it is not lost.
        using var subscription = changes
            .DebounceWithMaxDelay(_options.Settle, _options.MaxDelay, _timers)
            .Subscribe(_ => wake.Writer.TryWrite(Unit.Default), static _ => { });
        var state = new ReloadState();
        while (!cancel.IsCancellationRequested)
        {
            ConfigEvent? next;
            try
            {
                next = await ReloadAsync(state, cancel).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancel.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // Whatever went wrong, the source lives on: the next change is read afresh.
                LogReloadFailed(_logger, e.GetType().Name, LogText.Escape(e.Message));
                LogReloadFailedDetail(_logger, e);
                next = null;
            }

            if (next is not null)
            {
                observer.OnNext(next);
            }

            await wake.Reader.ReadAsync(cancel).ConfigureAwait(false);
        }
    }

    private async Task<ConfigEvent?> ReloadAsync(ReloadState state, CancellationToken cancel)
    {
        List<(string File, bool Named)> files;
        try
        {
            files = ManifestFiles();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A folder vanished or became unreadable mid-listing: keep everything as it is until the next change.
            LogWatchError(_logger, LogText.Escape(e.Message));
            return null;
        }

        // Every file is read at once, each on its own; a file that hangs holds back only itself, and only once.
        var reads = files.Select(f => (f.File, f.Named, Read: ReadAsync(state, f.File, cancel))).ToList();
        var current = new Dictionary<string, FileState>(StringComparer.Ordinal);
        var found = new List<(string File, FileState State, List<ManifestError> Errors, ImmutableArray<string> Notes)>();
        foreach (var (file, named, read) in reads)
        {
            var outcome = await read.ConfigureAwait(false);
            if (outcome.Missing && !named)
            {
                // Removed between listing and reading: its objects go, as they do when the listing no longer has it.
                continue;
            }

            state.Files.TryGetValue(file, out var fileState);
            fileState ??= new FileState();
            current[file] = fileState;
            List<ManifestError> fileErrors;
            ImmutableArray<string> notes = [];
            if (outcome.Bytes is { } bytes)
            {
                if (fileState.Bytes is null || fileState.Set is null || !bytes.AsSpan().SequenceEqual(fileState.Bytes))
                {
                    fileState.Bytes = bytes;
                    fileState.Set = Parse(bytes, file);
                }

                var set = fileState.Set;
                notes = set.Notes;
                fileErrors = [.. set.Errors];
                if (set.Succeeded)
                {
                    fileState.Good = set.Resources;
                }
            }
            else
            {
                // A read problem says nothing about the file's content: what it held before stays.
                fileState.Bytes = null;
                fileState.Set = null;
                fileErrors = [new ManifestError(file, null, null, null, outcome.Problem ?? "cannot read: no such file or folder")];
            }

            found.Add((file, fileState, fileErrors, notes));
        }

        var all = Deduplicate(found, state);
        foreach (var (file, fileState, fileErrors, notes) in found)
        {
            Report(file, fileState, [.. fileErrors], notes);
        }

        state.Files.Clear();
        foreach (var (file, fileState) in current)
        {
            state.Files[file] = fileState;
        }

        Errors = [.. found.SelectMany(static f => f.Errors)];
        if (!state.LastSent.IsDefault && all.SequenceEqual(state.LastSent))
        {
            return null;
        }

        state.LastSent = all;
        LogLoaded(_logger, all.Length, found.Count(static f => !f.State.Good.IsDefault));
        return new ConfigEvent.SourceReset(Name, all);
    }

    /// <summary>
    /// Every object the files hold, in file order. An object defined differently in two places keeps the definition
    /// that was in force (so a file dropped next to a serving one cannot take its objects over), else the first in
    /// file order; every other definition is an error on its file and is ignored: one reset never holds two versions
    /// of one key.
    /// </summary>
    private static ImmutableArray<Resource> Deduplicate(List<(string File, FileState State, List<ManifestError> Errors, ImmutableArray<string> Notes)> files, ReloadState state)
    {
        var ordered = files.Where(static f => !f.State.Good.IsDefault).OrderBy(static f => f.File, StringComparer.Ordinal).ToList();
        var chosen = new Dictionary<ResourceKey, (Resource Resource, string File)>();
        foreach (var (file, fileState, _, _) in ordered)
        {
            foreach (var resource in fileState.Good)
            {
                var inForce = state.Owners.TryGetValue(resource.Key, out var owner) && owner == file;
                if (!chosen.ContainsKey(resource.Key) || inForce)
                {
                    chosen[resource.Key] = (resource, file);
                }
            }
        }

        var all = ImmutableArray.CreateBuilder<Resource>();
        var sent = new HashSet<ResourceKey>();
        foreach (var (file, fileState, errors, _) in ordered)
        {
            foreach (var resource in fileState.Good)
            {
                var winner = chosen[resource.Key];
                if (ReferenceEquals(winner.Resource, resource) || winner.Resource.Equals(resource))
                {
                    // The same definition twice is sent once.
                    if (sent.Add(resource.Key))
                    {
                        all.Add(resource);
                    }
                }
                else
                {
                    var where = winner.File == file ? "elsewhere in this file" : $"in {LogText.Escape(winner.File)}";
                    errors.Add(new ManifestError(file, null, null, null, $"{LogText.Escape(resource.Key.ToString())} is defined again, differently (the definition {where} is in force); this definition is ignored"));
                }
            }
        }

        state.Owners.Clear();
        foreach (var (key, (_, file)) in chosen)
        {
            state.Owners[key] = file;
        }

        return all.ToImmutable();
    }

    /// <summary>Reads one file off the reload's thread, giving up (for this round) after the read timeout.</summary>
    private async Task<ManifestFile.Outcome> ReadAsync(ReloadState state, string file, CancellationToken cancel)
    {
        lock (state.Stuck)
        {
            if (state.Stuck.TryGetValue(file, out var stuck))
            {
                if (!stuck.IsCompleted)
                {
                    // Not read again while the last read hangs: one stuck thread per file at most.
                    return ManifestFile.Outcome.Failed($"a read that did not finish within {_options.ReadTimeout.TotalSeconds:0.###} s still has not (a hung file system?); skipped");
                }

                state.Stuck.Remove(file);
            }
        }

        // The timeout counts from when the read starts, not from when it was queued: a busy thread pool is no hung file.
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var read = Task.Run(
            () =>
            {
                started.SetResult();
                return _readFile(file, _options.MaxFileSize);
            },
            CancellationToken.None);
        await started.Task.WaitAsync(cancel).ConfigureAwait(false);
        try
        {
            return await read.WaitAsync(_options.ReadTimeout, _time, cancel).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            lock (state.Stuck)
            {
                state.Stuck[file] = read;
            }

            return ManifestFile.Outcome.Failed($"reading did not finish within {_options.ReadTimeout.TotalSeconds:0.###} s (a hung file system?); skipped this round");
        }
    }

    private ManifestSet Parse(byte[] bytes, string file)
    {
        try
        {
            return ManifestReader.ReadBytes(bytes, file, _defaultNamespace);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The reader reports bad input as errors; should anything escape it, the file is still only a bad file.
            return ManifestSet.Failed(new ManifestError(file, null, null, null, $"cannot be read: {ErrorText.Of(e)}"));
        }
    }

    /// <summary>Logs a file's errors and notes when they differ from what was last logged for it: once per change, not per reload.</summary>
    private void Report(string file, FileState state, ImmutableArray<ManifestError> errors, ImmutableArray<string> notes)
    {
        ImmutableArray<string> messages = [.. errors.Select(Describe), .. notes];
        if (messages.SequenceEqual(state.Reported))
        {
            return;
        }

        var wasBroken = state.HadErrors;
        state.Reported = messages;
        state.HadErrors = !errors.IsEmpty;
        foreach (var error in errors)
        {
            LogManifestError(_logger, Describe(error));
        }

        foreach (var note in notes)
        {
            LogManifestNote(_logger, note);
        }

        if (!errors.IsEmpty && !state.Good.IsDefault)
        {
            LogKeptPrevious(_logger, LogText.Escape(file), state.Good.Length);
        }
        else if (errors.IsEmpty && wasBroken)
        {
            LogReadAgain(_logger, LogText.Escape(file));
        }
    }

    /// <summary>
    /// An error as one log line. <see cref="ManifestError.ToString"/> escapes the file name and field, and every
    /// message quotes input only escaped (this class escapes the file names in its own), so no file name or YAML
    /// snippet can forge a log line.
    /// </summary>
    private static string Describe(ManifestError error) => error.ToString();

    /// <summary>The files to read, in order; <c>Named</c> when the path names the file itself rather than its folder.</summary>
    private List<(string File, bool Named)> ManifestFiles()
    {
        var files = new List<(string, bool)>();
        foreach (var path in _paths)
        {
            if (Directory.Exists(path))
            {
                files.AddRange(ManifestReader.ManifestFilesIn(path).Select(static f => (f, false)));
            }
            else
            {
                // A named file that is missing (mid "rm then cp") is a read error, so its previous objects stay.
                files.Add((path, true));
            }
        }

        return files;
    }

    private bool StartWatching()
    {
        lock (_gate)
        {
            if (_watchers.Count > 0 || _disposed)
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
                    NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime,
                    IncludeSubdirectories = false,
                };
                watcher.Changed += OnChanged;
                watcher.Created += OnChanged;
                watcher.Deleted += OnChanged;
                watcher.Renamed += OnChanged;
                watcher.Error += (_, e) =>
                {
                    LogWatchError(_logger, LogText.Escape(e.GetException().Message));
                    _changes.OnNext(Unit.Default);
                };
                try
                {
                    watcher.EnableRaisingEvents = true;
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    watcher.Dispose();
                    LogPolling(_logger, LogText.Escape(folder), LogText.Escape(e.Message), PollInterval);
                    return false;
                }

                _watchers.Add(watcher);
            }

            return true;
        }
    }

    private void OnChanged(object sender, FileSystemEventArgs e) => _changes.OnNext(Unit.Default);

    /// <summary>What one subscription remembers between reloads.</summary>
    private sealed class ReloadState
    {
        public Dictionary<string, FileState> Files { get; } = new(StringComparer.Ordinal);

        /// <summary>Reads that did not finish in time, by file; a file is not read again until its read ends.</summary>
        public Dictionary<string, Task<ManifestFile.Outcome>> Stuck { get; } = new(StringComparer.Ordinal);

        public ImmutableArray<Resource> LastSent { get; set; }

        /// <summary>Which file each object sent last came from.</summary>
        public Dictionary<ResourceKey, string> Owners { get; } = [];
    }

    /// <summary>One file: its last content and what it parsed to, the objects it last held when good, what was logged.</summary>
    private sealed class FileState
    {
        public byte[]? Bytes { get; set; }

        public ManifestSet? Set { get; set; }

        public ImmutableArray<Resource> Good { get; set; }

        public ImmutableArray<string> Reported { get; set; } = [];

        public bool HadErrors { get; set; }
    }

    [LoggerMessage(1, LogLevel.Error, "Manifest error: {Error}")]
    private static partial void LogManifestError(ILogger logger, string error);

    [LoggerMessage(2, LogLevel.Warning, "Keeping the {Count} object(s) {File} held before, until it reads and parses again")]
    private static partial void LogKeptPrevious(ILogger logger, string file, int count);

    [LoggerMessage(3, LogLevel.Information, "Loaded {Count} object(s) from {Files} manifest file(s)")]
    private static partial void LogLoaded(ILogger logger, int count, int files);

    [LoggerMessage(4, LogLevel.Warning, "Cannot watch {Folder} ({Reason}); re-reading manifests every {Interval} instead")]
    private static partial void LogPolling(ILogger logger, string folder, string reason, TimeSpan interval);

    [LoggerMessage(5, LogLevel.Warning, "Watching manifests failed ({Reason}); re-reading them")]
    private static partial void LogWatchError(ILogger logger, string reason);

    [LoggerMessage(6, LogLevel.Warning, "Manifest note: {Note}")]
    private static partial void LogManifestNote(ILogger logger, string note);

    [LoggerMessage(7, LogLevel.Information, "{File} reads cleanly again")]
    private static partial void LogReadAgain(ILogger logger, string file);

    [LoggerMessage(8, LogLevel.Error, "Reloading manifests failed ({Type}: {Reason}); what is applied stays, the next change is read afresh")]
    private static partial void LogReloadFailed(ILogger logger, string type, string reason);

    [LoggerMessage(9, LogLevel.Debug, "Reloading manifests failed")]
    private static partial void LogReloadFailedDetail(ILogger logger, Exception exception);
}
