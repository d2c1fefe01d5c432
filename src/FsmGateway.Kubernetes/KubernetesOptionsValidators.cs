using Microsoft.Extensions.Options;

namespace FsmGateway.Kubernetes;

/// <summary>Checks <see cref="KubernetesOptions"/> at start-up, naming each bad option.</summary>
internal sealed class KubernetesOptionsValidator : IValidateOptions<KubernetesOptions>
{
    public ValidateOptionsResult Validate(string? name, KubernetesOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        Positive(failures, nameof(KubernetesOptions.WatchTimeout), options.WatchTimeout);
        Positive(failures, nameof(KubernetesOptions.WatchInactivityTimeout), options.WatchInactivityTimeout);
        Positive(failures, nameof(KubernetesOptions.MinRetryDelay), options.MinRetryDelay);
        Positive(failures, nameof(KubernetesOptions.MissingKindRetryInterval), options.MissingKindRetryInterval);
        if (options.MaxRetryDelay < options.MinRetryDelay)
        {
            failures.Add($"KubernetesOptions.MaxRetryDelay ({options.MaxRetryDelay}) must be at least KubernetesOptions.MinRetryDelay ({options.MinRetryDelay})");
        }

        if (options.PageSize < 1)
        {
            failures.Add($"KubernetesOptions.PageSize must be at least 1 (is {options.PageSize})");
        }

        if (string.IsNullOrWhiteSpace(options.UserAgent))
        {
            failures.Add("KubernetesOptions.UserAgent must not be empty");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    internal static void Positive(List<string> failures, string option, TimeSpan value, string type = nameof(KubernetesOptions))
    {
        if (value <= TimeSpan.Zero)
        {
            failures.Add($"{type}.{option} must be positive (is {value})");
        }
    }
}

/// <summary>
/// Checks <see cref="KubernetesControllerOptions"/> at start-up, naming each bad option: leader election needs
/// <c>LeaseDuration &gt; RenewDeadline &gt; RetryPeriod &gt; 0</c>, as client-go's elector does.
/// </summary>
internal sealed class KubernetesControllerOptionsValidator : IValidateOptions<KubernetesControllerOptions>
{
    private const string Type = nameof(KubernetesControllerOptions);

    public ValidateOptionsResult Validate(string? name, KubernetesControllerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (options.LeaderElection)
        {
            KubernetesOptionsValidator.Positive(failures, nameof(options.RetryPeriod), options.RetryPeriod, Type);
            if (!(options.LeaseDuration > options.RenewDeadline && options.RenewDeadline > options.RetryPeriod))
            {
                failures.Add($"{Type}: leader election needs LeaseDuration ({options.LeaseDuration}) > RenewDeadline ({options.RenewDeadline}) > RetryPeriod ({options.RetryPeriod})");
            }

            if (string.IsNullOrWhiteSpace(options.LeaseNamespace) || string.IsNullOrWhiteSpace(options.LeaseName) || string.IsNullOrWhiteSpace(options.Identity))
            {
                failures.Add($"{Type}.LeaseNamespace, LeaseName and Identity must not be empty");
            }
        }

        KubernetesOptionsValidator.Positive(failures, nameof(options.ResyncPeriod), options.ResyncPeriod, Type);
        if (options.DataPlaneReplicas < 1)
        {
            failures.Add($"{Type}.DataPlaneReplicas must be at least 1 (is {options.DataPlaneReplicas})");
        }

        if (options.DataPlaneDrainTimeout < TimeSpan.Zero || options.DataPlaneDrainTimeout > TimeSpan.FromHours(1))
        {
            failures.Add($"{Type}.DataPlaneDrainTimeout must be between 0 and 1 h (is {options.DataPlaneDrainTimeout})");
        }

        if (options.DataPlanePreStopDelay < TimeSpan.Zero || options.DataPlanePreStopDelay > TimeSpan.FromMinutes(5))
        {
            failures.Add($"{Type}.DataPlanePreStopDelay must be between 0 and 5 min (is {options.DataPlanePreStopDelay})");
        }

        if (options.DataPlaneImage is { } image && string.IsNullOrWhiteSpace(image))
        {
            failures.Add($"{Type}.DataPlaneImage must be an image reference, or null to provision nothing");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
