using System.CommandLine;
using FsmGateway.Resources;
using FsmGateway.Transport.Proxy;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Host.Cli;

/// <summary>The options every serving mode (<c>run</c>, <c>controller</c>, <c>gateway</c>) shares: admin endpoints, timeouts, logging.</summary>
internal sealed class ServeOptions
{
    private readonly Option<string> _controllerName = new(CommandLineNames.ControllerName) { Description = "The controller name whose GatewayClasses are ours.", DefaultValueFactory = _ => GatewayApi.DefaultControllerName };
    private readonly Option<string> _adminAddress = new(CommandLineNames.AdminAddress) { Description = "Address of the admin endpoints (/healthz, /readyz, /status).", DefaultValueFactory = _ => "127.0.0.1" };
    private readonly Option<int> _adminPort = new(CommandLineNames.AdminPort) { Description = "Port of the admin endpoints; 0 picks a free one.", DefaultValueFactory = _ => 9901 };
    private readonly Option<string> _drainTimeout = new(CommandLineNames.DrainTimeout) { Description = "How long open connections may finish on shutdown or listener removal (e.g. 30s, 500ms).", DefaultValueFactory = _ => "30s" };
    private readonly Option<string> _idleTimeout = new("--idle-timeout") { Description = "Close connections idle this long (e.g. 1h); 0 for never.", DefaultValueFactory = _ => "1h" };
    private readonly Option<string> _connectTimeout = new("--connect-timeout") { Description = "Upstream connect timeout per attempt.", DefaultValueFactory = _ => "5s" };
    private readonly Option<string?> _metricsAddress = new("--metrics-address") { Description = "Address of a separate port that serves /metrics only (needs --metrics-port); the admin address by default." };
    private readonly Option<int?> _metricsPort = new("--metrics-port") { Description = "Serve /metrics also on this port, and nothing else there (so it can be open to the cluster while /status stays local); 0 picks a free one. Off by default: /metrics is on the admin port." };
    private readonly Option<bool> _noMetrics = new("--no-metrics") { Description = "Serve no /metrics and subscribe no exporter to the instruments: for when nothing scrapes, or to measure what metrics cost." };
    private readonly Option<bool> _endpointMetrics = new("--endpoint-metrics") { Description = "Also export per-endpoint metrics on /metrics (open connections, passive health, ejections; one series per backend endpoint). Off by default." };
    private readonly Option<string> _transport = new("--transport") { Description = "How connections are accepted and relayed: linux (splice for bulk data, SO_REUSEPORT listener shards; Linux only), sockets (portable .NET sockets), or auto (linux on Linux, sockets elsewhere).", HelpName = "auto|sockets|linux", DefaultValueFactory = _ => "auto" };
    private readonly Option<int?> _listenerShards = new("--listener-shards") { Description = "With the linux transport, SO_REUSEPORT sockets (each with its own accept loop) per listening endpoint. Default: one per processor the process may use." };
    private readonly Option<LogLevel> _logLevel = new("--log-level") { Description = "Minimum log level.", DefaultValueFactory = _ => LogLevel.Information };
    private readonly Option<string> _logFormat = new("--log-format") { Description = "Log lines as text (one line each) or as JSON objects (one a line, with EventId, LogLevel, Category, Message, State and a UTC Timestamp).", HelpName = "json|text", DefaultValueFactory = _ => "text" };

    public ServeOptions()
    {
        // Checked while parsing, so a bad value is an error naming the option (exit 1), never an exception later.
        _adminPort.Validators.Add(static result =>
        {
            if (result.GetValueOrDefault<int>() is var port and (< 0 or > 65535))
            {
                result.AddError($"--admin-port: {port} is not a port (1-65535, or 0 for a free one)");
            }
        });
        _logFormat.Validators.Add(static result =>
        {
            if (result.GetValueOrDefault<string>() is var format && format is not ("json" or "text"))
            {
                result.AddError($"--log-format: '{LogText.Escape(format ?? string.Empty)}' is not a log format (json or text)");
            }
        });
        _transport.Validators.Add(static result =>
        {
            if (result.GetValueOrDefault<string>() is var transport && transport is not ("auto" or "sockets" or "linux"))
            {
                result.AddError($"--transport: '{LogText.Escape(transport ?? string.Empty)}' is not a transport (auto, sockets or linux)");
            }
            else if (transport == "linux" && !OperatingSystem.IsLinux())
            {
                result.AddError("--transport: linux runs on Linux only; use auto or sockets");
            }
        });
        _listenerShards.Validators.Add(static result =>
        {
            if (result.GetValueOrDefault<int?>() is { } shards and (< 1 or > 1024))
            {
                result.AddError($"--listener-shards: {shards} is out of range (1 to 1024)");
            }
        });
        _controllerName.Validators.Add(static result =>
        {
            if (string.IsNullOrWhiteSpace(result.GetValueOrDefault<string>()))
            {
                result.AddError("--controller-name: must not be empty");
            }
        });
    }

    public void AddTo(Command command)
    {
        foreach (var option in (Option[])[_controllerName, _adminAddress, _adminPort, _drainTimeout, _idleTimeout, _connectTimeout, _metricsAddress, _metricsPort, _noMetrics, _endpointMetrics, _transport, _listenerShards, _logLevel, _logFormat])
        {
            command.Options.Add(option);
        }
    }

    /// <summary>Reads the values; throws <see cref="ArgumentException"/> naming the option when one is malformed.</summary>
    public ServeSettings Read(ParseResult parse)
    {
        var metricsPort = parse.GetValue(_metricsPort);
        if (metricsPort is < 0 or > 65535)
        {
            throw new ArgumentException($"{_metricsPort.Name}: '{metricsPort}' is not a port (0 to 65535)");
        }

        var metricsAddress = parse.GetValue(_metricsAddress);
        if (metricsAddress is not null && metricsPort is null)
        {
            throw new ArgumentException($"{_metricsAddress.Name}: '{metricsAddress}' needs {_metricsPort.Name} too");
        }

        var noMetrics = parse.GetValue(_noMetrics);
        if (noMetrics && (metricsPort is not null || metricsAddress is not null))
        {
            throw new ArgumentException($"{_noMetrics.Name}: cannot be combined with {(metricsPort is not null ? _metricsPort.Name : _metricsAddress.Name)}");
        }

        var endpointMetrics = parse.GetValue(_endpointMetrics);
        if (noMetrics && endpointMetrics)
        {
            throw new ArgumentException($"{_noMetrics.Name}: cannot be combined with {_endpointMetrics.Name}");
        }

        return new ServeSettings(
            parse.GetValue(_controllerName)!,
            parse.GetValue(_adminAddress)!,
            parse.GetValue(_adminPort),
            DurationParser.Read(parse, _drainTimeout),
            DurationParser.Read(parse, _idleTimeout),
            DurationParser.Read(parse, _connectTimeout),
            parse.GetValue(_logLevel))
        {
            MetricsAddress = metricsAddress,
            MetricsPort = metricsPort,
            Metrics = !noMetrics,
            LogFormat = parse.GetValue(_logFormat) == "json" ? LogFormat.Json : LogFormat.Text,
            EndpointMetrics = endpointMetrics,
            Transport = parse.GetValue(_transport) switch
            {
                "linux" => ProxyTransport.Linux,
                "sockets" => ProxyTransport.Sockets,
                _ => ProxyTransport.Auto,
            },
            ListenerShards = parse.GetValue(_listenerShards),
        };
    }
}

/// <summary>The shared serving settings, parsed.</summary>
internal sealed record ServeSettings(
    string ControllerName,
    string AdminAddress,
    int AdminPort,
    TimeSpan DrainTimeout,
    TimeSpan IdleTimeout,
    TimeSpan ConnectTimeout,
    LogLevel LogLevel)
{
    /// <summary>The address of the separate metrics port; the admin address when null.</summary>
    public string? MetricsAddress { get; init; }

    /// <summary>The separate metrics port; none when null (then <c>/metrics</c> is on the admin port only).</summary>
    public int? MetricsPort { get; init; }

    /// <summary>Whether <c>/metrics</c> is served and the instruments record (<c>--no-metrics</c> turns both off).</summary>
    public bool Metrics { get; init; } = true;

    /// <summary>Whether <c>/metrics</c> carries the per-endpoint series (<c>--endpoint-metrics</c>).</summary>
    public bool EndpointMetrics { get; init; }

    /// <summary>The transport (<c>--transport</c>).</summary>
    public ProxyTransport Transport { get; init; }

    /// <summary>Listening sockets per endpoint with the Linux transport (<c>--listener-shards</c>); one per processor when null.</summary>
    public int? ListenerShards { get; init; }

    /// <summary>How log lines are written.</summary>
    public LogFormat LogFormat { get; init; }
}

/// <summary>The console log's format (<c>--log-format</c>).</summary>
internal enum LogFormat
{
    /// <summary>One line of text per entry: time, level, category and event id, message.</summary>
    Text,

    /// <summary>One JSON object per line (Microsoft.Extensions.Logging's JSON console formatter).</summary>
    Json,
}
