using System.Diagnostics;
using System.Threading.Channels;

namespace FsmGateway.Kubernetes.Tests.FakeApi;

/// <summary>A fact that needs the real kubectl; skipped, with the reason, where /usr/bin/kubectl is absent.</summary>
public sealed class KubectlFactAttribute : FactAttribute
{
    public const string Path = "/usr/bin/kubectl";

    public KubectlFactAttribute()
    {
        if (!File.Exists(Path))
        {
            Skip = $"kubectl is not installed at {Path}";
        }
    }
}

/// <summary>Runs the real kubectl against a kubeconfig, in a private HOME and discovery cache.</summary>
public sealed class Kubectl : IDisposable
{
    private readonly DirectoryInfo _home = Directory.CreateTempSubdirectory("fake-kubectl-");

    public Kubectl(FsmGateway.Testing.Kubernetes.FakeApiServer server)
    {
        Kubeconfig = server.WriteKubeconfig(System.IO.Path.Combine(_home.FullName, "kubeconfig"));
    }

    public string Kubeconfig { get; }

    public string Home => _home.FullName;

    public async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(params string[] args)
    {
        var psi = new ProcessStartInfo(KubectlFactAttribute.Path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("--kubeconfig");
        psi.ArgumentList.Add(Kubeconfig);
        psi.ArgumentList.Add("--cache-dir");
        psi.ArgumentList.Add(System.IO.Path.Combine(_home.FullName, "cache"));
        psi.ArgumentList.Add("--request-timeout=20s");
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        psi.Environment["HOME"] = _home.FullName;
        psi.Environment.Remove("KUBECONFIG");
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"kubectl {string.Join(' ', args)} did not finish in 60 s");
        }
        return (process.ExitCode, await stdout, await stderr);
    }

    public async Task<string> RunOkAsync(params string[] args)
    {
        var (code, stdout, stderr) = await RunAsync(args);
        Assert.True(code == 0, $"kubectl {string.Join(' ', args)} exited {code}\nstdout: {stdout}\nstderr: {stderr}");
        return stdout;
    }

    public void Dispose() => _home.Delete(recursive: true);
}

/// <summary>Consumes a client watch in the background; events and errors become awaitable, with time bounds.</summary>
public sealed class WatchProbe<T> : IAsyncDisposable
{
    public static readonly TimeSpan Guard = TimeSpan.FromSeconds(10);

    private readonly Channel<(k8s.WatchEventType Type, T Object)> _events = Channel.CreateUnbounded<(k8s.WatchEventType, T)>();
    private readonly Channel<Exception> _errors = Channel.CreateUnbounded<Exception>();
    private readonly CancellationTokenSource _cts = new();
    private readonly Task _pump;

    public WatchProbe(Func<Action<Exception>, CancellationToken, IAsyncEnumerable<(k8s.WatchEventType, T)>> start)
    {
        _pump = Task.Run(async () =>
        {
            try
            {
                await foreach (var e in start(e => _errors.Writer.TryWrite(e), _cts.Token))
                {
                    _events.Writer.TryWrite(e);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                _errors.Writer.TryWrite(e);
            }
            catch (OperationCanceledException)
            {
            }
            finally
            {
                _events.Writer.TryComplete();
            }
        });
    }

    /// <summary>Completes when the watch stream has ended (cleanly or not).</summary>
    public Task Ended => _pump;

    public async Task<(k8s.WatchEventType Type, T Object)> NextAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? Guard);
        return await _events.Reader.ReadAsync(cts.Token);
    }

    /// <summary>The next event that is not a bookmark.</summary>
    public async Task<(k8s.WatchEventType Type, T Object)> NextChangeAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? Guard);
        while (true)
        {
            var e = await _events.Reader.ReadAsync(cts.Token);
            if (e.Item1 != k8s.WatchEventType.Bookmark)
            {
                return e;
            }
        }
    }

    /// <summary>True if an event arrives within <paramref name="within"/>.</summary>
    public async Task<bool> AnyEventAsync(TimeSpan within)
    {
        using var cts = new CancellationTokenSource(within);
        try
        {
            return await _events.Reader.WaitToReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>
    /// Takes every event already received, without waiting. (Not <see cref="AnyEventAsync"/> with a zero wait: a token
    /// cancelled from the start makes the channel report cancellation before it looks for an item.)
    /// </summary>
    public List<(k8s.WatchEventType Type, T Object)> Drain()
    {
        var events = new List<(k8s.WatchEventType Type, T Object)>();
        while (_events.Reader.TryRead(out var e))
        {
            events.Add(e);
        }

        return events;
    }

    public async Task<Exception> ErrorAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? Guard);
        return await _errors.Reader.ReadAsync(cts.Token);
    }

    public async Task EndedAsync(TimeSpan? timeout = null) => await _pump.WaitAsync(timeout ?? Guard);

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync();
        try
        {
            await _pump.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (TimeoutException)
        {
        }
        _cts.Dispose();
    }
}
