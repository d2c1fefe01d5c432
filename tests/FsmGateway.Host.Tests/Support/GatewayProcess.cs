using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace FsmGateway.Host.Tests.Support;

/// <summary>The real <c>fsm-gateway</c> in its own process, as a user runs it; stopped with a real SIGTERM.</summary>
internal sealed partial class GatewayProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();
    private readonly SemaphoreSlim _lines = new(0);

    private GatewayProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => Record(e.Data);
        process.ErrorDataReceived += (_, e) => Record(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Output => string.Join('\n', _output);

    public int Id => _process.Id;

    public Uri? AdminUri { get; private set; }

    public bool HasExited => _process.HasExited;

    public static GatewayProcess Start(params string[] args) => Start(new Dictionary<string, string?>(), args);

    /// <summary>Starts the process with <paramref name="environment"/> added to (or, with a null value, removed from) the test's environment.</summary>
    public static GatewayProcess Start(IReadOnlyDictionary<string, string?> environment, params string[] args) =>
        StartWrapped([], environment, args);

    /// <summary>Starts the gateway through <paramref name="wrapper"/> (e.g. <c>setpriv</c>), which must exec it.</summary>
    public static GatewayProcess StartWrapped(string[] wrapper, IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        var (program, prefix) = HostCommand.For(args);
        var info = new ProcessStartInfo(wrapper.Length > 0 ? wrapper[0] : program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (name, value) in environment)
        {
            if (value is null)
            {
                info.Environment.Remove(name);
            }
            else
            {
                info.Environment[name] = value;
            }
        }

        if (wrapper.Length > 0)
        {
            foreach (var arg in wrapper[1..])
            {
                info.ArgumentList.Add(arg);
            }

            info.ArgumentList.Add(program);
        }

        foreach (var arg in (string[])[.. prefix, .. args])
        {
            info.ArgumentList.Add(arg);
        }

        return new GatewayProcess(Process.Start(info)!);
    }

    /// <summary>Waits until a line matching <paramref name="pattern"/> has been printed.</summary>
    public async Task<string> WaitForLineAsync(string pattern, TimeSpan? timeout = null)
    {
        var regex = new Regex(pattern);
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            var found = _output.FirstOrDefault(regex.IsMatch);
            if (found is not null)
            {
                return found;
            }

            if (_process.HasExited && !_lines.Wait(0))
            {
                throw new InvalidOperationException($"the gateway exited ({_process.ExitCode}) before printing /{pattern}/:\n{Output}");
            }

            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException($"no line matching /{pattern}/ within the time allowed:\n{Output}");
            }

            await _lines.WaitAsync(left < TimeSpan.FromMilliseconds(200) ? left : TimeSpan.FromMilliseconds(200));
        }
    }

    public async Task WaitUntilReadyAsync()
    {
        await WaitForAdminAsync();
        await WaitForLineAsync("Gateway ready");
    }

    /// <summary>Waits until the admin endpoints serve, and sets <see cref="AdminUri"/>.</summary>
    public async Task WaitForAdminAsync()
    {
        var admin = await WaitForLineAsync("Admin endpoints on ");
        AdminUri = new Uri(AdminUrl().Match(admin).Value);
    }

    /// <summary>Waits until the separate metrics port serves (<c>--metrics-port</c>) and returns its <c>/metrics</c> URL.</summary>
    public async Task<Uri> WaitForMetricsAsync()
    {
        var line = await WaitForLineAsync("Metrics on ");
        return new Uri(AdminUrl().Match(line).Value);
    }

    /// <summary>How many lines printed so far match <paramref name="pattern"/>.</summary>
    public int CountLines(string pattern)
    {
        var regex = new Regex(pattern);
        return _output.Count(regex.IsMatch);
    }

    /// <summary>Sends SIGTERM, as Kubernetes and systemd do, and waits for the exit code.</summary>
    private int _disposed;

    public async Task<int> TerminateAsync(TimeSpan? timeout = null)
    {
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        return await WaitForExitAsync(timeout);
    }

    public async Task<int> WaitForExitAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    /// <summary>Kills the process (SIGKILL) unless it exited; a second call does nothing, so a test may kill a process early that <c>await using</c> also disposes.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        _lines.Dispose();
    }

    private void Record(string? line)
    {
        if (line is not null)
        {
            _output.Enqueue(line);
            _lines.Release();
        }
    }

    [GeneratedRegex(@"http://[^ ,]+")]
    private static partial Regex AdminUrl();
}
