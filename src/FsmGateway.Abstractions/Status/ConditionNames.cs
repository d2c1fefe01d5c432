namespace FsmGateway.Status;

/// <summary>The Gateway API condition types FsmGateway writes. No others are invented.</summary>
public static class ConditionTypes
{
    /// <summary>The object is accepted by the controller.</summary>
    public const string Accepted = "Accepted";

    /// <summary>The object is configured in the data plane.</summary>
    public const string Programmed = "Programmed";

    /// <summary>Every reference resolved.</summary>
    public const string ResolvedRefs = "ResolvedRefs";

    /// <summary>A listener conflicts with another.</summary>
    public const string Conflicted = "Conflicted";

    /// <summary>A policy is accepted, but another policy sets the same thing for the same backends and takes precedence (Envoy Gateway's condition).</summary>
    public const string Overridden = "Overridden";
}

/// <summary>The Gateway API condition reasons FsmGateway writes.</summary>
public static class ConditionReasons
{
    /// <summary>Accepted.</summary>
    public const string Accepted = "Accepted";

    /// <summary>Programmed.</summary>
    public const string Programmed = "Programmed";

    /// <summary>ResolvedRefs.</summary>
    public const string ResolvedRefs = "ResolvedRefs";

    /// <summary>Not conflicted.</summary>
    public const string NoConflicts = "NoConflicts";

    /// <summary>Some or all listeners are invalid.</summary>
    public const string ListenersNotValid = "ListenersNotValid";

    /// <summary>The object is invalid.</summary>
    public const string Invalid = "Invalid";

    /// <summary>Not yet programmed.</summary>
    public const string Pending = "Pending";

    /// <summary>A listener's protocol is not served.</summary>
    public const string UnsupportedProtocol = "UnsupportedProtocol";

    /// <summary>A field holds a value this implementation does not support.</summary>
    public const string UnsupportedValue = "UnsupportedValue";

    /// <summary>The Gateway has no address yet (its load balancer has not assigned one).</summary>
    public const string AddressNotAssigned = "AddressNotAssigned";

    /// <summary>A Gateway address type is not supported.</summary>
    public const string UnsupportedAddress = "UnsupportedAddress";

    /// <summary>A listener's port cannot be used.</summary>
    public const string PortUnavailable = "PortUnavailable";

    /// <summary>Listeners conflict on protocol for one port.</summary>
    public const string ProtocolConflict = "ProtocolConflict";

    /// <summary><c>allowedRoutes.kinds</c> names a kind the listener cannot serve.</summary>
    public const string InvalidRouteKinds = "InvalidRouteKinds";

    /// <summary>A GatewayClass's parametersRef is not supported.</summary>
    public const string InvalidParameters = "InvalidParameters";

    /// <summary>No listener matches a route's parentRef.</summary>
    public const string NoMatchingParent = "NoMatchingParent";

    /// <summary>Listeners match, but none allows the route.</summary>
    public const string NotAllowedByListeners = "NotAllowedByListeners";

    /// <summary>A backendRef's group or kind is not supported.</summary>
    public const string InvalidKind = "InvalidKind";

    /// <summary>A backendRef names a Service or port that does not exist.</summary>
    public const string BackendNotFound = "BackendNotFound";

    /// <summary>A cross-namespace backendRef has no ReferenceGrant.</summary>
    public const string RefNotPermitted = "RefNotPermitted";

    /// <summary>A policy's target does not exist (or may not be referred to without a ReferenceGrant).</summary>
    public const string TargetNotFound = "TargetNotFound";

    /// <summary>An older policy of the same kind targets the same object.</summary>
    public const string Conflicted = "Conflicted";

    /// <summary>Another policy takes precedence for what this one sets.</summary>
    public const string Overridden = "Overridden";
}
