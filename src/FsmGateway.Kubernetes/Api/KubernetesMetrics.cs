using System.Diagnostics.Metrics;

namespace FsmGateway.Kubernetes.Api;

/// <summary>
/// The instruments of the Kubernetes list-watch loops and of the controller's writes, on the meter
/// <c>FsmGateway.Kubernetes</c> (with <see cref="ApiServerReachability"/>'s and the leader gauge). Every label is
/// bounded: a Kubernetes kind the gateway watches or writes, and a reason, outcome or action from a fixed set.
/// </summary>
internal sealed class KubernetesMetrics
{
    /// <summary>Why a watch was reopened from the last resourceVersion (no list).</summary>
    public const string WatchEnded = "ended";

    /// <summary>Why a watch was reopened from the last resourceVersion (no list).</summary>
    public const string WatchSilent = "silent";

    /// <summary>Why a watch was reopened from the last resourceVersion (no list).</summary>
    public const string WatchFailed = "failed";

    /// <summary>Why a kind was listed again after its first list.</summary>
    public const string RelistExpired = "expired";

    /// <summary>Why a kind was listed again after its first list.</summary>
    public const string RelistErrorEvent = "error_event";

    /// <summary>Why a kind was listed again after its first list.</summary>
    public const string RelistFailed = "failed";

    /// <summary>Why a kind was listed again after its first list.</summary>
    public const string RelistAppeared = "appeared";

    /// <summary>How a status write (a PUT of the status subresource) ended.</summary>
    public const string WriteOk = "ok";

    /// <summary>How a status write (a PUT of the status subresource) ended.</summary>
    public const string WriteConflict = "conflict";

    /// <summary>How a status write (a PUT of the status subresource) ended.</summary>
    public const string WriteError = "error";

    /// <summary>What provisioning did to an object.</summary>
    public const string Created = "created";

    /// <summary>What provisioning did to an object.</summary>
    public const string Updated = "updated";

    /// <summary>What provisioning did to an object.</summary>
    public const string Deleted = "deleted";

    private readonly Counter<long> _watchRestarts;
    private readonly Counter<long> _relists;
    private readonly Counter<long> _statusWrites;
    private readonly Counter<long> _provisioning;

    public KubernetesMetrics(IMeterFactory? meterFactory)
    {
        var meter = meterFactory?.Create(ApiServerReachability.MeterName) ?? new Meter(ApiServerReachability.MeterName);
        _watchRestarts = meter.CreateCounter<long>("fsmgateway.kubernetes.watch.restarts", "{watch}", "Watches reopened from the last resourceVersion, without a list, by kind and reason (ended: closed by the server; silent: no event or bookmark for too long; failed: the request or stream failed).");
        _relists = meter.CreateCounter<long>("fsmgateway.kubernetes.watch.relists", "{list}", "Full lists after the first one, by kind and reason (expired: 410 Gone; error_event: the watch sent an ERROR event; failed: a request failed; appeared: the kind is served again).");
        _statusWrites = meter.CreateCounter<long>("fsmgateway.controller.status.writes", "{request}", "Status writes (PUT of the status subresource) by kind and outcome (ok, conflict: 409, error).");
        _provisioning = meter.CreateCounter<long>("fsmgateway.controller.provisioning.actions", "{object}", "Data-plane objects created, updated or deleted by the controller, by kind.");
    }

    public void WatchRestarted(string kind, string reason) =>
        _watchRestarts.Add(1, new KeyValuePair<string, object?>("kind", kind), new KeyValuePair<string, object?>("reason", reason));

    public void Relisted(string kind, string reason) =>
        _relists.Add(1, new KeyValuePair<string, object?>("kind", kind), new KeyValuePair<string, object?>("reason", reason));

    public void StatusWritten(string kind, string outcome) =>
        _statusWrites.Add(1, new KeyValuePair<string, object?>("kind", kind), new KeyValuePair<string, object?>("outcome", outcome));

    public void Provisioned(string kind, string action) =>
        _provisioning.Add(1, new KeyValuePair<string, object?>("kind", kind), new KeyValuePair<string, object?>("action", action));
}
