using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace FsmGateway.Host.Tests.Support;

/// <summary>A real Prometheus (the Debian package's binary) scraping one target every second, queried over its HTTP API.</summary>
internal sealed class PrometheusServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly DirectoryInfo _data;
    private readonly HttpClient _http;

    private PrometheusServer(Process process, DirectoryInfo data, Uri api)
    {
        _process = process;
        _data = data;
        _http = new HttpClient { BaseAddress = api, Timeout = TimeSpan.FromSeconds(10) };
    }

    public static PrometheusServer Start(string binary, Uri target)
    {
        var data = Directory.CreateTempSubdirectory("fsm-prometheus-");
        var config = Path.Combine(data.FullName, "prometheus.yml");
        File.WriteAllText(config, $"""
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
            scrape_configs:
              - job_name: fsm-gateway
                metrics_path: {target.AbsolutePath}
                static_configs:
                  - targets: ["{target.Authority}"]
            """);
        var port = Net.FreePort();
        var info = new ProcessStartInfo(binary)
        {
            ArgumentList =
            {
                $"--config.file={config}",
                $"--storage.tsdb.path={Path.Combine(data.FullName, "tsdb")}",
                $"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var process = Process.Start(info)!;
        process.OutputDataReceived += static (_, _) => { };
        process.ErrorDataReceived += static (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new PrometheusServer(process, data, new Uri($"http://127.0.0.1:{port}/"));
    }

    /// <summary>
    /// Waits until Prometheus answers queries: it listens before its storage is open and answers 503 until then, so a
    /// query sent as soon as the port accepts fails on a busy machine.
    /// </summary>
    public Task WaitUntilReadyAsync() => Net.EventuallyAsync(
        async () =>
        {
            try
            {
                using var response = await _http.GetAsync(new Uri("-/ready", UriKind.Relative));
                return response.IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false; // not listening yet
            }
        },
        "Prometheus is ready",
        TimeSpan.FromSeconds(60));

    /// <summary>The instant vector of <paramref name="promql"/>: each series' labels and value.</summary>
    public async Task<IReadOnlyList<(IReadOnlyDictionary<string, string> Labels, double Value)>> QueryAsync(string promql)
    {
        using var response = await _http.GetAsync(new Uri("api/v1/query?query=" + Uri.EscapeDataString(promql), UriKind.Relative));
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"Prometheus answered {(int)response.StatusCode} to {promql}: {body}");
        }

        using var json = JsonDocument.Parse(body);
        var result = new List<(IReadOnlyDictionary<string, string>, double)>();
        foreach (var series in json.RootElement.GetProperty("data").GetProperty("result").EnumerateArray())
        {
            var labels = series.GetProperty("metric").EnumerateObject().ToDictionary(static p => p.Name, static p => p.Value.GetString()!);
            var value = series.GetProperty("value")[1].GetString()!;
            result.Add((labels, value == "+Inf" ? double.PositiveInfinity : double.Parse(value, NumberStyles.Float, CultureInfo.InvariantCulture)));
        }

        return result;
    }

    /// <summary>The single value of a scalar-like query (a <c>sum(...)</c>), or null when it has no series (yet).</summary>
    public async Task<double?> ValueAsync(string promql) => (await QueryAsync(promql)) switch
    {
        [] => null,
        [var one] => one.Value,
        var many => throw new InvalidOperationException($"{promql} has {many.Count} series"),
    };

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        _http.Dispose();
        try
        {
            _data.Delete(recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a temp folder.
        }
    }
}

/// <summary>A fact that needs the <c>prometheus</c> binary (the Debian package, which <c>.ci/run</c> installs); skipped with the reason otherwise.</summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class PrometheusFactAttribute : FactAttribute
{
    public PrometheusFactAttribute()
    {
        if (ExternalTools.Find("prometheus") is null)
        {
            Skip = "the prometheus binary is not on PATH (install the Debian package: apt-get install -y prometheus; .ci/run does)";
        }
    }
}
