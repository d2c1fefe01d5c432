using System.Reactive.Concurrency;
using System.Reactive.Disposables;
using System.Reactive.Linq;
using FsmGateway.Resources;

namespace FsmGateway.Configuration;

/// <summary>
/// One source's events, made safe to merge: the stream never errs and never completes. A source that faults (its
/// events end in <c>OnError</c>, or reading or subscribing to them throws) is reported and subscribed again after a
/// back-off, keeping its last contents meanwhile. What it sends after the fault until it syncs is folded into one
/// <see cref="ConfigEvent.SourceReset"/>, so objects deleted while it was down disappear too. A source that
/// completes keeps its last contents.
/// </summary>
internal static class FaultContainedSource
{
    /// <summary>The first resubscription waits this long; each further fault before a sync doubles it.</summary>
    internal static readonly TimeSpan FirstRetry = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between resubscriptions.</summary>
    internal static readonly TimeSpan MaxRetry = TimeSpan.FromSeconds(30);

    public static IObservable<ConfigEvent> Events(IConfigSource source, string name, IScheduler scheduler, Action<ConfigSourceFault> faulted) =>
        Observable.Create<ConfigEvent>(observer =>
        {
            var gate = new object();
            var subscription = new SerialDisposable();
            var retry = new SerialDisposable();
            var disposed = false;
            var faults = 0;
            Dictionary<ResourceKey, Resource>? resync = null;

            void Subscribe()
            {
                lock (gate)
                {
                    if (disposed)
                    {
                        return;
                    }

                    resync = faults > 0 ? [] : null;
                }

                try
                {
                    var events = source.Events;
                    var inner = new SingleAssignmentDisposable();
                    subscription.Disposable = inner;
                    inner.Disposable = events.Subscribe(OnNext, Fault, static () => { });
                }
                catch (Exception e)
                {
                    Fault(e);
                }
            }

            void OnNext(ConfigEvent change)
            {
                lock (gate)
                {
                    if (disposed)
                    {
                        return;
                    }

                    if (resync is null)
                    {
                        observer.OnNext(change);
                        return;
                    }

                    switch (change)
                    {
                        case ConfigEvent.Upserted upserted:
                            resync[upserted.Resource.Key] = upserted.Resource;
                            return;
                        case ConfigEvent.Deleted deleted:
                            resync.Remove(deleted.Key);
                            return;
                        case ConfigEvent.SourceSynced:
                            var contents = resync.Values.ToArray();
                            (resync, faults) = (null, 0);
                            observer.OnNext(new ConfigEvent.SourceReset(name, [.. contents]));
                            return;
                        default:
                            (resync, faults) = (null, 0);
                            observer.OnNext(change);
                            return;
                    }
                }
            }

            void Fault(Exception exception)
            {
                TimeSpan delay;
                lock (gate)
                {
                    if (disposed)
                    {
                        return;
                    }

                    delay = TimeSpan.FromTicks(Math.Min(FirstRetry.Ticks << Math.Min(faults, 16), MaxRetry.Ticks));
                    faults++;
                }

                Report(faulted, new ConfigSourceFault(name, exception, delay));
                retry.Disposable = scheduler.Schedule(delay, Subscribe);
            }

            Subscribe();
            return Disposable.Create(() =>
            {
                lock (gate)
                {
                    disposed = true;
                }

                retry.Dispose();
                subscription.Dispose();
            });
        });

    /// <summary>Tells <paramref name="faulted"/>; what the callback itself throws must not end the pipeline either.</summary>
    internal static void Report(Action<ConfigSourceFault> faulted, ConfigSourceFault fault)
    {
        try
        {
            faulted(fault);
        }
#pragma warning disable CA1031 // The reporting hook is the last place a fault can go; it must not take the pipeline down.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }
}
