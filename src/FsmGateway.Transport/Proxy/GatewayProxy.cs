using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using FsmGateway.Routing;
using FsmGateway.Transport.AccessLog;
using FsmGateway.Transport.Connections;
using FsmGateway.Transport.Health;
using FsmGateway.Transport.LoadBalancing;
using FsmGateway.Transport.ProxyProtocol;
using FsmGateway.Transport.Relay;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace FsmGateway.Transport.Proxy;

/// <summary>
/// The data plane: applies routing tables as diffs and relays connections. An unchanged listener keeps its sockets and
/// connections; a new one starts accepting; a removed one stops accepting and its connections drain up to
/// <see cref="ProxyOptions.DrainTimeout"/>. Endpoint and route changes reach new connections only.
/// </summary>
public sealed class GatewayProxy : IAsyncDisposable
{
    private readonly IListenerFactory _listenerFactory;
    private readonly IUpstreamConnector _connector;
    private readonly ILoadBalancingPolicy _policy;
    private readonly ProxyOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ProxyMetrics _metrics;
    private readonly AccessLogWriter? _accessLog;
    private readonly SemaphoreSlim _applyLock = new(1, 1);
    private readonly Dictionary<BindKey, ListenerRuntime> _listeners = [];
    private readonly EndpointRegistry _endpoints;
    private readonly ActiveHealthProber _prober;
    private readonly PassiveHealthSettings _passiveHealth;
    private readonly ConcurrentDictionary<Task, byte> _background = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly ITimer? _sweeper;
    private bool _stopped;
    private int _disposed;
    private int _active;

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
        _listenerFactory = listenerFactory;
        _connector = connector;
        _options = options.Value;

        // Through DI the options were validated already; built by hand (CreateDefault, Options.Create), they are here.
        if (ProxyOptionsValidator.Instance.Validate(Options.DefaultName, _options) is { Failed: true } invalid)
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(ProxyOptions), invalid.Failures);
        }

        _time = timeProvider;
        _logger = logger ?? NullLogger<GatewayProxy>.Instance;
        _metrics = new ProxyMetrics(meterFactory);
        _accessLog = _options.AccessLog.Destination is null ? null : new AccessLogWriter(_options.AccessLog, _time, _logger, _metrics);
        _prober = new ActiveHealthProber(_time, _logger, _metrics);
        _endpoints = new EndpointRegistry(_time, _prober);
        _passiveHealth = PassiveHealthSettings.From(_options);
        if (_options.EndpointMetrics)
        {
            _metrics.ObserveEndpoints(_endpoints);
        }

        var byName = policies.ToDictionary(static p => p.Name, StringComparer.OrdinalIgnoreCase);
        _policy = byName.GetValueOrDefault(_options.LoadBalancingPolicy)
            ?? throw new ArgumentException(
                $"No load-balancing policy named '{_options.LoadBalancingPolicy}' is registered; known: {string.Join(", ", byName.Keys.Order(StringComparer.Ordinal))}",
                nameof(options));

        var limit = new[] { _options.IdleTimeout, _options.MaxConnectionDuration }.Where(static t => t is not null).Min();
        if (limit is { } shortest)
        {
            var interval = TimeSpan.FromTicks(Math.Clamp(shortest.Ticks / 4, TimeSpan.FromMilliseconds(50).Ticks, TimeSpan.FromSeconds(30).Ticks));
            _sweeper = _time.CreateTimer(static state => ((GatewayProxy)state!).Sweep(), this, interval, interval);
        }
    }

    /// <summary>Creates a proxy on plain TCP sockets with round-robin endpoint choice.</summary>
    /// <param name="options">Timeouts and limits; defaults when null.</param>
    /// <param name="timeProvider">The clock; the system clock when null.</param>
    /// <param name="logger">Where to log.</param>
    /// <returns>The proxy.</returns>
    public static GatewayProxy CreateDefault(ProxyOptions? options = null, TimeProvider? timeProvider = null, ILogger<GatewayProxy>? logger = null)
    {
        var transport = new Sockets.SocketTransport();
        return new GatewayProxy(transport, transport, [new RoundRobinPolicy()], Options.Create(options ?? new ProxyOptions()), timeProvider ?? TimeProvider.System, logger);
    }

    /// <summary>The endpoints bound now, across all listeners.</summary>
    public IReadOnlyList<EndPoint> BoundEndPoints
    {
        get
        {
            lock (_listeners)
            {
                return [.. _listeners.Values.SelectMany(static l => l.Sockets).Select(static s => s.EndPoint)];
            }
        }
    }

    /// <summary>The active health prober (for tests).</summary>
    internal ActiveHealthProber Prober => _prober;

    /// <summary>The client connections open now, across all listeners, including draining ones.</summary>
    public int ActiveConnections => Volatile.Read(ref _active);

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
            var desired = new Dictionary<BindKey, ListenerRoute>();
            foreach (var route in table.Listeners)
            {
                desired.TryAdd(BindKey.Of(route), route);
            }

            List<ListenerRuntime> removed;
            lock (_listeners)
            {
                removed = [.. _listeners.Values.Where(l => !desired.ContainsKey(l.Key))];
                foreach (var listener in removed)
                {
                    _listeners.Remove(listener.Key);
                }
            }

            foreach (var listener in removed)
            {
                await UnbindAsync(listener).ConfigureAwait(false);
                Track(DrainAsync(listener));
            }

            var outcomes = ImmutableSortedDictionary.CreateBuilder<int, BindOutcome>();
            foreach (var (key, route) in desired)
            {
                ListenerRuntime? existing;
                lock (_listeners)
                {
                    _listeners.TryGetValue(key, out existing);
                }

                if (existing is not null)
                {
                    if (!existing.Model.Route.Equals(route))
                    {
                        existing.Model = NewModel(route);
                        Log.RouteUpdated(_logger, desired.Count, route.Port, LogText.Escape(existing.Model.Describe));
                    }

                    outcomes.TryAdd(route.Port, BindOutcome.Bound);
                    continue;
                }

                // Listeners are per (port, addresses) but status is per port: a failure on any address wins.
                var outcome = await BindAsync(key, route, cancellationToken).ConfigureAwait(false);
                if (outcome.State == BindState.Failed || !outcomes.ContainsKey(route.Port))
                {
                    outcomes[route.Port] = outcome;
                }
            }

            // Endpoint states live on while a serving listener routes to them; the rest are forgotten.
            lock (_listeners)
            {
                _endpoints.Retain([.. _listeners.Values.Select(static l => l.Model)]);
            }

            return new ListenerBindings(outcomes.ToImmutable(), AssumeBound: false);
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
        List<ListenerRuntime> all;
        await _applyLock.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            if (_stopped)
            {
                return;
            }

            _stopped = true;
            lock (_listeners)
            {
                all = [.. _listeners.Values];
                _listeners.Clear();
            }
        }
        finally
        {
            _applyLock.Release();
        }

        foreach (var listener in all)
        {
            await UnbindAsync(listener).ConfigureAwait(false);
        }

        // Ending the drain early ends it for listeners removed before the stop too: they drain on _stopping.
        using var endDrainsEarly = cancellationToken.Register(static s => ((CancellationTokenSource)s!).Cancel(), _stopping);
        var drains = all.Select(DrainAsync).ToList();
        await Task.WhenAll(drains).ConfigureAwait(false);
        await Task.WhenAll(_background.Keys).ConfigureAwait(false);
        await _stopping.CancelAsync().ConfigureAwait(false);
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

        if (_sweeper is not null)
        {
            await _sweeper.DisposeAsync().ConfigureAwait(false);
        }

        _metrics.Dispose();
        _stopping.Dispose();
        _applyLock.Dispose();
    }

    private RouteModel NewModel(ListenerRoute route) =>
        new(route, (backend, tags) => _endpoints.Runtime(backend, tags, _passiveHealth));

    private async Task<BindOutcome> BindAsync(BindKey key, ListenerRoute route, CancellationToken cancellationToken)
    {
        var sockets = new List<IConnectionListener>();
        try
        {
            foreach (var endPoint in key.EndPoints())
            {
                sockets.Add(await _listenerFactory.BindAsync(endPoint, cancellationToken).ConfigureAwait(false));
            }
        }
        catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException)
        {
            foreach (var socket in sockets)
            {
                await socket.DisposeAsync().ConfigureAwait(false);
            }

            var reason = e is SocketException { SocketErrorCode: SocketError.AddressAlreadyInUse } ? "address already in use" : e.Message;
            Log.BindFailed(_logger, route.Port, LogText.Escape(route.ListenerName), LogText.Escape(route.Gateway.ToString()), reason);
            return BindOutcome.Failed(reason);
        }

        var listener = new ListenerRuntime(key, sockets, NewModel(route));
        lock (_listeners)
        {
            _listeners[key] = listener;
        }

        foreach (var socket in sockets)
        {
            Log.Listening(_logger, socket.EndPoint, LogText.Escape(route.ListenerName), LogText.Escape(route.Gateway.ToString()));
            listener.AcceptLoops.Add(AcceptLoopAsync(listener, socket));
        }

        return BindOutcome.Bound;
    }

    private static async Task UnbindAsync(ListenerRuntime listener)
    {
        foreach (var socket in listener.Sockets)
        {
            await socket.UnbindAsync(CancellationToken.None).ConfigureAwait(false);
        }

        await Task.WhenAll(listener.AcceptLoops).ConfigureAwait(false);
        foreach (var socket in listener.Sockets)
        {
            await socket.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Waits up to the drain timeout (or until the proxy stops early) for the listener's connections, then closes the rest.</summary>
    private async Task DrainAsync(ListenerRuntime listener)
    {
        var timeout = _options.DrainTimeout;
        Log.Unbound(_logger, listener.Port, listener.ConnectionCount, timeout);

        try
        {
            await listener.WhenDrained().WaitAsync(timeout, _time, _stopping.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            Log.DrainDeadline(_logger, listener.Port, listener.ConnectionCount);
            foreach (var connection in listener.Connections)
            {
                connection.Abort(TerminationReason.Drain);
            }

            await listener.WhenDrained().ConfigureAwait(false);
        }
    }

    private async Task AcceptLoopAsync(ListenerRuntime listener, IConnectionListener socket)
    {
        // Accepting never runs on the caller of ApplyAsync.
        await Task.Yield();
        while (true)
        {
            IDuplexConnection? client;
            try
            {
                client = await socket.AcceptAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                // Accept failures that are not "unbound" (e.g. too many open files) must not end the listener:
                // log, back off briefly, go on.
                Log.AcceptFailed(_logger, listener.Port, e.GetType().Name, e.Message);
                Log.AcceptFailedTrace(_logger, e, listener.Port);
                await Task.Delay(TimeSpan.FromMilliseconds(50), _time).ConfigureAwait(false);
                continue;
            }

            if (client is null)
            {
                return;
            }

            var connection = new ProxiedConnection(client, listener, _time, _metrics);
            listener.Add(connection);
            Track(HandleAsync(connection, listener.Model));
        }
    }

    private async Task HandleAsync(ProxiedConnection connection, RouteModel model)
    {
        var port = connection.Listener.Port;
        var client = connection.Client;
        Interlocked.Increment(ref _active);
        var tags = connection.ListenerTags = model.ListenerTags;
        _metrics.Accepted(tags);
        connection.ClientEndPoint = client.RemoteEndPoint;
        connection.GatewayEndPoint = client.LocalEndPoint;
        if (_accessLog is not null)
        {
            connection.StartedAtUtc = _time.GetUtcNow();
        }

        try
        {
            string? refused = null;
            if (model.Route.Client.ProxyProtocol is { } proxyProtocol)
            {
                // From here on the header's source is the client address: access log, endpoint pick, the header sent onwards.
                var accepted = await ProxyProtocolStage.AcceptAsync(client, proxyProtocol, _time, _stopping.Token).ConfigureAwait(false);
                refused = accepted.Error;
                connection.Prefix = accepted.Prefix;
                if (accepted.Header is { Command: ProxyProtocolCommand.Proxy } header)
                {
                    connection.ClientEndPoint = header.Source;
                    connection.GatewayEndPoint = header.Destination;
                }
            }

            if (_accessLog is { LogsStart: true })
            {
                _accessLog.Write(new AccessLogEntry(AccessLogEvent.Start, connection.StartedAtUtc, TimeSpan.Zero, connection.ClientEndPoint, model.Route, null, null, null, 0, 0, TerminationReason.None));
            }

            if (refused is not null)
            {
                Reject(connection, TerminationReason.RefusedProxyProtocol, refused);
                return;
            }

            var backend = model.Picker.Next();
            if (backend is null || !backend.CanServe)
            {
                if (backend is null)
                {
                    Reject(connection, TerminationReason.RefusedNoRoute, model.Route.Route is null ? "no route is attached to this listener" : "every backend has weight 0");
                }
                else
                {
                    connection.Backend = backend;
                    Reject(
                        connection,
                        TerminationReason.RefusedNoHealthyEndpoint,
                        backend.Problem is { } problem ? $"backend {backend.Namespace}/{backend.Name} is invalid ({problem.Reason})" : $"backend {backend.Namespace}/{backend.Name} has no ready endpoints");
                }

                return;
            }

            connection.Backend = backend;
            var connecting = _time.GetTimestamp();
            var upstream = await ConnectAsync(connection, model, backend).ConfigureAwait(false);
            if (upstream is null)
            {
                if (connection.Reason != TerminationReason.None)
                {
                    return; // refused already (no healthy endpoint)
                }

                Reject(connection, TerminationReason.RefusedUpstreamConnectFailed, $"no endpoint of backend {backend.Namespace}/{backend.Name} accepted the connection");
                return;
            }

            connection.ConnectTime = _time.GetElapsedTime(connecting);
            connection.UpstreamEndPoint = upstream.RemoteEndPoint;
            connection.Upstream = upstream;
            connection.BackendTags = model.Tags[backend];
            if (!await SendFirstAsync(connection, upstream, backend).ConfigureAwait(false))
            {
                return;
            }

            connection.TryEnd(await TcpRelay.RunAsync(client, upstream, connection, _options.BufferSize).ConfigureAwait(false));
        }
        catch (Exception e)
        {
            Log.ConnectionError(_logger, client.RemoteEndPoint, port, e.GetType().Name, e.Message);
            Log.ConnectionErrorTrace(_logger, e, client.RemoteEndPoint, port);
            connection.Abort(TerminationReason.Error);
        }
        finally
        {
            if (connection.Upstream is { } upstream)
            {
                await upstream.DisposeAsync().ConfigureAwait(false);
            }

            connection.Endpoint?.Release();

            await client.DisposeAsync().ConfigureAwait(false);
            connection.Listener.Remove(connection);
            if (connection.BackendTags is { } relayed)
            {
                _metrics.Relayed(relayed, _time.GetElapsedTime(connection.StartedAt));
            }

            connection.TryEnd(TerminationReason.Error); // every path above sets a reason; this is for one none foresaw
            _metrics.Closed(tags, connection.Reason);
            _accessLog?.Write(new AccessLogEntry(
                AccessLogEvent.End,
                connection.StartedAtUtc,
                _time.GetElapsedTime(connection.StartedAt),
                connection.ClientEndPoint,
                model.Route,
                connection.Backend,
                connection.UpstreamEndPoint,
                connection.ConnectTime,
                connection.BytesUp,
                connection.BytesDown,
                connection.Reason));
            Interlocked.Decrement(ref _active);
        }
    }

    /// <summary>
    /// Sends what goes upstream before the relay: the backend policy's PROXY protocol header, then the bytes received
    /// while looking for a client header that was optional and absent. False when the upstream failed meanwhile.
    /// </summary>
    private static async ValueTask<bool> SendFirstAsync(ProxiedConnection connection, IDuplexConnection upstream, RouteBackend backend)
    {
        var prefix = connection.Prefix;
        if (backend.Policy.ProxyProtocol is null && prefix.IsEmpty)
        {
            return true;
        }

        try
        {
            await ProxyProtocolStage.SendAsync(upstream, backend.Policy.ProxyProtocol, connection.ClientEndPoint, connection.GatewayEndPoint, prefix, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
        {
            connection.Abort(TerminationReason.BackendReset);
            return false;
        }

        if (!prefix.IsEmpty)
        {
            connection.Transferred(upload: true, prefix.Length);
        }

        return true;
    }

    private void Reject(ProxiedConnection connection, TerminationReason reason, string text)
    {
        Log.Rejected(_logger, connection.ClientEndPoint, connection.Listener.Port, text);
        connection.Abort(reason);
    }

    /// <summary>
    /// Connects to an endpoint of <paramref name="backend"/>, failing over to others up to
    /// <see cref="ProxyOptions.ConnectAttempts"/>. Picks among the endpoints passive health has not ejected (all of
    /// them in panic mode); a failed connect counts against its endpoint and may eject it. Allocation-free on the
    /// happy path beyond the pick context and the timeout sources.
    /// </summary>
    private async Task<IDuplexConnection?> ConnectAsync(ProxiedConnection connection, RouteModel model, RouteBackend backend)
    {
        var runtime = model.Backends[backend];
        var available = runtime.Available(out var panicChanged);
        if (panicChanged)
        {
            LogPanic(runtime, available);
        }

        if (available.Panic)
        {
            _metrics.Panic(runtime.Tags);
        }
        else if (available.Endpoints.Length == 0)
        {
            // Only with a panic threshold of 0: no endpoint is healthy and panic mode is off.
            Reject(connection, TerminationReason.RefusedNoHealthyEndpoint, $"no endpoint of backend {backend.Namespace}/{backend.Name} is healthy (panic mode is off)");
            return null;
        }

        IReadOnlyList<BackendEndpoint> candidates = available.Endpoints;
        var states = available.States;
        var attempts = Math.Min(Math.Max(1, _options.ConnectAttempts), candidates.Count);
        var context = new EndpointPickContext(connection.ClientEndPoint, backend, candidates, runtime.Health.Counter);
        for (var attempt = 0; attempt < attempts; attempt++)
        {
            var index = Math.Clamp(_policy.Pick(context), 0, candidates.Count - 1);
            var endpoint = candidates[index];
            var state = states[index];
            state.Acquire();
            using var timeout = new CancellationTokenSource(_options.ConnectTimeout, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, _stopping.Token);
            var started = _time.GetTimestamp();
            try
            {
                var upstream = await _connector.ConnectAsync(ToEndPoint(endpoint), linked.Token).ConfigureAwait(false);
                state.Succeeded();
                connection.Endpoint = state;
                _metrics.Connected(runtime.Tags, _time.GetElapsedTime(started));
                return upstream;
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
            {
                state.Release();
                var timedOut = e is OperationCanceledException && timeout.IsCancellationRequested;
                if (e is OperationCanceledException && !timedOut)
                {
                    // The proxy is stopping: says nothing about the endpoint, and there is nothing to retry for.
                    return null;
                }

                var reason = timedOut ? $"timed out after {_options.ConnectTimeout}" : e.Message;
                Log.ConnectFailed(_logger, state.Address, $"{backend.Namespace}/{backend.Name}", attempt + 1, reason);
                _metrics.ConnectFailed(runtime.Tags, e, timedOut);
                if (state.Failed(runtime.PassiveHealth, reason, runtime) is { } ejectedFor)
                {
                    Log.EndpointEjected(_logger, state.Address, runtime.Health.Key.ToString(), ejectedFor, runtime.PassiveHealth.ConsecutiveFailures, reason);
                    _metrics.Ejected(runtime.Tags);
                }

                if (attempt + 1 < attempts)
                {
                    // The failed endpoint leaves this connection's candidates; the shared round-robin counter does not move.
                    (candidates, states) = Without(candidates, states, index);
                    context.Retry(candidates);
                }
            }
        }

        return null;
    }

    private static (BackendEndpoint[] Endpoints, EndpointState[] States) Without(IReadOnlyList<BackendEndpoint> endpoints, EndpointState[] states, int index)
    {
        var leftEndpoints = new BackendEndpoint[endpoints.Count - 1];
        var leftStates = new EndpointState[states.Length - 1];
        for (int i = 0, j = 0; i < states.Length; i++)
        {
            if (i != index)
            {
                leftEndpoints[j] = endpoints[i];
                leftStates[j++] = states[i];
            }
        }

        return (leftEndpoints, leftStates);
    }

    private void LogPanic(BackendRuntime runtime, AvailableEndpoints available)
    {
        _metrics.PanicChanged(runtime.Tags, available.Panic);
        if (available.Panic)
        {
            var threshold = runtime.PanicThresholdPercent is { } percent ? $"{percent}%" : "no endpoint healthy";
            Log.PanicEntered(_logger, runtime.Health.Key.ToString(), available.Healthy, available.All.Length, threshold);
        }
        else
        {
            Log.PanicLeft(_logger, runtime.Health.Key.ToString(), available.Healthy, available.All.Length);
        }
    }

    private static EndPoint ToEndPoint(BackendEndpoint endpoint) =>
        IPAddress.TryParse(endpoint.Address, out var ip) ? new IPEndPoint(ip, endpoint.Port) : new DnsEndPoint(endpoint.Address, endpoint.Port);

    /// <summary>Closes connections past the idle timeout or the maximum duration.</summary>
    private void Sweep()
    {
        var now = _time.GetTimestamp();
        List<ListenerRuntime> listeners;
        lock (_listeners)
        {
            listeners = [.. _listeners.Values];
        }

        foreach (var connection in listeners.SelectMany(static l => l.Connections))
        {
            (TerminationReason Reason, string Text)? limit = null;
            if (_options.IdleTimeout is { } idle && _time.GetElapsedTime(connection.LastActivity, now) > idle)
            {
                limit = (TerminationReason.IdleTimeout, $"idle for more than {idle}");
            }
            else if (_options.MaxConnectionDuration is { } max && _time.GetElapsedTime(connection.StartedAt, now) > max)
            {
                limit = (TerminationReason.MaxDuration, $"open for more than {max}");
            }

            if (limit is { } reached)
            {
                Log.LimitReached(_logger, connection.ClientEndPoint, connection.Listener.Port, reached.Text);
                connection.Abort(reached.Reason);
            }
        }
    }

    private void Track(Task task)
    {
        _background.TryAdd(task, 0);
        task.ContinueWith(static (t, state) => ((ConcurrentDictionary<Task, byte>)state!).TryRemove(t, out _), _background, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }
}
