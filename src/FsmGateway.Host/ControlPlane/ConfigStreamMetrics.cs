using System.Diagnostics.Metrics;
using Grpc.Core;

namespace FsmGateway.Host.ControlPlane;

/// <summary>The config stream's instruments on the controller (meter <c>FsmGateway.ControlPlane</c>).</summary>
internal sealed class ConfigStreamMetrics
{
    public const string MeterName = "FsmGateway.ControlPlane";

    private readonly Counter<long> _refusals;

    public ConfigStreamMetrics(IMeterFactory? meterFactory)
    {
        var meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _refusals = meter.CreateCounter<long>("fsmgateway.controller.stream.refusals", "{stream}", "Config streams refused before anything was sent, by reason (unauthenticated: no valid token; permission_denied: a ServiceAccount other than the Gateway namespace's data-plane one; unavailable: the token could not be reviewed).");
    }

    public void Refused(StatusCode code) => _refusals.Add(1, new KeyValuePair<string, object?>("reason", code switch
    {
        StatusCode.Unauthenticated => "unauthenticated",
        StatusCode.PermissionDenied => "permission_denied",
        StatusCode.Unavailable => "unavailable",
        _ => "other",
    }));
}
