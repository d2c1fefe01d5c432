using FsmGateway.Routing;

namespace FsmGateway.Transport.LoadBalancing;

/// <summary>
/// Chooses a backend per connection in proportion to the weights, including backends that cannot serve: their share
/// is kept, and those connections are closed (the Gateway API's rule). Smooth weighted round robin, as nginx does it:
/// exact shares over every cycle of the total weight, interleaved rather than in runs.
/// </summary>
internal sealed class WeightedBackendPicker
{
    private readonly RouteBackend[] _backends;
    private readonly long[] _current;
    private readonly long _total;
    private readonly Lock _lock = new();

    public WeightedBackendPicker(IReadOnlyList<RouteBackend> backends)
    {
        _backends = [.. backends.Where(static b => b.Weight > 0)];
        _current = new long[_backends.Length];
        _total = _backends.Sum(static b => (long)b.Weight);
    }

    /// <summary>The next backend, or null when no backend has weight (every connection is closed).</summary>
    public RouteBackend? Next()
    {
        if (_backends.Length == 0)
        {
            return null;
        }

        if (_backends.Length == 1)
        {
            return _backends[0];
        }

        lock (_lock)
        {
            var best = 0;
            for (var i = 0; i < _backends.Length; i++)
            {
                _current[i] += _backends[i].Weight;
                if (_current[i] > _current[best])
                {
                    best = i;
                }
            }

            _current[best] -= _total;
            return _backends[best];
        }
    }
}
