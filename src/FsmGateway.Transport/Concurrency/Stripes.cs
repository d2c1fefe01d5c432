using System.Numerics;

namespace FsmGateway.Transport.Concurrency;

/// <summary>
/// Spreads what every connection writes (counters, the connection registry, round-robin cursors) over stripes, so that
/// threads on different cores write different cache lines instead of contending for one. Each thread is given a stripe
/// the first time it asks, in turn, and keeps it: one thread always writes the same stripe (a single-threaded
/// sequence stays deterministic), and threads that take theirs one after another get different ones (the gateway's
/// socket and thread-pool threads, started together, spread over the stripes). Readers sum the stripes.
/// </summary>
internal static class Stripes
{
    /// <summary>Longs per cache-line pair (128 bytes: adjacent-line prefetch pulls lines in twos on x64).</summary>
    public const int Stride = 16;

    /// <summary>The number of stripes: the processor count rounded up to a power of two, at least 2, at most 64.</summary>
    public static readonly int Count = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Clamp(Environment.ProcessorCount, 2, 64));

    private static int s_next = -1;

    [ThreadStatic]
    private static int t_stripe; // stripe + 1; 0 for a thread that has none yet

    /// <summary>The calling thread's stripe, 0 to <see cref="Count"/> - 1.</summary>
    public static int Current
    {
        get
        {
            var stripe = t_stripe - 1;
            return stripe >= 0 ? stripe : Assign();
        }
    }

    private static int Assign()
    {
        var stripe = (int)((uint)Interlocked.Increment(ref s_next) % (uint)Count);
        t_stripe = stripe + 1;
        return stripe;
    }
}

/// <summary>
/// A set of counters, each kept per stripe (<see cref="Stripes"/>): an add touches the calling thread's stripe only,
/// a read sums every stripe. A stripe's counters share its cache lines, which only threads of that stripe write.
/// Sums are exact once the adds have happened; a read racing with adds sees each add or not, as with one counter.
/// </summary>
internal sealed class StripedCounters
{
    private readonly long[] _cells;
    private readonly int _stride;

    /// <summary>Creates <paramref name="counters"/> counters at 0.</summary>
    public StripedCounters(int counters)
    {
        // Each stripe's row is a whole number of 128-byte blocks plus one block of padding, and the rows start one
        // block into the array: no row shares a line with another row, with the array's header, or with whatever
        // object lies before the array (which other cores may be reading).
        _stride = ((counters + Stripes.Stride - 1) / Stripes.Stride * Stripes.Stride) + Stripes.Stride;
        _cells = new long[Stripes.Stride + (_stride * Stripes.Count)];
        Length = counters;
    }

    /// <summary>How many counters there are.</summary>
    public int Length { get; }

    /// <summary>Adds <paramref name="delta"/> to counter <paramref name="counter"/>.</summary>
    public void Add(int counter, long delta) => Interlocked.Add(ref _cells[Stripes.Stride + (Stripes.Current * _stride) + counter], delta);

    /// <summary>Adds 1 to counter <paramref name="counter"/>.</summary>
    public void Increment(int counter) => Interlocked.Increment(ref _cells[Stripes.Stride + (Stripes.Current * _stride) + counter]);

    /// <summary>Subtracts 1 from counter <paramref name="counter"/>.</summary>
    public void Decrement(int counter) => Interlocked.Decrement(ref _cells[Stripes.Stride + (Stripes.Current * _stride) + counter]);

    /// <summary>The sum of counter <paramref name="counter"/> over every stripe.</summary>
    public long Sum(int counter)
    {
        long sum = 0;
        for (var i = Stripes.Stride + counter; i < _cells.Length; i += _stride)
        {
            sum += Volatile.Read(ref _cells[i]);
        }

        return sum;
    }
}
