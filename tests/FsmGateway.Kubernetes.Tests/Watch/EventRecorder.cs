using FsmGateway.Configuration;

namespace FsmGateway.Kubernetes.Tests.Watch;

/// <summary>Records a config source's events and waits, with a generous bound, for one that matches.</summary>
internal sealed class EventRecorder : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);
    private readonly List<ConfigEvent> _events = [];
    private readonly Lock _gate = new();
    private readonly IDisposable _subscription;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public EventRecorder(IConfigSource source)
    {
        _subscription = source.Events.Subscribe(e =>
        {
            lock (_gate)
            {
                _events.Add(e);
                _changed.TrySetResult();
                _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        });
    }

    public IReadOnlyList<ConfigEvent> Events
    {
        get
        {
            lock (_gate)
            {
                return [.. _events];
            }
        }
    }

    /// <summary>Waits for an event after position <paramref name="from"/> that matches; returns its position.</summary>
    public async Task<int> WaitForAsync(Func<ConfigEvent, bool> match, int from = 0, string? what = null)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                for (var i = from; i < _events.Count; i++)
                {
                    if (match(_events[i]))
                    {
                        return i;
                    }
                }

                changed = _changed.Task;
            }

            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || await Task.WhenAny(changed, Task.Delay(left)) != changed)
            {
                throw new TimeoutException($"No event {what} within {Bound.TotalSeconds} s; got: {string.Join(", ", Events.Skip(from))}");
            }
        }
    }

    public void Dispose() => _subscription.Dispose();
}
