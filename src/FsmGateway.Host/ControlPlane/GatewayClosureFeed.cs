using System.Collections.Immutable;
using System.Threading.Channels;
using FsmGateway.Configuration;
using FsmGateway.Routing;
using FsmGateway.Transport.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Resource = FsmGateway.Resources.Resource;
using ResourceKey = FsmGateway.Resources.ResourceKey;

namespace FsmGateway.Host.ControlPlane;

/// <summary>
/// The dependency closures of the Gateways that data planes subscribe to, kept for all of the controller's streams at
/// once: each applied snapshot moves one <see cref="GatewayClosureTracker"/> (one index of the cluster, updated from
/// the changed keys), the Gateways the change can reach get their closure computed again from that index, and only the
/// streams of a Gateway whose closure changed are woken. A stream of any other Gateway does no work at all for the
/// change. Several streams of one Gateway (its data plane's replicas) share one computation.
/// </summary>
internal sealed partial class GatewayClosureFeed : IDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<ResourceKey, Feed> _feeds = [];
    private readonly string? _implicitGatewayClassName;
    private readonly string _controllerName;
    private readonly ILogger _logger;
    private readonly IDisposable _subscription;
    private GatewayClosureTracker _tracker;

    /// <param name="applied">The applied snapshots (<see cref="GatewayRuntimeState.AppliedSnapshots"/>), one at a time.</param>
    /// <param name="gatewayOptions">The implicit GatewayClass, as the compiler has it.</param>
    /// <param name="controllerOptions">The controller name.</param>
    /// <param name="logger">Where a failure to follow is told.</param>
    public GatewayClosureFeed(IObservable<ConfigSnapshot> applied, IOptions<FsmGatewayOptions> gatewayOptions, IOptions<GatewayControllerOptions> controllerOptions, ILogger<GatewayClosureFeed> logger)
    {
        _implicitGatewayClassName = gatewayOptions.Value.ImplicitGatewayClassName;
        _controllerName = controllerOptions.Value.ControllerName;
        _logger = logger;
        _tracker = new GatewayClosureTracker(_implicitGatewayClassName, _controllerName);
        _subscription = applied.Subscribe(OnApplied);
    }

    /// <summary>
    /// Follows <paramref name="gateway"/>'s closure: the current one at once (once a snapshot has been applied), then
    /// each one that differs from the last, newest only (a reader that falls behind skips to the latest).
    /// </summary>
    public Subscription Subscribe(ResourceKey gateway)
    {
        var updates = Channel.CreateBounded<ClosureUpdate>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true, SingleWriter = true });
        lock (_gate)
        {
            if (!_feeds.TryGetValue(gateway, out var feed))
            {
                _feeds[gateway] = feed = new Feed();
                if (_tracker.Snapshot is { } snapshot)
                {
                    feed.Latest = new ClosureUpdate(snapshot.Revision, _tracker.Of(gateway));
                }
            }

            feed.Subscribers.Add(updates.Writer);
            if (feed.Latest is { } latest)
            {
                updates.Writer.TryWrite(latest);
            }
        }

        return new Subscription(this, gateway, updates);
    }

    public void Dispose() => _subscription.Dispose();

    private void Unsubscribe(ResourceKey gateway, ChannelWriter<ClosureUpdate> writer)
    {
        lock (_gate)
        {
            if (_feeds.TryGetValue(gateway, out var feed) && feed.Subscribers.Remove(writer) && feed.Subscribers.Count == 0)
            {
                _feeds.Remove(gateway);
            }
        }

        writer.TryComplete();
    }

    private void OnApplied(ConfigSnapshot snapshot)
    {
        lock (_gate)
        {
            try
            {
                // Null: the change may reach any Gateway. A pass over the followed Gateways is a hash lookup each.
                var reached = _tracker.Advance(snapshot);
                foreach (var (gateway, feed) in _feeds)
                {
                    if (reached is null || reached.Contains(gateway))
                    {
                        Refresh(gateway, feed, snapshot);
                    }
                }
            }
#pragma warning disable CA1031 // A fault here must not end the subscription to applied snapshots: start over from the next one.
            catch (Exception e)
#pragma warning restore CA1031
            {
                LogFailed(_logger, ErrorText.Of(e));
                LogFailedStack(_logger, e);
                _tracker = new GatewayClosureTracker(_implicitGatewayClassName, _controllerName);
            }
        }
    }

    private void Refresh(ResourceKey gateway, Feed feed, ConfigSnapshot snapshot)
    {
        var closure = _tracker.Of(gateway);
        if (feed.Latest is { } latest && SameObjects(latest.Closure, closure))
        {
            return;
        }

        feed.Latest = new ClosureUpdate(snapshot.Revision, closure);
        foreach (var subscriber in feed.Subscribers)
        {
            subscriber.TryWrite(feed.Latest);
        }
    }

    private static bool SameObjects(ImmutableSortedDictionary<ResourceKey, Resource> was, ImmutableSortedDictionary<ResourceKey, Resource> now)
    {
        if (ReferenceEquals(was, now))
        {
            return true;
        }

        if (was.Count != now.Count)
        {
            return false;
        }

        foreach (var (key, resource) in now)
        {
            if (!was.TryGetValue(key, out var held) || !ReferenceEquals(held, resource))
            {
                return false;
            }
        }

        return true;
    }

    [LoggerMessage(1, LogLevel.Error, "Config stream: following the applied config failed ({Error}); every stream's closure is computed again from the next applied config")]
    private static partial void LogFailed(ILogger logger, string error);

    [LoggerMessage(2, LogLevel.Debug, "Config stream: where following the applied config failed")]
    private static partial void LogFailedStack(ILogger logger, Exception exception);

    /// <summary>A Gateway's closure as of a revision.</summary>
    internal sealed record ClosureUpdate(long Revision, ImmutableSortedDictionary<ResourceKey, Resource> Closure);

    /// <summary>One stream's following of a Gateway's closure; disposing it stops that.</summary>
    internal sealed class Subscription(GatewayClosureFeed owner, ResourceKey gateway, Channel<ClosureUpdate> updates) : IDisposable
    {
        public ChannelReader<ClosureUpdate> Updates => updates.Reader;

        public void Dispose() => owner.Unsubscribe(gateway, updates.Writer);
    }

    private sealed class Feed
    {
        public List<ChannelWriter<ClosureUpdate>> Subscribers { get; } = [];

        public ClosureUpdate? Latest { get; set; }
    }
}
