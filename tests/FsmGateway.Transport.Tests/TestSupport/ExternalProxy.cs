using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace FsmGateway.Transport.Tests.TestSupport;

/// <summary>
/// A real HAProxy or nginx process for the PROXY protocol tests: its configuration and every file it writes (pid,
/// logs, temp paths) in a temporary directory, listening on 127.0.0.1 ports the test chose, stopped by its PID.
/// </summary>
internal sealed class ExternalProxy : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();

    private ExternalProxy(string name, Process process, DirectoryInfo directory)
    {
        Name = name;
        _process = process;
        Directory = directory;
        process.OutputDataReceived += (_, e) => Add(e.Data);
        process.ErrorDataReceived += (_, e) => Add(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    /// <summary>"haproxy" or "nginx".</summary>
    public string Name { get; }

    /// <summary>The directory holding the configuration and everything the process writes.</summary>
    public DirectoryInfo Directory { get; }

    /// <summary>Standard output and error so far (HAProxy's log goes to standard output).</summary>
    public IReadOnlyList<string> Output => [.. _output];

    /// <summary>The full path of <paramref name="name"/> on PATH or in /usr/sbin, or null when it is not installed.</summary>
    /// <param name="name">The executable.</param>
    /// <returns>The path, or null.</returns>
    public static string? Find(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/sbin", "/usr/local/sbin"])
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);

    /// <summary>
    /// Starts HAProxy in the foreground with <paramref name="config"/> (its <c>global</c> section logs to standard
    /// output), and waits until <paramref name="port"/> accepts connections.
    /// </summary>
    /// <param name="config">The configuration; <c>{dir}</c> is replaced by the temporary directory.</param>
    /// <param name="port">A port the configuration binds on 127.0.0.1.</param>
    /// <returns>The running process.</returns>
    public static Task<ExternalProxy> StartHAProxyAsync(string config, int port) =>
        StartAsync("haproxy", config, port, static (exe, dir, file) => [exe, "-db", "-f", file]);

    /// <summary>
    /// Starts nginx in the foreground (no daemon, no worker processes) with <paramref name="config"/>, its prefix, error
    /// log and pid file in the temporary directory, and waits until <paramref name="port"/> accepts connections.
    /// </summary>
    /// <param name="config">The configuration; <c>{dir}</c> is replaced by the temporary directory.</param>
    /// <param name="port">A port the configuration binds on 127.0.0.1.</param>
    /// <param name="module">A dynamic module to load first, e.g. <see cref="NginxStreamModule"/>.</param>
    /// <returns>The running process.</returns>
    public static Task<ExternalProxy> StartNginxAsync(string config, int port, string? module = null) =>
        StartAsync(
            "nginx",
            $$"""
            {{(module is null ? string.Empty : $"load_module {module};")}}
            daemon off;
            master_process off;
            pid {dir}/nginx.pid;
            error_log {dir}/error.log info;
            events { worker_connections 256; }
            {{config}}
            """,
            port,
            static (exe, dir, file) => [exe, "-p", dir + "/", "-e", Path.Combine(dir, "error.log"), "-c", file]);

    /// <summary>The nginx <c>http</c> block's temp paths in the temporary directory (nginx's defaults need root).</summary>
    public const string NginxHttpTempPaths =
        "client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; fastcgi_temp_path {dir}/fastcgi; uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;";

    /// <summary>The dynamic stream module, where Debian's nginx keeps it.</summary>
    public const string NginxStreamModule = "/usr/lib/nginx/modules/ngx_stream_module.so";

    /// <summary>Waits until a line of output (or of the file <paramref name="file"/> in the directory) satisfies <paramref name="match"/>.</summary>
    /// <param name="match">What the line must satisfy.</param>
    /// <param name="what">What is waited for, for the failure message.</param>
    /// <param name="file">A file in <see cref="Directory"/> to read instead of the output, e.g. an access log.</param>
    /// <returns>The line.</returns>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, string what, string? file = null)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            var lines = file is null ? Output : ReadLines(Path.Combine(Directory.FullName, file));
            if (lines.FirstOrDefault(match) is { } line)
            {
                return line;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{Name} never logged {what}; its lines:\n{string.Join('\n', lines)}\noutput:\n{string.Join('\n', Output)}");
            }

            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(); // by PID: the process this test started
            }

            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
        }
        finally
        {
            _process.Dispose();
            Directory.Delete(recursive: true);
        }
    }

    private static async Task<ExternalProxy> StartAsync(string name, string config, int port, Func<string, string, string, string[]> command)
    {
        var exe = Find(name) ?? throw new InvalidOperationException($"{name} is not installed");
        var directory = System.IO.Directory.CreateTempSubdirectory($"fsm-{name}-");
        var file = Path.Combine(directory.FullName, name + ".conf");
        await File.WriteAllTextAsync(file, config.Replace("{dir}", directory.FullName, StringComparison.Ordinal) + "\n");
        var arguments = command(exe, directory.FullName, file);
        var start = new ProcessStartInfo(arguments[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = directory.FullName,
        };
        foreach (var argument in arguments.Skip(1))
        {
            start.ArgumentList.Add(argument);
        }

        var proxy = new ExternalProxy(name, Process.Start(start)!, directory);
        try
        {
            await proxy.WaitUntilListeningAsync(port);
            return proxy;
        }
        catch
        {
            await proxy.DisposeAsync();
            throw;
        }
    }

    private async Task WaitUntilListeningAsync(int port)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"{Name} exited with {_process.ExitCode.ToString(CultureInfo.InvariantCulture)} at start:\n{string.Join('\n', Output)}\n{ReadAll("error.log")}");
            }

            // A bound port answers a connect; nothing is sent, so the process sees an empty connection at most.
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await probe.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }
        }
    }

    private string ReadAll(string file) => string.Join('\n', ReadLines(Path.Combine(Directory.FullName, file)));

    private static IReadOnlyList<string> ReadLines(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        }
        catch (FileNotFoundException)
        {
            return [];
        }
    }

    private void Add(string? line)
    {
        if (line is not null)
        {
            _output.Enqueue(line);
        }
    }
}

/// <summary>A test that needs real HAProxy and nginx binaries; skipped, saying why, where either is missing.</summary>
internal sealed class ExternalProxyFactAttribute : FactAttribute
{
    public ExternalProxyFactAttribute(params string[] needs)
    {
        var missing = needs.Where(static n => ExternalProxy.Find(n) is null).ToList();
        if (needs.Contains("nginx") && ExternalProxy.Find("nginx") is not null && !File.Exists(ExternalProxy.NginxStreamModule))
        {
            missing.Add($"nginx's stream module ({ExternalProxy.NginxStreamModule})");
        }

        if (missing.Count > 0)
        {
            Skip = $"{string.Join(" and ", missing)} not installed (Debian packages haproxy, nginx, libnginx-mod-stream: apt-get install -y haproxy nginx libnginx-mod-stream; .ci/run does)";
        }
    }
}
