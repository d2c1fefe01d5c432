using System.Reactive.Concurrency;
using System.Reactive.Disposables;
using System.Reactive.Linq;

namespace FsmGateway.Reactive;

/// <summary>A debounce that cannot be starved: config that flaps (EndpointSlices) still gets applied.</summary>
public static class DebounceWithMaxDelayExtensions
{
    /// <summary>
    /// Emits the latest value once <paramref name="quiet"/> has passed without a new one, or once
    /// <paramref name="maxDelay"/> has passed since the first value of the burst, whichever comes first.
    /// Rx's <c>Throttle</c> alone never emits for a source that never pauses. A pending value is flushed on completion.
    /// </summary>
    /// <typeparam name="T">The value type.</typeparam>
    /// <param name="source">The values.</param>
    /// <param name="quiet">How long the source must pause.</param>
    /// <param name="maxDelay">The longest a value may wait.</param>
    /// <param name="scheduler">The scheduler timers run on (virtual time in tests).</param>
    /// <returns>The debounced values.</returns>
    public static IObservable<T> DebounceWithMaxDelay<T>(this IObservable<T> source, TimeSpan quiet, TimeSpan maxDelay, IScheduler scheduler)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(scheduler);
        return Observable.Create<T>(observer =>
        {
            var gate = new object();
            var quietTimer = new SerialDisposable();
            var maxTimer = new SerialDisposable();
            var pending = false;
            var burst = 0L;
            T latest = default!;

            void Flush(long id)
            {
                lock (gate)
                {
                    if (!pending || id != burst)
                    {
                        return;
                    }

                    pending = false;
                    burst++;
                    quietTimer.Disposable = Disposable.Empty;
                    maxTimer.Disposable = Disposable.Empty;
                    observer.OnNext(latest);
                }
            }

            var subscription = source.Subscribe(
                value =>
                {
                    lock (gate)
                    {
                        latest = value;
                        var id = burst;
                        if (!pending)
                        {
                            pending = true;
                            maxTimer.Disposable = scheduler.Schedule(maxDelay, () => Flush(id));
                        }

                        quietTimer.Disposable = scheduler.Schedule(quiet, () => Flush(id));
                    }
                },
                error =>
                {
                    lock (gate)
                    {
                        observer.OnError(error);
                    }
                },
                () =>
                {
                    lock (gate)
                    {
                        if (pending)
                        {
                            pending = false;
                            observer.OnNext(latest);
                        }

                        observer.OnCompleted();
                    }
                });

            return new CompositeDisposable(subscription, quietTimer, maxTimer);
        });
    }
}
