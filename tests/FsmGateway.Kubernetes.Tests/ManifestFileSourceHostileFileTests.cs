using System.Collections.Concurrent;
using System.Diagnostics;
using FsmGateway.Configuration;
using FsmGateway.Kubernetes.Manifests;
using FsmGateway.Resources;
using Microsoft.Extensions.Logging.Testing;

namespace FsmGateway.Kubernetes.Tests;

/// <summary>
/// What a watched folder may hold besides good manifests: FIFOs, devices, link loops, huge files, files rewritten
/// without pause, reads that hang. Real files and real file-system notifications; each test checks that an edit to a
/// good file is still applied afterwards.
/// </summary>
public sealed class ManifestFileSourceHostileFileTests : IDisposable
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(10);
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("fsm-hostile-");
    private readonly BlockingCollection<ConfigEvent> _events = [];
    private readonly ConcurrentQueue<ConfigEvent.SourceReset> _sent = new();
    private readonly FakeLogger<ManifestFileSource> _log = new();

    public void Dispose()
    {
        _events.Dispose();
        _folder.Delete(recursive: true);
    }

    private string PathOf(string name) => Path.Combine(_folder.FullName, name);

    private static string ServiceYaml(string name, int port = 80) => $"""
        apiVersion: v1
        kind: Service
        metadata:
          name: {name}
        spec:
          ports:
            - port: {port}
        """;

    private ManifestFileSource Start(ManifestFileSourceOptions? options = null, Func<string, long, ManifestFile.Outcome>? readFile = null)
    {
        options ??= new ManifestFileSourceOptions { Settle = TimeSpan.FromMilliseconds(100) };
        var source = new ManifestFileSource([_folder.FullName], options, "default", null, _log, readFile ?? ManifestFile.Read, TimeProvider.System);
        source.Events.Subscribe(e =>
        {
            _sent.Enqueue((ConfigEvent.SourceReset)e);
            _events.Add(e);
        });
        return source;
    }

    private ConfigEvent.SourceReset Next()
    {
        Assert.True(_events.TryTake(out var e, Guard), "no event within the guard time");
        return Assert.IsType<ConfigEvent.SourceReset>(e);
    }

    /// <summary>Takes events until one holds exactly <paramref name="expected"/>; fails if none does in time.</summary>
    private ConfigEvent.SourceReset NextWith(params string[] expected)
    {
        var deadline = DateTime.UtcNow + Guard;
        var seen = new List<string>();
        while (_events.TryTake(out var e, Max(deadline - DateTime.UtcNow, TimeSpan.Zero)))
        {
            var reset = Assert.IsType<ConfigEvent.SourceReset>(e);
            if (Names(reset).SequenceEqual(expected))
            {
                return reset;
            }

            seen.Add(string.Join(",", Names(reset)));
        }

        Assert.Fail($"no event with [{string.Join(",", expected)}] in time; saw [{string.Join("] [", seen)}]; logged:\n{string.Join('\n', _log.Collector.GetSnapshot().Select(r => r.Message))}");
        return null!;
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private static string[] Names(ConfigEvent.SourceReset reset) =>
        [.. reset.Resources.Select(r => $"{r.Metadata.Name}:{((Service)r).Ports[0].Port}")];

    private ManifestError ErrorFor(ManifestFileSource source, string file) =>
        Assert.Single(source.Errors, e => e.Source == PathOf(file));

    private static void Run(string program, params string[] args)
    {
        using var process = Process.Start(program, args);
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
    }

    [Fact]
    public void Fifo_NamedYaml_IsReportedAsNotARegularFile_AndEditsToOtherFilesStillApply()
    {
        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a"));
        using var source = Start();
        Assert.Equal(["a:80"], Names(Next()));

        // Opening a FIFO for reading blocks until a writer comes; none ever does.
        Run("mkfifo", PathOf("pipe.yaml"));
        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a", 81));

        NextWith("a:81");
        Assert.Contains("not a regular file (a FIFO)", ErrorFor(source, "pipe.yaml").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SymlinkToDevZero_IsReportedWithoutBeingRead()
    {
        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a"));
        using var source = Start();
        Next();

        File.CreateSymbolicLink(PathOf("zero.yaml"), "/dev/zero");
        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a", 81));

        NextWith("a:81");
        Assert.Contains("not a regular file (a character device)", ErrorFor(source, "zero.yaml").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SymlinkLoop_IsReportedAsALoop_AndEditsStillApply()
    {
        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a"));
        using var source = Start();
        Next();

        File.CreateSymbolicLink(PathOf("loop1.yaml"), PathOf("loop2.yaml"));
        File.CreateSymbolicLink(PathOf("loop2.yaml"), PathOf("loop1.yaml"));
        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a", 81));

        NextWith("a:81");
        Assert.Contains("symbolic link loop", ErrorFor(source, "loop1.yaml").Message, StringComparison.Ordinal);
        Assert.Contains("symbolic link loop", ErrorFor(source, "loop2.yaml").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SymlinkToARegularFile_IsRead_AndALinkToNothingIsReported()
    {
        var elsewhere = Directory.CreateTempSubdirectory("fsm-target-");
        try
        {
            File.WriteAllText(Path.Combine(elsewhere.FullName, "b.yaml"), ServiceYaml("b"));
            File.CreateSymbolicLink(PathOf("b.yaml"), Path.Combine(elsewhere.FullName, "b.yaml"));
            File.CreateSymbolicLink(PathOf("dangling.yaml"), Path.Combine(elsewhere.FullName, "missing.yaml"));
            using var source = Start();

            Assert.Equal(["b:80"], Names(Next()));
            Assert.Contains("symbolic link to nothing", ErrorFor(source, "dangling.yaml").Message, StringComparison.Ordinal);
        }
        finally
        {
            elsewhere.Delete(recursive: true);
        }
    }

    [Fact]
    public void FileOverTheSizeCap_IsAManifestErrorNamingTheFileAndTheCap_AndItsPreviousObjectsStay()
    {
        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a"));
        File.WriteAllText(PathOf("big.yaml"), ServiceYaml("big"));
        using var source = Start(new ManifestFileSourceOptions { Settle = TimeSpan.FromMilliseconds(100), MaxFileSize = 4096 });
        Assert.Equal(["a:80", "big:80"], Names(Next()));

        File.WriteAllText(PathOf("big.yaml"), ServiceYaml("big", 81) + "\n# " + new string('x', 5000) + "\n");
        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a", 81));

        NextWith("a:81", "big:80");
        var error = ErrorFor(source, "big.yaml");
        Assert.Contains("over the limit of 4 KiB for one manifest file", error.Message, StringComparison.Ordinal);
        Assert.Contains(_log.Collector.GetSnapshot(), r => r.Message.Contains("big.yaml", StringComparison.Ordinal) && r.Message.Contains("4 KiB", StringComparison.Ordinal));
    }

    [Fact]
    public async Task FileRewrittenNonStop_DoesNotHoldBackAnEditToAnotherFile()
    {
        File.WriteAllText(PathOf("busy.yaml"), ServiceYaml("busy"));
        File.WriteAllText(PathOf("b.yaml"), ServiceYaml("b"));
        using var source = Start();
        Next();

        // A writer that never pauses as long as the settle time: a pure debounce would wait for it for ever.
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                File.WriteAllText(PathOf("busy.yaml"), ServiceYaml("busy", 100 + (i % 50)));
                await Task.Delay(20);
            }
        });
        try
        {
            await Task.Delay(300);
            File.WriteAllText(PathOf("b.yaml"), ServiceYaml("b", 99));

            var deadline = DateTime.UtcNow + Guard;
            while (true)
            {
                Assert.True(_events.TryTake(out var e, Max(deadline - DateTime.UtcNow, TimeSpan.Zero)), "the edit to b.yaml was held back while busy.yaml kept changing");
                if (Names((ConfigEvent.SourceReset)e).Contains("b:99"))
                {
                    break;
                }
            }

            Assert.False(writer.IsCompleted, "the writer was still writing when the edit arrived");
        }
        finally
        {
            await stop.CancelAsync();
            await writer;
        }
    }

    [Fact]
    public async Task ReadThatHangs_IsAbandonedForTheRound_Reported_AndHoldsBackNeitherOtherFilesNorDispose()
    {
        using var release = new ManualResetEventSlim(initialState: true);
        ManifestFile.Outcome Read(string file, long max)
        {
            if (file.EndsWith("hang.yaml", StringComparison.Ordinal))
            {
                release.Wait(); // a read on a hung network file system
            }

            return ManifestFile.Read(file, max);
        }

        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a"));
        File.WriteAllText(PathOf("hang.yaml"), ServiceYaml("h"));
        var options = new ManifestFileSourceOptions { Settle = TimeSpan.FromMilliseconds(100), ReadTimeout = TimeSpan.FromSeconds(1) };
        var source = Start(options, Read);
        Assert.Equal(["a:80", "h:80"], Names(Next()));

        release.Reset();
        File.WriteAllText(PathOf("hang.yaml"), ServiceYaml("h", 81));
        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a", 82));

        // The other file's edit applies; the hung file keeps what it held and is reported.
        NextWith("a:82", "h:80");
        Assert.Contains("did not finish", ErrorFor(source, "hang.yaml").Message, StringComparison.Ordinal);

        // Once the read can finish, the next change reads the file again.
        release.Set();
        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a", 83));
        NextWith("a:83", "h:81");

        // And a read hanging at shutdown does not hold up disposal.
        release.Reset();
        File.WriteAllText(PathOf("hang.yaml"), ServiceYaml("h", 84));
        await Task.Delay(500);
        await Task.Run(source.Dispose).WaitAsync(Guard);
        release.Set();
    }

    [Fact]
    public void ErrorsAndNotes_AreLoggedOncePerChange_NotOnEveryReload()
    {
        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a"));
        File.WriteAllText(PathOf("broken.yaml"), "apiVersion: v1\nkind: Service\nmetadata: { name: x }\nspec: [broken\n");
        File.WriteAllText(PathOf("other.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: cm }\n");
        Run("mkfifo", PathOf("pipe.yaml"));
        using var source = Start();
        Next();

        for (var port = 81; port <= 83; port++)
        {
            File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a", port));
            NextWith($"a:{port}");
        }

        var lines = _log.Collector.GetSnapshot().Select(r => r.Message).ToList();
        Assert.Single(lines, l => l.StartsWith("Manifest error:", StringComparison.Ordinal) && l.Contains("broken.yaml", StringComparison.Ordinal));
        Assert.Single(lines, l => l.StartsWith("Manifest error:", StringComparison.Ordinal) && l.Contains("pipe.yaml", StringComparison.Ordinal));
        Assert.Single(lines, l => l.StartsWith("Manifest note:", StringComparison.Ordinal) && l.Contains("other.yaml", StringComparison.Ordinal) && l.Contains("ConfigMap", StringComparison.Ordinal));

        // A change to the broken file that leaves it broken differently is reported again.
        File.WriteAllText(PathOf("broken.yaml"), "apiVersion: v1\nkind: Service\nmetadata: { name: x }\nspec:\n  ports: [{ port: eighty }]\n");
        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a", 84));
        NextWith("a:84");
        Assert.Equal(2, _log.Collector.GetSnapshot().Count(r => r.Message.StartsWith("Manifest error:", StringComparison.Ordinal) && r.Message.Contains("broken.yaml", StringComparison.Ordinal)));
    }

    [Fact]
    public void FileNameWithANewline_CannotForgeALogLine()
    {
        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a"));
        using var source = Start();
        Next();

        File.WriteAllText(PathOf("evil\n12:00:00.000 info: Forged line.yaml"), "spec: [broken\n");
        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a", 81));
        NextWith("a:81");

        var logged = Assert.Single(_log.Collector.GetSnapshot(), r => r.Message.Contains("Forged", StringComparison.Ordinal));
        Assert.DoesNotContain('\n', logged.Message);
        Assert.Contains("evil\\n12:00:00.000 info: Forged line.yaml", logged.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RenameOverAFile_Repeatedly_NeverSendsAResetWithoutItsObjects()
    {
        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a"));
        File.WriteAllText(PathOf("b.yaml"), ServiceYaml("b"));
        using var source = Start();
        Next();

        for (var port = 81; port <= 100; port++)
        {
            var temp = PathOf(".a.yaml.tmp");
            File.WriteAllText(temp, ServiceYaml("a", port));
            File.Move(temp, PathOf("a.yaml"), overwrite: true);
            Thread.Sleep(30);
        }

        NextWith("a:100", "b:80");
        AssertEverySentResetHeld("a", "b");
    }

    [Fact]
    public void ConfigMapStyleSymlinkSwap_IsPickedUp_AndNeverSendsAResetWithoutTheFilesObjects()
    {
        // What the kubelet does for a ConfigMap volume: the files are links into ..data, itself a link to a
        // timestamped folder; an update writes a new folder and renames a new ..data link over the old one.
        void WriteVersion(int version, int port)
        {
            var folder = PathOf($"..2026_{version:D2}");
            Directory.CreateDirectory(folder);
            File.WriteAllText(Path.Combine(folder, "gw.yaml"), ServiceYaml("gw", port));
            File.WriteAllText(Path.Combine(folder, "other.yaml"), ServiceYaml("other"));
        }

        WriteVersion(0, 80);
        Directory.CreateSymbolicLink(PathOf("..data"), "..2026_00");
        File.CreateSymbolicLink(PathOf("gw.yaml"), "..data/gw.yaml");
        File.CreateSymbolicLink(PathOf("other.yaml"), "..data/other.yaml");
        using var source = Start();
        Assert.Equal(["gw:80", "other:80"], Names(Next()));

        for (var version = 1; version <= 8; version++)
        {
            WriteVersion(version, 80 + version);
            Directory.CreateSymbolicLink(PathOf("..data_tmp"), $"..2026_{version:D2}");
            Run("mv", "-T", PathOf("..data_tmp"), PathOf("..data"));
            Directory.Delete(PathOf($"..2026_{version - 1:D2}"), recursive: true);
            Thread.Sleep(50);
        }

        NextWith("gw:88", "other:80");
        Assert.Empty(source.Errors);
        AssertEverySentResetHeld("gw", "other");
    }

    [Fact]
    public void SameObjectInTwoFiles_Differently_TheFirstFileWins_TheSecondIsAnError_AndTheResetStillReduces()
    {
        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("x", 80));
        File.WriteAllText(PathOf("b.yaml"), ServiceYaml("x", 81) + "\n---\n" + ServiceYaml("y"));
        File.WriteAllText(PathOf("c.yaml"), ServiceYaml("x", 80));
        using var source = Start();

        var reset = Next();
        Assert.Equal(["x:80", "y:80"], Names(reset));
        Assert.Contains($"defined again, differently (the definition in {PathOf("a.yaml")} is in force)", ErrorFor(source, "b.yaml").Message, StringComparison.Ordinal);
        Assert.DoesNotContain(source.Errors, e => e.Source == PathOf("c.yaml"));

        // What the pipeline does with it: one snapshot, no exception.
        Assert.Equal(2, ConfigSnapshot.Empty.Apply(reset).Resources.Count);
    }

    [Fact]
    public void FileDroppedLater_DefiningAServingObjectDifferently_DoesNotTakeItOver()
    {
        File.WriteAllText(PathOf("b.yaml"), ServiceYaml("x", 80));
        using var source = Start();
        Assert.Equal(["x:80"], Names(Next()));

        // Sorted first, but the definition in force stays until its own file changes it.
        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("x", 81));
        File.WriteAllText(PathOf("c.yaml"), ServiceYaml("c"));
        Assert.Equal(["x:80", "c:80"], Names(NextWith("x:80", "c:80")));
        Assert.Contains("defined again, differently", ErrorFor(source, "a.yaml").Message, StringComparison.Ordinal);

        File.WriteAllText(PathOf("b.yaml"), ServiceYaml("x", 82));
        NextWith("x:82", "c:80");
    }

    [Fact]
    public void Options_OutOfRange_AreRejectedNamingTheOption()
    {
        var e = Assert.Throws<ArgumentException>(() => new ManifestFileSource([_folder.FullName], new ManifestFileSourceOptions { MaxFileSize = 0 }));
        Assert.Contains("MaxFileSize", e.Message, StringComparison.Ordinal);

        e = Assert.Throws<ArgumentException>(() => new ManifestFileSource([_folder.FullName], new ManifestFileSourceOptions { Settle = TimeSpan.FromSeconds(2), MaxDelay = TimeSpan.FromSeconds(1) }));
        Assert.Contains("MaxDelay", e.Message, StringComparison.Ordinal);

        e = Assert.Throws<ArgumentException>(() => new ManifestFileSource([_folder.FullName], new ManifestFileSourceOptions { ReadTimeout = TimeSpan.Zero }));
        Assert.Contains("ReadTimeout", e.Message, StringComparison.Ordinal);
    }

    private void AssertEverySentResetHeld(params string[] names)
    {
        Assert.All(_sent, reset =>
        {
            var held = reset.Resources.Select(r => r.Metadata.Name).ToHashSet();
            Assert.All(names, n => Assert.Contains(n, held));
        });
    }
}
