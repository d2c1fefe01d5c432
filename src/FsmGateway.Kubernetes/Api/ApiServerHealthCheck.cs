using System.Globalization;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace FsmGateway.Kubernetes.Api;

/// <summary>The controller's readiness check (tag <c>ready</c>): unhealthy while the API server does not answer.</summary>
internal sealed class ApiServerHealthCheck(ApiServerReachability reachability) : IHealthCheck
{
    /// <summary>The check's name in the health report.</summary>
    public const string Name = "kubernetes-api";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(reachability.Outage is { } outage
            ? HealthCheckResult.Unhealthy(string.Create(CultureInfo.InvariantCulture, $"the Kubernetes API server has not answered since {outage.Since:HH:mm:ss}Z: {outage.Failure}; retrying with back-off"))
            : HealthCheckResult.Healthy("the Kubernetes API server answers"));
}
