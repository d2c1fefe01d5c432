using System.Diagnostics.Metrics;
using System.Net;
using FsmGateway.Routing;
using FsmGateway.Transport.AccessLog;
using FsmGateway.Transport.Connections;
using FsmGateway.Transport.Health;
using FsmGateway.Transport.LoadBalancing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace FsmGateway.Transport.Proxy;

/// <summary>
/// The data plane: applies routing tables as diffs and relays connections. An unchanged listener keeps its sockets and
/// connections; a new one starts accepting; a removed one stops accepting and its connections drain up to
/// <see cref="ProxyOptions.DrainTimeout"/>. Endpoint and route changes reach new connections only.
/// </summary>
/// <remarks>
/// The work is split along its responsibilities: the <see cref="ListenerSet"/> binds, diffs and drains listeners; the
/// <see cref="ConnectionHandler"/> picks, connects, retries and relays one connection; the <see cref="ConnectionRegistry"/>
/// holds every connection and its heartbeat enforces their deadlines; the <see cref="EndpointRegistry"/> keeps each
/// endpoint's health and connection count across routing tables.
/// </remarks>
public sealed class GatewayProxy : IAsyncDisposable
{
    private readonly ProxyOptions _options;
    private readonly ProxyMetrics _metrics;
    private readonly AccessLogWriter? _accessLog;
    private readonly SemaphoreSlim _applyLock = new(1, 1);
    private readonly EndpointRegistry _endpoints;
    private readonly ActiveHealthProber _prober;
    private readonly TimeProvider _time;
    private readonly PassiveHealthSettings _passiveHealth;
    private readonly LoadBalancingPolicyRegistry _policies;
    private readonly GateRegistry _gates = new();
    private readonly ConnectionRegistry _connections;
    private readonly ConnectionHandler _handler;
    private readonly ListenerSet _listeners;
    private bool _stopped;
    private int _disposed;

    /// <summary>Creates the proxy.</summary>
    /// <param name="listenerFactory">Binds listening sockets.</param>
    /// <param name="connector">Opens upstream connections.</param>
    /// <param name="policies">The registered load-balancing policies; <see cref="ProxyOptions.LoadBalancingPolicy"/> names the one used.</param>
    /// <param name="options">Timeouts and limits.</param>
    /// <param name="timeProvider">The clock for timeouts and limits.</param>
    /// <param name="logger">Where to log.</param>
    /// <param name="meterFactory">Creates the <c>FsmGateway.Transport</c> meter; a private meter when null.</param>
    /// <exception cref="ArgumentException">No registered policy has the configured name.</exception>
    /// <exception cref="OptionsValidationException">An option is out of range (a buffer of 0 bytes, a timeout of 0).</exception>
    public GatewayProxy(
        IListenerFactory listenerFactory,
        IUpstreamConnector connector,
        IEnumerable<ILoadBalancingPolicy> policies,
        IOptions<ProxyOptions> options,
        TimeProvider timeProvider,
        ILogger<GatewayProxy>? logger = null,
        IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(listenerFactory);
        ArgumentNullException.ThrowIfNull(connector);
        ArgumentNullException.ThrowIfNull(policies);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        _options = options.Value;

        // Through DI the options were validated already; built by hand (CreateDefault, Options.Create), they are here.
        if (ProxyOptionsValidator.Instance.Validate(Options.DefaultName, _options) is { Failed: true } invalid)
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(ProxyOptions), invalid.Failures);
        }

        try
        {
            _policies = new LoadBalancingPolicyRegistry(policies, _options.LoadBalancingPolicy);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException(e.Message, nameof(options), e);
        }

        ILogger log = logger ?? NullLogger<GatewayProxy>.Instance;
        _metrics = new ProxyMetrics(meterFactory);
        _accessLog = _options.AccessLog.Destination is null ? null : new AccessLogWriter(_options.AccessLog, timeProvider, log, _metrics);
        _time = timeProvider;
        _prober = new ActiveHealthProber(timeProvider, log, _metrics);
        _endpoints = new EndpointRegistry(timeProvider, _prober);
        _passiveHealth = PassiveHealthSettings.From(_options);
        if (connector is Linux.LinuxTransport linux)
        {
            _metrics.ObserveSplice(linux);
        }

        if (_options.EndpointMetrics)
        {
            _metrics.ObserveEndpoints(_endpoints);
        }

        _connections = new ConnectionRegistry(timeProvider, log, ShortestDeadline([]));
        _handler = new ConnectionHandler(connector, _options, _connections, _metrics, _accessLog, timeProvider, log);
        _listeners = new ListenerSet(listenerFactory, _handler, _connections, NewModel, _options.DrainTimeout, timeProvider, log);
    }

    /// <summary>
    /// Creates a proxy on the transport <see cref="ProxyOptions.Transport"/> selects (by default the Linux transport on
    /// Linux, plain .NET sockets elsewhere) with round-robin endpoint choice.
    /// </summary>
    /// <param name="options">Timeouts and limits; defaults when null.</param>
    /// <param name="timeProvider">The clock; the system clock when null.</param>
    /// <param name="logger">Where to log.</param>
    /// <returns>The proxy.</returns>
    public static GatewayProxy CreateDefault(ProxyOptions? options = null, TimeProvider? timeProvider = null, ILogger<GatewayProxy>? logger = null)
    {
        options ??= new ProxyOptions();
        if (ProxyOptionsValidator.Instance.Validate(Options.DefaultName, options) is { Failed: true } invalid)
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(ProxyOptions), invalid.Failures);
        }

        var transport = TransportSelection.Create(options);
        return new GatewayProxy(transport.Listeners, transport.Connector, [], Options.Create(options), timeProvider ?? TimeProvider.System, logger);
    }

    /// <summary>The endpoints bound now, across all listeners.</summary>
    public IReadOnlyList<EndPoint> BoundEndPoints => _listeners.BoundEndPoints;

    /// <summary>The client connections open now, across all listeners, including draining ones.</summary>
    public int ActiveConnections => _handler.ActiveConnections;

    /// <summary>The active health prober (for tests).</summary>
    internal ActiveHealthProber Prober => _prober;

    /// <summary>
    /// Every endpoint being served and its health now: active probe results, passive ejections, open connections;
    /// ordered by backend, address and port. A moment's snapshot, safe to call from any thread.
    /// </summary>
    /// <returns>One report per endpoint of every backend a serving route names.</returns>
    public IReadOnlyList<EndpointHealthReport> GetEndpointHealth()
    {
        var now = _time.GetTimestamp();
        var utc = _time.GetUtcNow();
        DateTimeOffset At(long timestamp) => utc + _time.GetElapsedTime(now, timestamp);
        var reports = new List<EndpointHealthReport>();
        foreach (var state in _endpoints.Endpoints)
        {
            var ejected = state.IsEjected(now);
            var active = state.Active is { IsRetired: false } probed
                ? new ActiveHealthReport(
                    probed.Check.Protocol == Routing.HealthProbeProtocol.Http ? "HTTP" : "TCP",
                    probed.IsUp,
                    probed.LastProbeAt is 0 ? null : At(probed.LastProbeAt),
                    probed.LastProbeAt is 0 ? null : probed.LastPassed,
                    probed.LastError,
                    probed.ConsecutiveFailures,
                    probed.ConsecutiveSuccesses)
                : null;
            var passive = new PassiveHealthReport(ejected, ejected ? At(state.EjectedUntil) : null, state.EjectionReason, state.ConsecutiveFailures, state.Ejections, state.Failures);
            var reason = ejected ? $"ejected by passive health until {At(state.EjectedUntil):O} ({state.EjectionReason ?? "failed connects"})"
                : active is { Up: false } ? $"down: {active.ConsecutiveFailures} failed {active.Protocol} probe(s) in a row (last: {active.LastError})"
                : active is { LastProbePassed: null } ? "healthy (not probed yet)"
                : "healthy";
            var key = state.Key;
            reports.Add(new EndpointHealthReport(
                key.Backend.Namespace, key.Backend.Name, key.Backend.Port, key.Endpoint.Address, key.Endpoint.Port, !ejected && active is not { Up: false }, reason, state.ActiveConnections, active, passive));
        }

        return [.. reports
            .OrderBy(static r => r.BackendNamespace, StringComparer.Ordinal)
            .ThenBy(static r => r.BackendName, StringComparer.Ordinal)
            .ThenBy(static r => r.BackendPort)
            .ThenBy(static r => r.Address, StringComparer.Ordinal)
            .ThenBy(static r => r.Port)];
    }

    /// <summary>
    /// Applies <paramref name="table"/> as a diff against what is serving, and reports what was bound. A port that
    /// cannot be bound is reported as failed and tried again on the next apply; nothing else is disturbed.
    /// </summary>
    /// <param name="table">The routing table to serve.</param>
    /// <param name="cancellationToken">Cancels waiting for an earlier apply.</param>
    /// <returns>The bind outcome of every port in the table.</returns>
    public async Task<ListenerBindings> ApplyAsync(RoutingTable table, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(table);
        await _applyLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_stopped, this);
            var outcomes = await _listeners.ApplyAsync(table, cancellationToken).ConfigureAwait(false);

            // Endpoint states and connection gates live on while a serving listener uses them; the rest are forgotten.
            var models = _listeners.Models;
            _endpoints.Retain(models);
            _gates.Retain(models);
            _connections.Tune(ShortestDeadline(models));
            return new ListenerBindings(outcomes, AssumeBound: false);
        }
        finally
        {
            _applyLock.Release();
        }
    }

    /// <summary>
    /// Stops accepting on every listener, lets open connections finish up to <see cref="ProxyOptions.DrainTimeout"/>
    /// (or <paramref name="cancellationToken"/>), then closes what is left.
    /// </summary>
    /// <param name="cancellationToken">Ends the drain early.</param>
    /// <returns>A task that completes when every connection is closed.</returns>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _applyLock.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            if (_stopped)
            {
                return;
            }

            _stopped = true;
        }
        finally
        {
            _applyLock.Release();
        }

        await _listeners.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await StopAsync(new CancellationToken(canceled: true)).ConfigureAwait(false);
        await _prober.DisposeAsync().ConfigureAwait(false); // probes in flight are cancelled and awaited: no socket or timer left
        if (_accessLog is not null)
        {
            await _accessLog.DisposeAsync().ConfigureAwait(false); // after the drain: its lines are written first
        }

        await _connections.DisposeAsync().ConfigureAwait(false);
        _metrics.Dispose();
        _applyLock.Dispose();
    }

    private RouteModel NewModel(ListenerRoute route) => new(
        route,
        ConnectionLimits.From(_options, route.Client),
        ClientAdmission.For(route.Client, BindKey.Of(route), _gates),
        route.Client.BufferLimit ?? _options.BufferSize,
        (backend, tags) => _endpoints.Runtime(backend, tags, _passiveHealth, BackendConnectSettings.Resolve(backend.Policy, _policies, _options)));

    /// <summary>
    /// The shortest deadline the heartbeat enforces (connect, PROXY protocol inspection, idle, half-closed, maximum
    /// duration; globally and in every serving listener's and backend's policy): it beats at least four times within it.
    /// </summary>
    private TimeSpan ShortestDeadline(IReadOnlyList<RouteModel> models)
    {
        var shortest = new[] { ConnectionLimits.From(_options, ClientPolicy.Default).Shortest, _options.ConnectTimeout }.Min()!.Value;
        foreach (var model in models)
        {
            foreach (var limit in (ReadOnlySpan<TimeSpan?>)[model.Limits.Shortest, model.Route.Client.ProxyProtocol?.InspectionTimeout])
            {
                if (limit is { } deadline && deadline > TimeSpan.Zero && deadline < shortest)
                {
                    shortest = deadline;
                }
            }

            foreach (var backend in model.Route.Backends)
            {
                if (backend.Policy.ConnectTimeout is { } connect && connect > TimeSpan.Zero && connect < shortest)
                {
                    shortest = connect;
                }
            }
        }

        return shortest;
    }
}
