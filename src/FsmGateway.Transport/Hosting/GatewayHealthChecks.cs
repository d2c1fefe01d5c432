using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace FsmGateway.Transport.Hosting;

/// <summary>
/// The gateway's health checks, which <c>AddFsmGateway</c> registers: map them by tag, e.g.
/// <c>app.MapHealthChecks("/healthz", new() { Predicate = c =&gt; c.Tags.Contains(GatewayHealthChecks.LiveTag) })</c>.
/// </summary>
public static class GatewayHealthChecks
{
    /// <summary>The tag of liveness checks (<c>config-pipeline</c>): unhealthy once no further config can be applied, so restart the process.</summary>
    public const string LiveTag = "live";

    /// <summary>
    /// The tag of readiness checks (<c>serving</c>, and the Kubernetes controller's <c>kubernetes-api</c>): unhealthy,
    /// with the reason, until the first config is served and whenever nothing is (no listener bound).
    /// </summary>
    public const string ReadyTag = "ready";

    /// <summary>The name of the liveness check.</summary>
    public const string ConfigPipeline = "config-pipeline";

    /// <summary>The name of the readiness check of <see cref="GatewayRuntimeState"/>.</summary>
    public const string Serving = "serving";
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
