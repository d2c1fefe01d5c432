using System.Collections.Immutable;
using FsmGateway.Resources;
using FsmGateway.Status;

namespace FsmGateway.Routing.Compilation;

/// <summary>What the stages learn about one Gateway of ours.</summary>
internal sealed class GatewayState(Gateway gateway)
{
    public Gateway Gateway { get; } = gateway;

    public ResourceKey Key => Gateway.Key;

    /// <summary>A route's <c>Accepted=True</c> when one listener of this Gateway took it, formatted once: most routes attached to it say this.</summary>
    /// <remarks>Read by routes attached on several threads at once: whichever thread makes it first, every thread gets that one.</remarks>
    public FixedCondition AcceptedByOneListener => Volatile.Read(ref _acceptedByOneListener) ?? MakeAcceptedByOneListener();

    private FixedCondition MakeAcceptedByOneListener()
    {
        Interlocked.CompareExchange(ref _acceptedByOneListener, new(ConditionTypes.Accepted, ConditionStatus.True, ConditionReasons.Accepted, $"Accepted by 1 listener of {Gateway.Key}"), null);
        return _acceptedByOneListener;
    }

    private FixedCondition? _acceptedByOneListener;

    public long Generation => Gateway.Metadata.Generation;

    /// <summary>Why the Gateway as a whole is not accepted (reason, message), or null.</summary>
    public (string Reason, string Message)? Rejection { get; set; }

    /// <summary>The IP addresses to bind; empty for every address.</summary>
    public ImmutableArray<string> BindAddresses { get; set; } = [];

    public List<ListenerState> Listeners { get; } = new(gateway.Listeners.Length);

    public bool Accepted => Rejection is null;

    /// <summary>
    /// Two conditions of a route's entry for this Gateway, in a result's order, the array shared with the last route
    /// that had the same two (by reference): routes accepted by one listener, references resolved, share both.
    /// Thread-safe: the last pair and its array are one object, replaced whole.
    /// </summary>
    public EquatableArray<Condition> RouteConditions(Condition accepted, Condition resolvedRefs)
    {
        var last = Volatile.Read(ref _lastRouteConditions);
        if (last is null || !ReferenceEquals(accepted, last.Accepted) || !ReferenceEquals(resolvedRefs, last.ResolvedRefs))
        {
            last = new(accepted, resolvedRefs, Conditions.Sorted(accepted, resolvedRefs));
            Volatile.Write(ref _lastRouteConditions, last);
        }

        return last.Conditions;
    }

    private SharedRouteConditions? _lastRouteConditions;

    private sealed record SharedRouteConditions(Condition Accepted, Condition ResolvedRefs, EquatableArray<Condition> Conditions);
}

/// <summary>What the stages learn about one listener.</summary>
internal sealed class ListenerState(GatewayState owner, Listener listener, int index)
{
    public GatewayState Owner { get; } = owner;

    public Listener Listener { get; } = listener;

    /// <summary>The listener's index in <c>spec.listeners</c>, for messages naming the field.</summary>
    public int Index { get; } = index;

    public string Field => $"spec.listeners[{Index}]";

    /// <summary>Why the listener is not accepted (reason, message), or null.</summary>
    public (string Reason, string Message)? Rejection { get; set; }

    public ImmutableArray<RouteGroupKind> SupportedKinds { get; set; } = [];

    /// <summary>Set when <c>allowedRoutes.kinds</c> named kinds this listener cannot serve.</summary>
    public string? InvalidKindsMessage { get; set; }

    /// <summary>Set when the listener shares its port with another listener or an older Gateway.</summary>
    public string? ConflictMessage { get; set; }

    /// <summary>The routes accepted on this listener, oldest first once attachment is done.</summary>
    public IEnumerable<TcpRoute> AttachedRoutes => Attached.Select(static a => a.Route);

    /// <summary>The routes accepted on this listener with their resolved backends, oldest first once attachment is done.</summary>
    public IReadOnlyList<AttachedRoute> Attached => _routes ?? (_first is { } first ? [first] : []);

    /// <summary>How many routes are accepted on this listener.</summary>
    public int AttachedCount => _routes?.Count ?? (_first is null ? 0 : 1);

    /// <summary>The route that carries the traffic, with its backends (the oldest attached, once attachment is done), or null.</summary>
    public AttachedRoute? Winner => _routes is null ? _first : _routes[0];

    /// <summary>Accepts <paramref name="route"/>, whose backends are <paramref name="backends"/>, on this listener. Thread-safe: routes are attached from several threads at once, in no particular order.</summary>
    public void Attach(TcpRoute route, ResolvedBackends backends)
    {
        // Locked on the listener itself (internal, never locked elsewhere): a lock object each would cost 10,000 allocations in a large compile.
        lock (this)
        {
            if (_first is null)
            {
                _first = new(route, backends);
            }
            else
            {
                (_routes ??= [_first.Value]).Add(new(route, backends));
            }
        }
    }

    /// <summary>Puts the attached routes oldest first (a total order, so the order they were attached in does not matter); call once every route is attached.</summary>
    public void SortAttached() => _routes?.Sort(static (a, b) => Resource.OldestFirst.Compare(a.Route, b.Route));

    // Most listeners carry one route: a field, not a list, for that one; a list of them all when there are more.
    private AttachedRoute? _first;
    private List<AttachedRoute>? _routes;

    public bool Accepted => Rejection is null;

    public bool ServesTcpRoutes => SupportedKinds.Contains(RouteGroupKind.TcpRoute);

    /// <summary>Whether the listener belongs in the routing table: valid, of an accepted Gateway, and holding its port.</summary>
    public bool IsServed => Owner.Accepted && Accepted && ServesTcpRoutes && ConflictMessage is null;

    public string Describe => $"listener '{Listener.Name}' ({Field}, {Listener.Protocol} port {Listener.Port})";

    /// <summary>The listener as messages on its own Gateway name it: field and name.</summary>
    public string Named => $"{Field} ('{Listener.Name}')";
}

/// <summary>A route accepted on a listener, with its resolved backends.</summary>
internal readonly record struct AttachedRoute(TcpRoute Route, ResolvedBackends Backends);
