namespace FsmGateway.Kubernetes.Api;

/// <summary>
/// Exponential back-off for loops that retry for as long as the process lives: the first delay is
/// <c>min</c>, doubled per failure up to <c>max</c>, with ±20 % jitter so replicas that lost the API server together
/// do not come back in lockstep; <see cref="Reset"/> after a success.
/// </summary>
internal sealed class Backoff(TimeSpan min, TimeSpan max)
{
    private int _failures;

    /// <summary>Failures since the last <see cref="Reset"/>.</summary>
    public int Failures => _failures;

    /// <summary>Counts a failure and returns how long to wait before the next attempt.</summary>
    public TimeSpan Next()
    {
        var exponent = Math.Min(_failures++, 16);
        var delay = min * Math.Pow(2, exponent);
        var capped = delay < max ? delay : max;
        return capped * (0.8 + (Random.Shared.NextDouble() * 0.4));
    }

    /// <summary>A success: the next failure waits <c>min</c> again.</summary>
    public void Reset() => _failures = 0;
}
