using System.Globalization;
using System.Net;
using FsmGateway.Routing;
using FsmGateway.Transport.Proxy;

namespace FsmGateway.Transport.Health;

/// <summary>
/// The active health of one endpoint under one probe configuration: up or down, the consecutive results that move
/// it, and the last probe's outcome. Its identity is the endpoint's (<see cref="EndpointState"/>) and the check's value,
/// so a reload that keeps both keeps it, its counts and its place in the probe schedule. Written only by the probe
/// that runs for it (one at a time) and read from anywhere.
/// </summary>
internal sealed class ActiveHealthState
{
    private volatile bool _up;
    private volatile bool _retired;
    private volatile string? _lastError;
    private long _lastProbeAt;
    private volatile bool _lastPassed;
    private int _consecutiveFailures;
    private int _consecutiveSuccesses;
    private long _probes;

    public ActiveHealthState(EndpointState endpoint, ActiveHealthCheck check, bool up)
    {
        Endpoint = endpoint;
        Check = check;
        _up = up;
        var address = endpoint.Key.Endpoint;
        EndPoint = IPAddress.TryParse(address.Address, out var ip) ? new IPEndPoint(ip, address.Port) : new DnsEndPoint(address.Address, address.Port);
        if (check.Protocol == HealthProbeProtocol.Http)
        {
            var host = ip is { AddressFamily: System.Net.Sockets.AddressFamily.InterNetworkV6 } ? $"[{ip}]" : address.Address;
            HttpUri = new Uri($"http://{host}:{address.Port.ToString(CultureInfo.InvariantCulture)}{check.HttpPath ?? "/"}", UriKind.Absolute);
        }

        ReceiveBuffer = check.TcpReceive.IsEmpty ? [] : new byte[check.TcpReceive.Length];
        var backend = endpoint.Key.Backend;
        DownTags = Tags(backend, "down");
        UpTags = Tags(backend, "up");
    }

    public EndpointState Endpoint { get; }

    public ActiveHealthCheck Check { get; }

    /// <summary>Where the probe connects.</summary>
    public EndPoint EndPoint { get; }

    /// <summary>The URI an HTTP probe gets (null for TCP).</summary>
    public Uri? HttpUri { get; }

    /// <summary>Where a TCP probe reads the expected reply (one per state: probes of one endpoint never overlap).</summary>
    public byte[] ReceiveBuffer { get; }

    /// <summary>The metric tags of a transition to down.</summary>
    public KeyValuePair<string, object?>[] DownTags { get; }

    /// <summary>The metric tags of a transition to up.</summary>
    public KeyValuePair<string, object?>[] UpTags { get; }

    /// <summary>Whether the endpoint passes its active checks (new endpoints start up; see docs/policies.md).</summary>
    public bool IsUp => _up;

    /// <summary>No serving route probes this endpoint with this check any more: its probes stop.</summary>
    public bool IsRetired => _retired;

    public int ConsecutiveFailures => Volatile.Read(ref _consecutiveFailures);

    public int ConsecutiveSuccesses => Volatile.Read(ref _consecutiveSuccesses);

    /// <summary>Probes recorded since the state was created.</summary>
    public int Probes => (int)Interlocked.Read(ref _probes);

    /// <summary>When the last probe ended (a <see cref="TimeProvider"/> timestamp), or 0 before the first one ended.</summary>
    public long LastProbeAt => Interlocked.Read(ref _lastProbeAt);

    /// <summary>Whether the last probe passed.</summary>
    public bool LastPassed => _lastPassed;

    /// <summary>Why the last failed probe failed (kept after later passes, for the operator), or null if none failed.</summary>
    public string? LastError => _lastError;

    /// <summary>When the next probe is due (a <see cref="TimeProvider"/> timestamp; the scheduler's alone).</summary>
    public long DueAt { get; set; }

    /// <summary>Whether the scheduler woke this state's loop for a probe not yet over (under the prober's lock).</summary>
    public bool Woken { get; set; }

    /// <summary>Whether the scheduler has this state (the registry's bookkeeping; under its apply lock).</summary>
    public bool Scheduled { get; set; }

    /// <summary>Stops probing this state: the scheduler drops it, and a probe in flight is cancelled.</summary>
    public void Retire()
    {
        _retired = true;
        Probe?.Wake();
    }

    /// <summary>The probe resources of this state, created by the prober on its first probe.</summary>
    public ActiveHealthProber.HealthProbe? Probe { get; set; }

    /// <summary>Records a probe's outcome (allocation-free: a pass writes three fields and a count).</summary>
    /// <param name="at">When the probe ended (a <see cref="TimeProvider"/> timestamp).</param>
    /// <param name="error">Why it failed, or null when it passed.</param>
    /// <returns>The transition this outcome caused: true = now up, false = now down, null = none.</returns>
    public bool? Record(long at, string? error)
    {
        var passed = error is null;
        Interlocked.Increment(ref _probes);
        _lastPassed = passed;
        if (!passed)
        {
            _lastError = error;
        }

        Interlocked.Exchange(ref _lastProbeAt, at);
        if (passed)
        {
            Volatile.Write(ref _consecutiveFailures, 0);
            var successes = Interlocked.Increment(ref _consecutiveSuccesses);
            if (!_up && successes >= Check.HealthyThreshold)
            {
                _up = true;
                Endpoint.Backend.Changed();
                return true;
            }
        }
        else
        {
            Volatile.Write(ref _consecutiveSuccesses, 0);
            var failures = Interlocked.Increment(ref _consecutiveFailures);
            if (_up && failures >= Check.UnhealthyThreshold)
            {
                _up = false;
                Endpoint.Backend.Changed();
                return false;
            }
        }

        return null;
    }

    private static KeyValuePair<string, object?>[] Tags(BackendKey backend, string state) =>
    [
        new("backend_namespace", backend.Namespace),
        new("backend_name", backend.Name),
        new("backend_port", backend.Port?.ToString(CultureInfo.InvariantCulture) ?? string.Empty),
        new("state", state),
    ];
}
