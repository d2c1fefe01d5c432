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
    public FixedCondition AcceptedByOneListener => field ??=
        new(ConditionTypes.Accepted, ConditionStatus.True, ConditionReasons.Accepted, $"Accepted by 1 listener of {Gateway.Key}");

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
    /// </summary>
    public EquatableArray<Condition> RouteConditions(Condition accepted, Condition resolvedRefs)
    {
        if (!ReferenceEquals(accepted, _lastAccepted) || !ReferenceEquals(resolvedRefs, _lastResolvedRefs))
        {
            _lastAccepted = accepted;
            _lastResolvedRefs = resolvedRefs;
            _lastRouteConditions = Conditions.Sorted(accepted, resolvedRefs);
        }

        return _lastRouteConditions;
    }

    private Condition? _lastAccepted;
    private Condition? _lastResolvedRefs;
    private EquatableArray<Condition> _lastRouteConditions;
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
    public IEnumerable<TcpRoute> AttachedRoutes => _routes ?? (_firstRoute is null ? [] : [_firstRoute]);

    /// <summary>How many routes are accepted on this listener.</summary>
    public int AttachedCount => _routes?.Count ?? (_firstRoute is null ? 0 : 1);

    /// <summary>The route that carries the traffic (the oldest attached, once attachment is done), or null.</summary>
    public TcpRoute? Winner => _routes is null ? _firstRoute : _routes[0];

    /// <summary>Accepts <paramref name="route"/> on this listener.</summary>
    public void Attach(TcpRoute route)
    {
        if (_firstRoute is null)
        {
            _firstRoute = route;
        }
        else
        {
            (_routes ??= [_firstRoute]).Add(route);
        }
    }

    /// <summary>Puts the attached routes oldest first; call once every route is attached.</summary>
    public void SortAttached() => _routes?.Sort(Resource.OldestFirst);

    // Most listeners carry one route: a field, not a list, for that one; a list of them all when there are more.
    private TcpRoute? _firstRoute;
    private List<TcpRoute>? _routes;

    public bool Accepted => Rejection is null;

    public bool ServesTcpRoutes => SupportedKinds.Contains(RouteGroupKind.TcpRoute);

    /// <summary>Whether the listener belongs in the routing table: valid, of an accepted Gateway, and holding its port.</summary>
    public bool IsServed => Owner.Accepted && Accepted && ServesTcpRoutes && ConflictMessage is null;

    public string Describe => $"listener '{Listener.Name}' ({Field}, {Listener.Protocol} port {Listener.Port})";

    /// <summary>The listener as messages on its own Gateway name it: field and name.</summary>
    public string Named => $"{Field} ('{Listener.Name}')";
}
