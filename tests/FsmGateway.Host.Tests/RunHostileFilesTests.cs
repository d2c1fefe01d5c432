using System.Globalization;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Text;
using System.Text.RegularExpressions;
using FsmGateway.Host.Tests.Support;

namespace FsmGateway.Host.Tests;

/// <summary>
/// <c>fsm-gateway run</c> on a folder that receives hostile files next to a good one: the real program in its own
/// process, a real listener relaying real bytes to a real backend. Nothing dropped may stop the listener, end the
/// process or stop a later edit from applying. <c>FSM_RUN_FUZZ_ROUNDS</c> (default 1) repeats the file-system drops and
/// <c>FSM_RUN_FUZZ_MUTANTS</c> (default 100) sets how many mutants, for a longer run.
/// </summary>
[UnsupportedOSPlatform("windows")]
public sealed class RunHostileFilesTests : IDisposable
{
    private readonly DirectoryInfo _config = Directory.CreateTempSubdirectory("fsm-hostile-run-");
    private readonly List<Socket> _sockets = [];

    public void Dispose()
    {
        foreach (var socket in _sockets)
        {
            socket.Dispose();
        }

        // Give back what a hostile drop took away, so the folder can be removed.
        foreach (var file in _config.EnumerateFileSystemInfos())
        {
            if (file.LinkTarget is null && file is FileInfo)
            {
                File.SetUnixFileMode(file.FullName, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
        }

        _config.Delete(recursive: true);
    }

    private string PathOf(string name) => Path.Combine(_config.FullName, name);

    private void Write(string file, string text)
    {
        var temp = PathOf("." + file + ".tmp");
        File.WriteAllText(temp, text);
        File.Move(temp, PathOf(file), overwrite: true);
    }

    /// <summary>
    /// Runs the gateway; as root, without the capabilities that let root read any file (as a non-root user runs it),
    /// so an unreadable file is really unreadable.
    /// </summary>
    private GatewayProcess StartGateway(params string[] extra)
    {
        string[] args = ["run", "--config", _config.FullName, "--admin-port", "0", "--drain-timeout", "5s", .. extra];
        return Environment.UserName == "root" && File.Exists("/usr/bin/setpriv")
            ? GatewayProcess.StartWrapped(["/usr/bin/setpriv", "--bounding-set", "-dac_override,-dac_read_search"], new Dictionary<string, string?>(), args)
            : GatewayProcess.Start(args);
    }

    private static void Run(string program, params string[] args)
    {
        using var process = System.Diagnostics.Process.Start(program, args);
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
    }

    /// <summary>The hostile drops, each a file-system special or content no reader should choke on, and what the log must then say of it.</summary>
    private List<(string Name, Action Drop, string? Reported)> HostileDrops(int round, int otherPort)
    {
        var r = round == 0 ? string.Empty : $"-{round}";
        var random = new Random(1234 + round);
        var garbage = new byte[4096];
        random.NextBytes(garbage);
        var half = Manifests.Gateway(("half", otherPort));
        return
        [
            ($"fifo{r}.yaml", () => Run("mkfifo", PathOf($"fifo{r}.yaml")), "not a regular file (a FIFO)"),
            ($"loop-a{r}.yaml", () =>
            {
                File.CreateSymbolicLink(PathOf($"loop-a{r}.yaml"), PathOf($"loop-b{r}.yaml"));
                File.CreateSymbolicLink(PathOf($"loop-b{r}.yaml"), PathOf($"loop-a{r}.yaml"));
            }, "symbolic link loop"),
            ($"zero{r}.yaml", () => File.CreateSymbolicLink(PathOf($"zero{r}.yaml"), "/dev/zero"), "not a regular file (a character device)"),
            ($"urandom{r}.yml", () => File.CreateSymbolicLink(PathOf($"urandom{r}.yml"), "/dev/urandom"), "not a regular file (a character device)"),
            ($"folder{r}.yaml", () => Directory.CreateSymbolicLink(PathOf($"folder{r}.yaml"), _config.FullName), null),
            ($"socket{r}.yaml", () =>
            {
                // Kept open: closing a bound socket removes its file.
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                _sockets.Add(socket);
                socket.Bind(new UnixDomainSocketEndPoint(PathOf($"socket{r}.yaml")));
            }, "not a regular file (a socket)"),
            ($"unreadable{r}.yaml", () =>
            {
                File.WriteAllText(PathOf($"unreadable{r}.yaml"), "apiVersion: v1\nkind: Service\nmetadata: { name: secret }\nspec: { ports: [{ port: 1 }] }\n");
                File.SetUnixFileMode(PathOf($"unreadable{r}.yaml"), UnixFileMode.None);
            }, "permission denied"),
            ($"empty{r}.yaml", () => File.WriteAllText(PathOf($"empty{r}.yaml"), string.Empty), null),
            ($"huge{r}.yaml", () =>
            {
                using var file = File.Create(PathOf($"huge{r}.yaml"));
                var line = Encoding.UTF8.GetBytes("# " + new string('x', 1021) + "\n");
                for (var i = 0; i < 50 * 1024; i++)
                {
                    file.Write(line);
                }
            }, "over the limit of 8 MiB for one manifest file"),
            ($"half{r}.yaml", () => File.WriteAllText(PathOf($"half{r}.yaml"), half[..(half.Length / 2)]), null),
            ($"garbage{r}.yaml", () => File.WriteAllBytes(PathOf($"garbage{r}.yaml"), garbage), null),
            ($"evil\n00:00:00.000 info: forged{r}.yaml", () => File.WriteAllText(PathOf($"evil\n00:00:00.000 info: forged{r}.yaml"), "spec: [broken\n"), "evil\\n00:00:00.000 info: forged"),
            ($"dup{r}.yaml", () => File.WriteAllText(PathOf($"dup{r}.yaml"), Manifests.RouteAndBackend(1)), "defined again, differently"),
        ];
    }

    [Fact]
    public async Task Run_HostileFilesDroppedNextToAGoodOne_NeverStopTheListenerOrTheProcess_AndAnEditStillApplies()
    {
        var rounds = int.TryParse(Environment.GetEnvironmentVariable("FSM_RUN_FUZZ_ROUNDS"), CultureInfo.InvariantCulture, out var n) && n > 0 ? n : 1;
        await using var backend = new EchoServer();
        var (port, added, other) = (Net.FreePort(), Net.FreePort(), Net.FreePort());
        Write("gateway.yaml", Manifests.Gateway(("tcp", port)));
        Write("route.yaml", Manifests.RouteAndBackend(backend.Port));
        await using var gateway = StartGateway();
        await gateway.WaitUntilReadyAsync();
        using var live = await Net.ConnectAsync(port);
        Assert.Equal("live", await Net.RoundTripAsync(live, "live"));

        var step = 0;
        for (var round = 0; round < rounds; round++)
        {
            foreach (var (name, drop, reported) in HostileDrops(round, other))
            {
                drop();

                // A broken marker written after the drop: once the log names it, a reload has seen the drop too.
                step++;
                File.WriteAllText(PathOf($"marker-{step}.yaml"), "spec: [broken\n");
                File.Delete(PathOf($"marker-{step - 1}.yaml"));
                await gateway.WaitForLineAsync($@"Manifest error: .*marker-{step}\.yaml");

                Assert.False(gateway.HasExited, $"the gateway exited after {name}:\n{gateway.Output}");
                await AssertServesAsync(gateway, port, live, step, name);
                if (reported is not null)
                {
                    // Waited for, not looked up: the reload that named the marker logs each file's error as it reads
                    // that file, in the folder's order, so this file's line may come a moment after the marker's.
                    await gateway.WaitForLineAsync("Manifest error: .*" + Regex.Escape(reported));
                }
            }
        }

        // No line was forged by a file name, and the reads were not repeated in the log on every reload.
        Assert.DoesNotContain(gateway.Output.Split('\n'), line => line.StartsWith("00:00:00.000 info: forged", StringComparison.Ordinal));
        Assert.Equal(rounds, gateway.Output.Split('\n').Count(line => line.Contains("not a regular file (a FIFO)", StringComparison.Ordinal)));

        // An edit to the good file still applies, and the live connection was never cut.
        Write("gateway.yaml", Manifests.Gateway(("tcp", port), ("added", added)));
        await Net.EventuallyAsync(async () => !await Net.IsRefusedAsync(added), $"port {added} serves after the edit");
        Assert.Equal("added", await Net.EchoOnceAsync(added, "added"));
        Assert.Equal("live end", await Net.RoundTripAsync(live, "live end"));

        // SIGTERM stops it, FIFOs and all.
        live.Shutdown(SocketShutdown.Both);
        Assert.Equal(0, await gateway.TerminateAsync());
    }

    /// <summary>
    /// The manifest fuzz's hostile specials and mutants (<see cref="ManifestMutator"/>, seed 14), dropped in batches.
    /// Manifests holding a Gateway are left out: their listeners would bind the samples' fixed ports on this machine.
    /// <c>FSM_RUN_FUZZ_MUTANTS</c> (default 100) sets how many mutants.
    /// </summary>
    [Fact]
    public async Task Run_HostileAndMutatedManifestsDroppedNextToAGoodOne_NeverStopTheListenerOrTheProcess_AndAnEditStillApplies()
    {
        var count = int.TryParse(Environment.GetEnvironmentVariable("FSM_RUN_FUZZ_MUTANTS"), CultureInfo.InvariantCulture, out var n) && n >= 0 ? n : 100;
        await using var backend = new EchoServer();
        var (port, added) = (Net.FreePort(), Net.FreePort());
        Write("gateway.yaml", Manifests.Gateway(("tcp", port)));
        Write("route.yaml", Manifests.RouteAndBackend(backend.Port));
        await using var gateway = StartGateway();
        await gateway.WaitUntilReadyAsync();
        using var live = await Net.ConnectAsync(port);
        Assert.Equal("live", await Net.RoundTripAsync(live, "live"));

        var valid = "apiVersion: v1\nkind: Service\nmetadata: { name: svc }\nspec:\n  ports:\n    - port: 8000\n";
        var drops = ManifestMutator.Specials(valid)
            .Select(special => (special.Name, Bytes: special.Bytes()))
            .Concat(MutantsWithoutGateways(count))
            .Where(d => !ServesAGateway(d.Bytes))
            .Chunk(5)
            .ToList();
        var step = 0;
        foreach (var batch in drops)
        {
            step++;
            var names = new List<string>();
            for (var i = 0; i < batch.Length; i++)
            {
                names.Add($"fuzz-{step}-{i}.yaml");
                File.WriteAllBytes(PathOf(names[^1]), batch[i].Bytes);
            }

            File.WriteAllText(PathOf($"marker-{step}.yaml"), "spec: [broken\n");
            File.Delete(PathOf($"marker-{step - 1}.yaml"));
            await gateway.WaitForLineAsync($@"Manifest error: .*marker-{step}\.yaml", TimeSpan.FromSeconds(60));

            var what = string.Join("; ", batch.Select(d => d.Name));
            Assert.False(gateway.HasExited, $"the gateway exited after {what}:\n{gateway.Output}");
            await AssertServesAsync(gateway, port, live, step, what);
            foreach (var name in names)
            {
                File.Delete(PathOf(name));
            }
        }

        Write("gateway.yaml", Manifests.Gateway(("tcp", port), ("added", added)));
        await Net.EventuallyAsync(async () => !await Net.IsRefusedAsync(added), $"port {added} serves after the edit");
        Assert.Equal("added", await Net.EchoOnceAsync(added, "added"));
        Assert.Equal("live end", await Net.RoundTripAsync(live, "live end"));
        Assert.DoesNotContain("   at ", gateway.Output, StringComparison.Ordinal);
        live.Shutdown(SocketShutdown.Both);
        Assert.Equal(0, await gateway.TerminateAsync());
    }

    /// <summary>
    /// A new connection and the live one both still relay. Should either fail, the message says what else was true at
    /// that moment (does a second new connection work, does the live one, what the gateway printed), so that a failure
    /// seen once can be told apart: the gateway stalled, one connection lost, or the test's own backend slow.
    /// </summary>
    private static async Task AssertServesAsync(GatewayProcess gateway, int port, Socket live, int step, string after)
    {
        var started = DateTime.UtcNow;
        try
        {
            Assert.Equal($"new {step}", await Net.EchoOnceAsync(port, $"new {step}"));
            Assert.Equal($"live {step}", await Net.RoundTripAsync(live, $"live {step}"));
        }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException)
        {
            var failedAfter = DateTime.UtcNow - started;
            var retry = await Describe(() => Net.EchoOnceAsync(port, "retry"));
            var liveAgain = await Describe(() => Net.RoundTripAsync(live, "again"));
            Assert.Fail(
                $"step {step} (after {after}): relaying failed after {failedAfter.TotalSeconds:0.0} s with {e.GetType().Name}: {e.Message}; " +
                $"then a new connection: {retry}; the live one: {liveAgain}; gateway exited: {gateway.HasExited}; output:\n{gateway.Output}");
        }

        static async Task<string> Describe(Func<Task<string>> attempt)
        {
            var at = DateTime.UtcNow;
            try
            {
                return $"'{await attempt()}' in {(DateTime.UtcNow - at).TotalSeconds:0.0} s";
            }
            catch (Exception e)
            {
                return $"{e.GetType().Name} ({e.Message}) after {(DateTime.UtcNow - at).TotalSeconds:0.0} s";
            }
        }
    }

    private static IEnumerable<(string Name, byte[] Bytes)> MutantsWithoutGateways(int count)
    {
        var mutator = new ManifestMutator(14, ManifestMutator.RepositorySeeds());
        for (var i = 0; i < count; i++)
        {
            var mutant = mutator.Next();
            yield return (mutant.Description, mutant.Bytes);
        }
    }

    /// <summary>Whether the bytes could define a Gateway (whose listeners would bind real ports).</summary>
    private static bool ServesAGateway(byte[] bytes) =>
        System.Text.RegularExpressions.Regex.IsMatch(Encoding.UTF8.GetString(bytes), @"kind\W*Gateway(?!Class)");

    [Fact]
    public async Task Run_FifoInTheFolderAtStart_StillServesTheGoodFile_AndSigtermStops()
    {
        await using var backend = new EchoServer();
        var port = Net.FreePort();
        Write("gateway.yaml", Manifests.Gateway(("tcp", port)));
        Write("route.yaml", Manifests.RouteAndBackend(backend.Port));
        Run("mkfifo", PathOf("pipe.yaml"));
        await using var gateway = StartGateway();

        await gateway.WaitUntilReadyAsync();

        Assert.Equal("hello", await Net.EchoOnceAsync(port, "hello"));
        Assert.Contains("pipe.yaml: not a regular file (a FIFO)", gateway.Output, StringComparison.Ordinal);
        Assert.Equal(0, await gateway.TerminateAsync());
    }

    [Fact]
    public async Task Run_SkippedKindAndUnknownField_AreReportedInTheLog_OncePerChange()
    {
        await using var backend = new EchoServer();
        var port = Net.FreePort();
        Write("gateway.yaml", Manifests.Gateway(("tcp", port)));
        Write("route.yaml", Manifests.RouteAndBackend(backend.Port).Replace("    - name: gw\n", "    - name: gw\n      sectionNmae: tcp\n", StringComparison.Ordinal));
        Write("extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: settings }\n");
        await using var gateway = StartGateway();
        await gateway.WaitUntilReadyAsync();
        await gateway.WaitForLineAsync(@"Manifest note: .*extra\.yaml: document 1 \(line \d+\): skipped v1 ConfigMap settings");
        await gateway.WaitForLineAsync(@"Manifest note: .*route\.yaml: document 1 \(line \d+\): spec\.parentRefs\[0\]\.sectionNmae: unknown field");

        // Other edits re-read the folder, but the unchanged notes are not repeated.
        Write("gateway.yaml", Manifests.Gateway(("tcp", port)) + "\n# touched\n");
        Write("marker.yaml", "spec: [broken\n");
        await gateway.WaitForLineAsync(@"Manifest error: .*marker\.yaml");
        Assert.Single(gateway.Output.Split('\n'), line => line.Contains("Manifest note:", StringComparison.Ordinal) && line.Contains("ConfigMap", StringComparison.Ordinal));
        Assert.Single(gateway.Output.Split('\n'), line => line.Contains("Manifest note:", StringComparison.Ordinal) && line.Contains("sectionNmae", StringComparison.Ordinal));
        Assert.Equal("still", await Net.EchoOnceAsync(port, "still"));
    }

    [Fact]
    public async Task Run_FileOverMaxManifestSize_IsReportedNamingTheFileAndTheCap()
    {
        await using var backend = new EchoServer();
        var port = Net.FreePort();
        Write("gateway.yaml", Manifests.Gateway(("tcp", port)));
        Write("route.yaml", Manifests.RouteAndBackend(backend.Port) + "\n# " + new string('x', 3000) + "\n");
        await using var gateway = StartGateway("--max-manifest-size", "2KiB");

        await gateway.WaitForLineAsync(@"Manifest error: .*route\.yaml: the file is \d+ bytes, over the limit of 2 KiB for one manifest file");
    }

    [Fact]
    public async Task Run_BadMaxManifestSize_ExitsOneNamingTheOption()
    {
        await using var gateway = GatewayProcess.Start("run", "--max-manifest-size", "lots", "--admin-port", "0");

        Assert.Equal(1, await gateway.WaitForExitAsync());
        Assert.Contains("--max-manifest-size: 'lots' is not a size", gateway.Output, StringComparison.Ordinal);
    }
}
