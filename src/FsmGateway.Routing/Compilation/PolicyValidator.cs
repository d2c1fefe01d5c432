using FsmGateway.Resources;

namespace FsmGateway.Routing.Compilation;

/// <summary>
/// What the policy schemas allow but FsmGateway cannot honour for TCP: each problem names its field
/// (<c>spec.healthCheck.active.timeout: ...</c>) and makes the policy <c>Accepted=False</c>, reason <c>Invalid</c>.
/// Types, enums and ranges the CRDs themselves refuse are the reader's (ADR 0002).
/// </summary>
internal static class PolicyValidator
{
    /// <summary>Linux's largest TCP_KEEPIDLE / TCP_KEEPINTVL, in seconds.</summary>
    private const int MaxKeepaliveSeconds = 32767;

    /// <summary>Linux's largest TCP_KEEPCNT.</summary>
    private const int MaxKeepaliveProbes = 127;

    public static List<string> Problems(Resource policy)
    {
        var problems = new List<string>();
        switch (policy)
        {
            case HealthCheckPolicy hcp:
                ServiceTargets(hcp.TargetRefs, problems);
                if (hcp.HealthCheck is null && hcp.Ports.IsEmpty)
                {
                    problems.Add("spec.healthCheck: is required when spec.ports is empty");
                }

                if (hcp.HealthCheck is { } check)
                {
                    FsmCheck(check, "spec.healthCheck", problems);
                }

                for (var i = 0; i < hcp.Ports.Length; i++)
                {
                    if (hcp.Ports[i].HealthCheck is { } portCheck)
                    {
                        FsmCheck(portCheck, $"spec.ports[{i}].healthCheck", problems);
                    }
                    else if (hcp.HealthCheck is null)
                    {
                        problems.Add($"spec.ports[{i}].healthCheck: is required when spec.healthCheck is not set");
                    }
                }

                break;
            case BackendLbPolicy blb:
                ServiceTargets(blb.TargetRefs, problems);
                break;
            case BackendTrafficPolicy btp:
                BackendTraffic(btp, problems);
                break;
            case ClientTrafficPolicy ctp:
                ClientTraffic(ctp, problems);
                break;
            case RouteRuleFilterPolicy rrfp:
                for (var i = 0; i < rrfp.TargetRefs.Length; i++)
                {
                    var target = rrfp.TargetRefs[i];
                    if (target.Group != GatewayApi.Group || target.Kind != "TCPRoute")
                    {
                        problems.Add($"spec.targetRefs[{i}]: {RouteAttacher.GroupKind(target.Group, target.Kind)} is not a supported target; only TCPRoute is (FsmGateway serves no UDP)");
                    }
                }

                break;
        }

        return problems;
    }

    private static void ServiceTargets(EquatableArray<PolicyTargetReference> targets, List<string> problems)
    {
        for (var i = 0; i < targets.Length; i++)
        {
            var target = targets[i];
            if (target.Group != GatewayApi.CoreGroup || target.Kind != "Service")
            {
                problems.Add($"spec.targetRefs[{i}]: {RouteAttacher.GroupKind(target.Group, target.Kind)} is not a supported target; only core Services are (ServiceImport is not supported)");
            }
        }
    }

    private static void FsmCheck(FsmHealthCheck check, string field, List<string> problems)
    {
        if (check.MaxFails < 1)
        {
            problems.Add($"{field}.maxFails: must be at least 1 (0 would never mark an endpoint down)");
        }

        if (check.Interval == TimeSpan.Zero && check.FailTimeout == TimeSpan.Zero)
        {
            problems.Add($"{field}.failTimeout: must be more than 0s when interval is 0s (passive checks: how long a failed endpoint stays out)");
        }

        if (check.Path is not null && check.Matches.IsEmpty)
        {
            problems.Add($"{field}.matches: is required when path is set (what a healthy answer looks like)");
        }

        if (check.Path is null && !check.Matches.IsEmpty)
        {
            problems.Add($"{field}.path: is required when matches is set");
        }

        if (check.Path is { } path && !path.StartsWith('/'))
        {
            problems.Add($"{field}.path: '{path}' must start with '/'");
        }

        for (var j = 0; j < check.Matches.Length; j++)
        {
            var match = check.Matches[j];
            if (match.StatusCodes.IsEmpty && match.Body is null && match.Headers.IsEmpty)
            {
                problems.Add($"{field}.matches[{j}]: must set at least one of statusCodes, body, headers");
            }

            for (var k = 0; k < match.StatusCodes.Length; k++)
            {
                if (match.StatusCodes[k] is < 100 or > 599)
                {
                    problems.Add($"{field}.matches[{j}].statusCodes[{k}]: {match.StatusCodes[k]} is not an HTTP status (100..599)");
                }
            }
        }
    }

    private static void BackendTraffic(BackendTrafficPolicy btp, List<string> problems)
    {
        for (var i = 0; i < btp.TargetRefs.Length; i++)
        {
            var target = btp.TargetRefs[i];
            if (target.Group != GatewayApi.Group || target.Kind is not ("Gateway" or "TCPRoute"))
            {
                problems.Add($"spec.targetRefs[{i}]: {RouteAttacher.GroupKind(target.Group, target.Kind)} is not a supported target; only Gateway and TCPRoute are");
            }
        }

        if (btp.LoadBalancer is { } lb)
        {
            if (lb.Type is not ("RoundRobin" or "LeastRequest" or "Random" or "ConsistentHash"))
            {
                problems.Add($"spec.loadBalancer.type: {lb.Type} is not supported; use RoundRobin, LeastRequest, Random or ConsistentHash");
            }

            if (lb.Type == "ConsistentHash" && lb.ConsistentHashType is { } hashType && hashType != "SourceIP")
            {
                problems.Add($"spec.loadBalancer.consistentHash.type: {hashType} needs HTTP; only SourceIP applies to TCP");
            }

            if (lb.TableSize is { } size && !IsPrime(size))
            {
                problems.Add($"spec.loadBalancer.consistentHash.tableSize: {size} is not a prime (a Maglev table needs a prime size)");
            }

            if (lb.HasSlowStart)
            {
                problems.Add("spec.loadBalancer.slowStart: is not supported");
            }
        }

        if (btp.ActiveHealthCheck is { } active)
        {
            const string field = "spec.healthCheck.active";
            if (active.Type == "GRPC")
            {
                problems.Add($"{field}.type: GRPC is not supported; use TCP or HTTP");
            }

            if (active.Interval == TimeSpan.Zero)
            {
                problems.Add($"{field}.interval: must be more than 0s");
            }

            if (active.Timeout == TimeSpan.Zero)
            {
                problems.Add($"{field}.timeout: must be more than 0s");
            }

            var interval = active.Interval ?? ActiveDefaults.Interval;
            if ((active.Timeout ?? ActiveDefaults.Timeout) > interval && interval > TimeSpan.Zero)
            {
                problems.Add($"{field}.timeout: {Format(active.Timeout ?? ActiveDefaults.Timeout)} is longer than the interval ({Format(interval)}); a probe must end before the next starts");
            }

            if (active.HttpPath is { } path && !path.StartsWith('/'))
            {
                problems.Add($"{field}.http.path: '{path}' must start with '/'");
            }
        }

        if (btp.PassiveHealthCheck is { } passive)
        {
            const string field = "spec.healthCheck.passive";
            if (passive.ConsecutiveLocalOriginFailures == 0)
            {
                problems.Add($"{field}.consecutiveLocalOriginFailures: must be at least 1");
            }

            if (passive.Interval == TimeSpan.Zero)
            {
                problems.Add($"{field}.interval: must be more than 0s");
            }

            if (passive.BaseEjectionTime == TimeSpan.Zero)
            {
                problems.Add($"{field}.baseEjectionTime: must be more than 0s");
            }
        }

        if (btp.TcpKeepalive is { } keepalive)
        {
            if (keepalive.Probes is { } probes && probes is < 1 or > MaxKeepaliveProbes)
            {
                problems.Add($"spec.tcpKeepalive.probes: {probes} is out of range 1..{MaxKeepaliveProbes}");
            }

            KeepaliveTime(keepalive.IdleTime, "spec.tcpKeepalive.idleTime", problems);
            KeepaliveTime(keepalive.Interval, "spec.tcpKeepalive.interval", problems);
        }

        if (btp.ConnectTimeout == TimeSpan.Zero)
        {
            problems.Add("spec.timeout.tcp.connectTimeout: must be more than 0s");
        }
    }

    /// <summary>The smallest <c>connection.bufferLimit</c>: below one read buffer a connection could not make progress.</summary>
    internal const long MinBufferLimit = 1024;

    /// <summary>The largest <c>connection.bufferLimit</c> (1 GiB per direction).</summary>
    internal const long MaxBufferLimit = 1L << 30;

    private static void ClientTraffic(ClientTrafficPolicy ctp, List<string> problems)
    {
        for (var i = 0; i < ctp.TargetRefs.Length; i++)
        {
            var target = ctp.TargetRefs[i];
            if (target.Group != GatewayApi.Group || target.Kind != "Gateway")
            {
                problems.Add($"spec.targetRefs[{i}]: {RouteAttacher.GroupKind(target.Group, target.Kind)} is not a supported target; only Gateway (with an optional sectionName for one listener) is");
            }
        }

        foreach (var field in ctp.UnsupportedFields)
        {
            problems.Add($"{field}: is not supported on TCP listeners (FsmGateway does not terminate TLS or speak HTTP)");
        }

        if (ctp.HasTlsHandshakeTimeout)
        {
            problems.Add("spec.timeout.tcp.tlsHandshakeTimeout: is not supported (FsmGateway passes TLS through without a handshake of its own)");
        }

        if (ctp.TcpKeepalive is { } keepalive)
        {
            if (keepalive.Probes is { } probes && probes is < 1 or > MaxKeepaliveProbes)
            {
                problems.Add($"spec.tcpKeepalive.probes: {probes} is out of range 1..{MaxKeepaliveProbes}");
            }

            KeepaliveTime(keepalive.IdleTime, "spec.tcpKeepalive.idleTime", problems);
            KeepaliveTime(keepalive.Interval, "spec.tcpKeepalive.interval", problems);
        }

        Positive(ctp.IdleTimeout, "spec.timeout.tcp.idleTimeout", problems);
        Positive(ctp.ConnectionInspectionTimeout, "spec.timeout.tcp.connectionInspectionTimeout", problems);
        Positive(ctp.HalfClosedTimeout, "spec.timeout.tcp.halfClosedTimeout", problems);
        Positive(ctp.MaxConnectionDuration, "spec.connection.maxConnectionDuration", problems);
        if (ctp.BufferLimit is { } buffer && buffer is < MinBufferLimit or > MaxBufferLimit)
        {
            problems.Add($"spec.connection.bufferLimit: {buffer} is out of range {MinBufferLimit}..{MaxBufferLimit} bytes (1Ki..1Gi)");
        }
    }

    private static void Positive(TimeSpan? value, string field, List<string> problems)
    {
        if (value == TimeSpan.Zero)
        {
            problems.Add($"{field}: must be more than 0s");
        }
    }

    private static void KeepaliveTime(TimeSpan? value, string field, List<string> problems)
    {
        if (value is not { } time)
        {
            return;
        }

        if (time < TimeSpan.FromSeconds(1) || time > TimeSpan.FromSeconds(MaxKeepaliveSeconds) || time.Ticks % TimeSpan.TicksPerSecond != 0)
        {
            problems.Add($"{field}: {Format(time)} must be whole seconds from 1s to {MaxKeepaliveSeconds}s (the socket option takes seconds)");
        }
    }

    internal static string Format(TimeSpan time) =>
        time.Ticks % TimeSpan.TicksPerSecond == 0 ? $"{(long)time.TotalSeconds}s" : $"{(long)time.TotalMilliseconds}ms";

    private static bool IsPrime(long n)
    {
        if (n < 2)
        {
            return false;
        }

        for (long d = 2; d * d <= n; d++)
        {
            if (n % d == 0)
            {
                return false;
            }
        }

        return true;
    }
}

/// <summary>Envoy Gateway's defaults for <c>healthCheck.active</c>.</summary>
internal static class ActiveDefaults
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(3);
    public const int UnhealthyThreshold = 3;
    public const int HealthyThreshold = 1;
}
