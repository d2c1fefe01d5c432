namespace FsmGateway.Transport.ControlPlane;

/// <summary>
/// How long a data plane waits before connecting to a controller again: <c>min</c> after the first failure, doubled
/// per failure up to <c>max</c>, each wait drawn uniformly from its upper half ("equal jitter"), so data planes that
/// lost a controller together do not all come back at one instant. <see cref="Reset"/> once a stream has synced.
/// </summary>
internal sealed class ReconnectBackoff(TimeSpan min, TimeSpan max, Func<double> random)
{
    private int _failures;

    public ReconnectBackoff(TimeSpan min, TimeSpan max)
        : this(min, max, Random.Shared.NextDouble)
    {
    }

    /// <summary>Failures since the last <see cref="Reset"/>.</summary>
    public int Failures => _failures;

    /// <summary>Counts a failure and returns the wait before the next attempt.</summary>
    public TimeSpan Next()
    {
        var exponent = Math.Min(_failures++, 30);
        var ceiling = min.Ticks * Math.Pow(2, exponent);
        var capped = Math.Min(ceiling, max.Ticks);
        return TimeSpan.FromTicks((long)((capped / 2) + (capped / 2 * random())));
    }

    /// <summary>A stream synced: the next failure waits about <c>min</c> again.</summary>
    public void Reset() => _failures = 0;
}
