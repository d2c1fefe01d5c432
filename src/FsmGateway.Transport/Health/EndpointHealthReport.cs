namespace FsmGateway.Transport.Health;

/// <summary>One endpoint's health now, as <see cref="Proxy.GatewayProxy.GetEndpointHealth"/> reports it (and <c>/status</c> shows it).</summary>
/// <param name="BackendNamespace">The backend Service's namespace.</param>
/// <param name="BackendName">The backend Service's name.</param>
/// <param name="BackendPort">The backendRef's port, or null when it names none.</param>
/// <param name="Address">The endpoint's address.</param>
/// <param name="Port">The endpoint's port.</param>
/// <param name="Healthy">Whether new connections may pick it: neither ejected by passive health nor down by an active check (panic mode may still use it when false).</param>
/// <param name="Reason">Why it is (un)healthy, one line for humans.</param>
/// <param name="ActiveConnections">Connections open (or opening) to it now, across listeners.</param>
/// <param name="Active">Its active health check, or null when none probes it.</param>
/// <param name="Passive">Its passive health.</param>
public sealed record EndpointHealthReport(
    string BackendNamespace,
    string BackendName,
    int? BackendPort,
    string Address,
    int Port,
    bool Healthy,
    string Reason,
    int ActiveConnections,
    ActiveHealthReport? Active,
    PassiveHealthReport Passive);

/// <summary>An endpoint's active health.</summary>
/// <param name="Protocol"><c>TCP</c> or <c>HTTP</c>.</param>
/// <param name="Up">Whether its probes pass (it starts up; <c>unhealthyThreshold</c> failures in a row mark it down, <c>healthyThreshold</c> passes up).</param>
/// <param name="LastProbeAt">When the last probe ended, or null before the first.</param>
/// <param name="LastProbePassed">Whether the last probe passed, or null before the first.</param>
/// <param name="LastError">Why the last failed probe failed (kept after later passes), or null if none failed.</param>
/// <param name="ConsecutiveFailures">Failed probes in a row now.</param>
/// <param name="ConsecutiveSuccesses">Passed probes in a row now.</param>
public sealed record ActiveHealthReport(string Protocol, bool Up, DateTimeOffset? LastProbeAt, bool? LastProbePassed, string? LastError, int ConsecutiveFailures, int ConsecutiveSuccesses);

/// <summary>An endpoint's passive health (ejection after failed connects).</summary>
/// <param name="Ejected">Whether it is ejected now.</param>
/// <param name="EjectedUntil">When the current ejection ends, or null when not ejected.</param>
/// <param name="EjectionReason">The failed connect that last ejected it, or null if it never was.</param>
/// <param name="ConsecutiveFailures">Failed connects since the last success or ejection.</param>
/// <param name="Ejections">Times it was ejected since first listed.</param>
/// <param name="Failures">Failed connects since first listed.</param>
public sealed record PassiveHealthReport(bool Ejected, DateTimeOffset? EjectedUntil, string? EjectionReason, int ConsecutiveFailures, long Ejections, long Failures);
