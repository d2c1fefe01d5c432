namespace FsmGateway.Transport.Tests.TestSupport;

/// <summary>Failure guards: generous deadlines that only a broken proxy (or a hung test) ever reaches.</summary>
internal static class Guard
{
    /// <summary>
    /// The whole-test limit, in milliseconds: a test that hangs (a drain that never ends, a dispose that waits
    /// forever) fails here instead of stalling the run. Enforced by xunit because the tests run one at a time.
    /// </summary>
    public const int TestTimeout = 90_000;

    /// <summary>The default deadline for one step of a test.</summary>
    public static readonly TimeSpan Step = TimeSpan.FromSeconds(15);

    /// <summary>A token that cancels after <paramref name="seconds"/>.</summary>
    /// <param name="seconds">The deadline.</param>
    /// <returns>The source; dispose it.</returns>
    public static CancellationTokenSource Deadline(double seconds = 30) => new(TimeSpan.FromSeconds(seconds));

    /// <summary>Waits for <paramref name="task"/>, failing with a message naming <paramref name="what"/> past the deadline.</summary>
    /// <param name="task">The task.</param>
    /// <param name="what">What is being waited for.</param>
    /// <param name="seconds">The deadline; <see cref="Step"/> when null.</param>
    /// <returns>A task completing with <paramref name="task"/>.</returns>
    public static async Task Within(this Task task, string what, double? seconds = null)
    {
        var limit = seconds is { } s ? TimeSpan.FromSeconds(s) : Step;
        try
        {
            await task.WaitAsync(limit);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"{what} did not complete within {limit.TotalSeconds} s");
        }
    }

    /// <summary>Waits for <paramref name="task"/>, failing with a message naming <paramref name="what"/> past the deadline.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="task">The task.</param>
    /// <param name="what">What is being waited for.</param>
    /// <param name="seconds">The deadline; <see cref="Step"/> when null.</param>
    /// <returns>The task's result.</returns>
    public static async Task<T> Within<T>(this Task<T> task, string what, double? seconds = null)
    {
        var limit = seconds is { } s ? TimeSpan.FromSeconds(s) : Step;
        try
        {
            return await task.WaitAsync(limit);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"{what} did not complete within {limit.TotalSeconds} s");
        }
    }

    /// <summary>Polls <paramref name="condition"/> until it holds or the deadline passes.</summary>
    /// <param name="condition">What must become true.</param>
    /// <param name="seconds">The deadline.</param>
    /// <returns>Whether it became true.</returns>
    public static async Task<bool> Eventually(Func<bool> condition, double seconds = 15)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            await Task.Delay(20);
        }

        return true;
    }
}
