using FsmGateway.Kubernetes;
using FsmGateway.Transport.Hosting;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace FsmGateway.Host.Admin;

/// <summary>The tags that sort health checks into the liveness (<c>/healthz</c>) and readiness (<c>/readyz</c>) probes.</summary>
internal static class HealthTags
{
    public const string Live = "live";
    public const string Ready = KubernetesBuilderExtensions.ReadinessTag;
}

/// <summary>
/// Liveness: the config pipeline runs. Once it has ended no further config can ever be applied, so the process must
/// be restarted (Kubernetes does that when the liveness probe fails); what is serving keeps serving until then.
/// </summary>
internal sealed class ConfigPipelineHealthCheck(GatewayRuntimeState state) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(state.PipelineFailure is { } failure
            ? HealthCheckResult.Unhealthy($"the config pipeline ended ({failure}); no further config can be applied")
            : HealthCheckResult.Healthy());
}

/// <summary>
/// Readiness: every source has synced, and the process serves what it should (a listener bound, unless it serves no
/// traffic by design, as the controller does). Unready says why: no Gateway, a Gateway not accepted, no listener bound.
/// </summary>
internal sealed class ServingHealthCheck(GatewayRuntimeState state) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(state.NotReadyReason is { } reason
            ? HealthCheckResult.Unhealthy(reason)
            : HealthCheckResult.Healthy());
}
