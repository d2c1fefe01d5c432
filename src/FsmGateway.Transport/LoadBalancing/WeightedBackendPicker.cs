using FsmGateway.Routing;
using FsmGateway.Transport.Concurrency;

namespace FsmGateway.Transport.LoadBalancing;

/// <summary>
/// Chooses a backend per connection in proportion to the weights, including backends that cannot serve: their share
/// is kept, and those connections are closed (the Gateway API's rule). Smooth weighted round robin, as nginx does it:
/// exact shares over every cycle of the total weight, interleaved rather than in runs.
/// </summary>
/// <remarks>
/// Without a lock: one cycle of the sequence (total weight / the weights' greatest common divisor picks) is computed
/// once, and each stripe (<see cref="Stripes"/>: in effect each core) walks it with a cursor of its own, so threads on
/// different cores touch different cache lines. Every stripe's picks are the exact sequence, so shares are exact over
/// every whole cycle per stripe (with several stripes, total shares are off by less than one cycle per stripe).
/// Cycles longer than <see cref="MaxCycle"/> (weights like 999,999 and 1,000,000) are walked with nginx's running
/// state instead, kept per stripe under a lock of the stripe's own.
/// </remarks>
internal sealed class WeightedBackendPicker
{
    /// <summary>The longest cycle kept as a table (16 KiB of indexes).</summary>
    public const int MaxCycle = 4096;

    private readonly RouteBackend[] _backends;
    private readonly int[]? _cycle;
    private readonly long[] _cursors;
    private readonly RunningState[]? _running;

    public WeightedBackendPicker(IReadOnlyList<RouteBackend> backends)
    {
        _backends = [.. backends.Where(static b => b.Weight > 0)];
        _cursors = new long[(Stripes.Count + 2) * Stripes.Stride]; // a block of padding before and after: no other object on their lines
        if (_backends.Length < 2)
        {
            return;
        }

        var gcd = _backends.Aggregate(0L, static (g, b) => Gcd(g, b.Weight));
        var weights = _backends.Select(b => b.Weight / gcd).ToArray();
        var total = weights.Sum();
        if (total <= MaxCycle)
        {
            var state = new RunningState(weights);
            _cycle = new int[total];
            for (var i = 0; i < _cycle.Length; i++)
            {
                _cycle[i] = state.Next();
            }
        }
        else
        {
            _running = [.. Enumerable.Range(0, Stripes.Count).Select(_ => new RunningState(weights))];
        }
    }

    /// <summary>The next backend, or null when no backend has weight (every connection is closed).</summary>
    public RouteBackend? Next()
    {
        if (_backends.Length < 2)
        {
            return _backends.Length == 0 ? null : _backends[0];
        }

        var stripe = Stripes.Current;
        if (_cycle is { } cycle)
        {
            var position = (ulong)Interlocked.Increment(ref _cursors[(stripe + 1) * Stripes.Stride]) - 1;
            return _backends[cycle[(int)(position % (ulong)cycle.Length)]];
        }

        var running = _running![stripe];
        lock (running.Gate)
        {
            return _backends[running.Next()];
        }
    }

    private static long Gcd(long a, long b)
    {
        while (b != 0)
        {
            (a, b) = (b, a % b);
        }

        return a;
    }

    /// <summary>nginx's smooth weighted round robin: each pick adds every weight to its running value, takes the highest, and takes the total from it.</summary>
    private sealed class RunningState(long[] weights)
    {
        private readonly long[] _current = new long[weights.Length];
        private readonly long _total = weights.Sum();

        public Lock Gate { get; } = new();

        public int Next()
        {
            var best = 0;
            for (var i = 0; i < weights.Length; i++)
            {
                _current[i] += weights[i];
                if (_current[i] > _current[best])
                {
                    best = i;
                }
            }

            _current[best] -= _total;
            return best;
        }
    }
}
