using System.Net;
using System.Net.Sockets;
using FsmGateway.Routing;
using FsmGateway.Transport.AccessLog;
using FsmGateway.Transport.Connections;
using FsmGateway.Transport.LoadBalancing;
using FsmGateway.Transport.ProxyProtocol;
using FsmGateway.Transport.Relay;
using FsmGateway.Transport.Sockets;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Transport.Proxy;

/// <summary>
/// What happens to one accepted connection: the backend is picked by weight, an endpoint by the load-balancing
/// policy among those health allows, the upstream connect is retried on other endpoints, and the bytes are relayed
/// until both directions end. Every connection is held in the <see cref="ConnectionRegistry"/> from accept until its
/// sockets are released, and leaves one metrics record and (when on) one access-log line.
/// </summary>
internal sealed class ConnectionHandler(
    IUpstreamConnector connector,
    ProxyOptions options,
    ConnectionRegistry registry,
    ProxyMetrics metrics,
    AccessLogWriter? accessLog,
    TimeProvider time,
    ILogger logger)
{
    /// <summary>The client connections held now, across all listeners.</summary>
    public int ActiveConnections => registry.Count;

    /// <summary>Takes over <paramref name="client"/>, accepted on <paramref name="listener"/>, and serves it in the background.</summary>
    public void Start(IDuplexConnection client, ListenerRuntime listener)
    {
        var connection = new ProxiedConnection(client, listener, listener.Model, time, metrics);
        listener.Add();
        registry.Add(connection);

        // Never throws: every failure ends in the connection's termination reason. Not awaited: the registry and the
        // listener's count hold the connection until HandleAsync releases it, and a stop waits for them.
        _ = HandleAsync(connection);
    }

    private async Task HandleAsync(ProxiedConnection connection)
    {
        var model = connection.Model;
        var port = connection.Listener.Port;
        var client = connection.Client;
        var tags = connection.ListenerTags = model.ListenerTags;
        metrics.Accepted(tags);
        connection.ClientEndPoint = client.RemoteEndPoint; // known from the accept: no system call
        if (accessLog is not null)
        {
            connection.StartedAtUtc = time.GetUtcNow();
        }

        try
        {
            string? refused = null;
            if (model.Route.Client.ProxyProtocol is { } proxyProtocol)
            {
                // From here on the header's source is the client address: access log, endpoint pick, the header sent
                // onwards. The heartbeat enforces the inspection timeout; its abort (or a drain's, or a stop's) fails
                // the read, which refuses the connection.
                connection.StartInspection(proxyProtocol.InspectionTimeout);
                var accepted = await ProxyProtocolStage.AcceptAsync(client, proxyProtocol.Optional).ConfigureAwait(false);
                refused = connection.EndInspection() ? $"no complete PROXY protocol header within {proxyProtocol.InspectionTimeout}" : accepted.Error;
                connection.Prefix = accepted.Prefix;
                if (accepted.Header is { Command: ProxyProtocolCommand.Proxy } header)
                {
                    connection.ClientEndPoint = header.Source;
                    connection.GatewayEndPoint = header.Destination;
                }
            }

            if (accessLog is { LogsStart: true })
            {
                accessLog.Write(new AccessLogEntry(AccessLogEvent.Start, connection.StartedAtUtc, TimeSpan.Zero, connection.ClientEndPoint, model.Route, null, null, null, 0, 0, TerminationReason.None));
            }

            if (refused is not null)
            {
                Reject(connection, TerminationReason.RefusedProxyProtocol, refused);
                return;
            }

            if (model.Route.Client.TcpKeepalive is { } keepalive && client is IKeepaliveConnection socket)
            {
                socket.SetKeepalive(keepalive);
            }

            if (model.Admission is { } admission && !await AdmitAsync(connection, admission).ConfigureAwait(false))
            {
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
            var runtime = model.Backends[backend];
            if (!runtime.Health.TryAdmit(runtime.Connect.MaxConnections))
            {
                Reject(connection, TerminationReason.RefusedBackendLimit, $"backend {backend.Namespace}/{backend.Name} has {runtime.Connect.MaxConnections} connections open, its maximum");
                return;
            }

            connection.AdmittedTo = runtime.Health;
            var connecting = time.GetTimestamp();
            var upstream = await ConnectAsync(connection, runtime).ConfigureAwait(false);
            if (upstream is null)
            {
                if (connection.Reason != TerminationReason.None)
                {
                    return; // refused already (no healthy endpoint, every endpoint at its cap)
                }

                Reject(connection, TerminationReason.RefusedUpstreamConnectFailed, $"no endpoint of backend {backend.Namespace}/{backend.Name} accepted the connection");
                return;
            }

            connection.ConnectTime = time.GetElapsedTime(connecting);
            connection.UpstreamEndPoint = upstream.RemoteEndPoint;
            connection.Upstream = upstream;
            connection.BackendTags = model.Tags[backend];
            if (!await SendFirstAsync(connection, upstream, backend).ConfigureAwait(false))
            {
                return;
            }

            var clientPolicy = model.Route.Client;
            connection.TryEnd(await TcpRelay.RunAsync(
                client,
                upstream,
                connection,
                model.BufferSize,
                clientPolicy.UploadBandwidth is { } up ? new TokenBucket(up, time) : null,
                clientPolicy.DownloadBandwidth is { } down ? new TokenBucket(down, time) : null).ConfigureAwait(false));
        }
        catch (Exception e)
        {
            Log.ConnectionError(logger, client.RemoteEndPoint, port, e.GetType().Name, e.Message);
            Log.ConnectionErrorTrace(logger, e, client.RemoteEndPoint, port);
            connection.Abort(TerminationReason.Error);
        }
        finally
        {
            await ReleaseAsync(connection, tags).ConfigureAwait(false);
        }
    }

    /// <summary>Closes both sockets, records the connection, and lets go of it: last, so a drain ends after its log line.</summary>
    private async Task ReleaseAsync(ProxiedConnection connection, ListenerTags tags)
    {
        try
        {
            if (connection.Upstream is { } upstream)
            {
                await upstream.DisposeAsync().ConfigureAwait(false);
            }

            connection.Endpoint?.Release();
            connection.AdmittedTo?.Leave();
            if (connection.Gates is { } gates)
            {
                foreach (var gate in gates)
                {
                    gate.Exit();
                }
            }

            await connection.Client.DisposeAsync().ConfigureAwait(false);
            if (connection.BackendTags is { } relayed)
            {
                metrics.Relayed(relayed, time.GetElapsedTime(connection.StartedAt));
            }

            connection.TryEnd(TerminationReason.Error); // every path sets a reason; this is for one none foresaw
            metrics.Closed(tags, connection.Reason);
            accessLog?.Write(new AccessLogEntry(
                AccessLogEvent.End,
                connection.StartedAtUtc,
                time.GetElapsedTime(connection.StartedAt),
                connection.ClientEndPoint,
                connection.Model.Route,
                connection.Backend,
                connection.UpstreamEndPoint,
                connection.ConnectTime,
                connection.BytesUp,
                connection.BytesDown,
                connection.Reason));
        }
        finally
        {
            registry.Remove(connection);
            connection.Listener.Remove();
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

    /// <summary>
    /// Runs the listener's client policy checks (filters, connection limit). A connection refused by the connection
    /// limit is held for its close delay first (ended early by an abort).
    /// </summary>
    /// <returns>Whether the connection is admitted.</returns>
    private async ValueTask<bool> AdmitAsync(ProxiedConnection connection, ClientAdmission admission)
    {
        var gates = connection.Gates = new List<ConnectionGate>(2);
        if (admission.Admit(connection.ClientEndPoint, gates) is not { } refusal)
        {
            return true;
        }

        if (refusal.Reason == TerminationReason.RefusedConnectionLimit && admission.CloseDelay is { Ticks: > 0 } delay)
        {
            connection.TryEnd(refusal.Reason);
            try
            {
                await Task.Delay(delay, time, connection.Aborted).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Aborted while held: closed now.
            }
        }

        Reject(connection, refusal.Reason, refusal.Text);
        return false;
    }

    private void Reject(ProxiedConnection connection, TerminationReason reason, string text)
    {
        Log.Rejected(logger, connection.ClientEndPoint, connection.Listener.Port, text);
        connection.Abort(reason);
    }

    /// <summary>
    /// Connects to an endpoint of the backend of <paramref name="runtime"/>, failing over to others up to
    /// <see cref="ProxyOptions.ConnectAttempts"/>. The backend's load-balancing policy picks among the endpoints health
    /// allows (all of them in panic mode), skipping those at the backend's per-endpoint cap (every one at it refuses
    /// the connection); a failed connect counts against its endpoint and may eject it. Each attempt's deadline (the
    /// backend's connect timeout) is the heartbeat's to enforce: no timer per connect. Allocation-free on the happy
    /// path beyond the connection's one cancellation source.
    /// </summary>
    private async Task<IDuplexConnection?> ConnectAsync(ProxiedConnection connection, BackendRuntime runtime)
    {
        var backend = runtime.Backend;
        var available = runtime.Available(out var panicChanged);
        if (panicChanged)
        {
            LogPanic(runtime, available);
        }

        if (available.Panic)
        {
            metrics.Panic(runtime.Tags);
        }
        else if (available.Endpoints.Length == 0)
        {
            // Only with a panic threshold of 0: no endpoint is healthy and panic mode is off.
            Reject(connection, TerminationReason.RefusedNoHealthyEndpoint, $"no endpoint of backend {backend.Namespace}/{backend.Name} is healthy (panic mode is off)");
            return null;
        }

        var settings = runtime.Connect;
        var attempts = Math.Min(Math.Max(1, options.ConnectAttempts), available.Endpoints.Length);
        var selection = new EndpointSelection(runtime, available, connection.ClientEndPoint);
        for (var attempt = 0; attempt < attempts; attempt++)
        {
            var index = selection.Pick(out _, out var state);
            if (index < 0)
            {
                Reject(connection, TerminationReason.RefusedBackendLimit, $"every endpoint of backend {backend.Namespace}/{backend.Name} has {settings.MaxConnectionsPerEndpoint} connections open, the maximum per endpoint");
                return null;
            }

            var started = time.GetTimestamp();
            try
            {
                var upstream = await connector.ConnectAsync(state.EndPoint, settings.ConnectOptions, connection.StartConnect(settings.ConnectTimeout)).ConfigureAwait(false);
                connection.EndConnect(connected: true);
                state.Succeeded();
                connection.Endpoint = state;
                metrics.Connected(runtime.Tags, time.GetElapsedTime(started));
                return upstream;
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
            {
                state.Release();
                var timedOut = connection.EndConnect(connected: false);
                if (e is OperationCanceledException && !timedOut)
                {
                    // The connection was aborted (a drain deadline, the proxy stopping): that says nothing about the
                    // endpoint, and there is nothing to retry for.
                    return null;
                }

                var reason = timedOut ? $"timed out after {settings.ConnectTimeout}" : e.Message;
                Log.ConnectFailed(logger, state.Address, $"{backend.Namespace}/{backend.Name}", attempt + 1, reason);
                metrics.ConnectFailed(runtime.Tags, e, timedOut);
                if (state.Failed(runtime.PassiveHealth, reason, runtime) is { } ejectedFor)
                {
                    Log.EndpointEjected(logger, state.Address, runtime.Health.Key.ToString(), ejectedFor, runtime.PassiveHealth.ConsecutiveFailures, reason);
                    metrics.Ejected(runtime.Tags);
                }

                if (attempt + 1 < attempts)
                {
                    // The failed endpoint leaves this connection's candidates; the shared round-robin counter does not move.
                    selection.Failed(index);
                }
            }
        }

        return null;
    }

    private void LogPanic(BackendRuntime runtime, AvailableEndpoints available)
    {
        metrics.PanicChanged(runtime.Tags, available.Panic);
        if (available.Panic)
        {
            var threshold = runtime.PanicThresholdPercent is { } percent ? $"{percent}%" : "no endpoint healthy";
            Log.PanicEntered(logger, runtime.Health.Key.ToString(), available.Healthy, available.All.Length, threshold);
        }
        else
        {
            Log.PanicLeft(logger, runtime.Health.Key.ToString(), available.Healthy, available.All.Length);
        }
    }
}
