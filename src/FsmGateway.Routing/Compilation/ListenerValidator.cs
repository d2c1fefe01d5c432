using System.Collections.Immutable;
using System.Net;
using FsmGateway.Resources;
using FsmGateway.Status;

namespace FsmGateway.Routing.Compilation;

/// <summary>
/// Validates each Gateway of ours on its own: its addresses, each listener's protocol and fields, the route kinds
/// each listener allows, and listeners of the same Gateway that fight over one port.
/// </summary>
internal static class ListenerValidator
{
    private static readonly ImmutableArray<RouteGroupKind> TcpRouteOnly = [RouteGroupKind.TcpRoute];

    private static readonly HashSet<string> KnownProtocols = new(StringComparer.Ordinal) { "TCP", "UDP", "HTTP", "HTTPS", "TLS" };

    public static List<GatewayState> Run(CompilationContext context, Dictionary<string, string?> ourClasses)
    {
        var gateways = new List<GatewayState>();
        foreach (var gateway in context.Gateways)
        {
            if (!ourClasses.TryGetValue(gateway.GatewayClassName, out var classProblem))
            {
                var known = context.GatewayClasses.Any(c => c.Metadata.Name == gateway.GatewayClassName);
                context.Note(gateway.Key, known
                    ? $"not ours: GatewayClass '{gateway.GatewayClassName}' belongs to another controller"
                    : $"not ours: GatewayClass '{gateway.GatewayClassName}' does not exist");
                continue;
            }

            var state = new GatewayState(gateway);
            if (classProblem is not null)
            {
                state.Rejection = (ConditionReasons.Invalid, $"GatewayClass '{gateway.GatewayClassName}' is not accepted: {classProblem}");
            }

            ValidateAddresses(state);
            for (var i = 0; i < gateway.Listeners.Length; i++)
            {
                var listener = new ListenerState(state, gateway.Listeners[i], i);
                Validate(listener);
                state.Listeners.Add(listener);
            }

            MarkPortConflicts(state);
            gateways.Add(state);
        }

        return gateways;
    }

    private static void ValidateAddresses(GatewayState state)
    {
        if (state.Gateway.Addresses.IsEmpty)
        {
            return;
        }

        var addresses = new List<string>();
        for (var i = 0; i < state.Gateway.Addresses.Length; i++)
        {
            var address = state.Gateway.Addresses[i];
            if (!string.Equals(address.Type, GatewayAddress.IPAddressType, StringComparison.Ordinal))
            {
                state.Rejection ??= (ConditionReasons.UnsupportedAddress,
                    $"spec.addresses[{i}].type '{address.Type}' is not supported: only IPAddress addresses can be bound");
                continue;
            }

            if (!IPAddress.TryParse(address.Value, out var ip))
            {
                state.Rejection ??= (ConditionReasons.UnsupportedAddress, $"spec.addresses[{i}].value '{address.Value}' is not an IP address");
                continue;
            }

            addresses.Add(ip.ToString());
        }

        state.BindAddresses = [.. addresses.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
    }

    private static void Validate(ListenerState state)
    {
        var listener = state.Listener;
        if (!string.Equals(listener.Protocol, "TCP", StringComparison.Ordinal))
        {
            var what = KnownProtocols.Contains(listener.Protocol) ? "is not served by FsmGateway yet" : "is not a protocol FsmGateway knows";
            state.Rejection = (ConditionReasons.UnsupportedProtocol, $"{state.Field}.protocol {listener.Protocol} {what}; only TCP listeners are served");
            return;
        }

        if (listener.Hostname is not null)
        {
            state.Rejection = (ConditionReasons.UnsupportedValue, $"{state.Field}.hostname must not be set on a TCP listener");
        }
        else if (listener.HasTls)
        {
            state.Rejection = (ConditionReasons.UnsupportedValue, $"{state.Field}.tls must not be set on a TCP listener");
        }
        else if (listener.AllowedRoutes is { From: FromNamespaces.Selector, Selector: null })
        {
            state.Rejection = (ConditionReasons.UnsupportedValue,
                $"{state.Field}.allowedRoutes.namespaces.selector must be set when from is Selector");
        }

        if (listener.AllowedRoutes.Kinds is not { } kinds)
        {
            state.SupportedKinds = TcpRouteOnly;
            return;
        }

        var invalid = kinds.Where(k => k != RouteGroupKind.TcpRoute).Select(k => $"{k.Group}/{k.Kind}").ToList();
        state.SupportedKinds = kinds.Contains(RouteGroupKind.TcpRoute) ? TcpRouteOnly : [];
        if (invalid.Count > 0)
        {
            state.InvalidKindsMessage =
                $"{state.Field}.allowedRoutes.kinds: {string.Join(", ", invalid)} cannot attach to a TCP listener; only {GatewayApi.Group}/TCPRoute can";
        }
    }

    private static bool SharesAPort(List<ListenerState> listeners)
    {
        for (var i = 1; i < listeners.Count; i++)
        {
            for (var j = 0; j < i; j++)
            {
                if (listeners[i].Listener.Port == listeners[j].Listener.Port)
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>
    /// A TCP listener shares its port with no other listener of its Gateway, except UDP ones: whether two listeners
    /// conflict is a property of the spec, so listeners we do not serve take part too.
    /// </summary>
    private static void MarkPortConflicts(GatewayState gateway)
    {
        if (!SharesAPort(gateway.Listeners))
        {
            return;
        }

        foreach (var group in gateway.Listeners.Where(static l => l.Listener.Protocol != "UDP").GroupBy(static l => l.Listener.Port))
        {
            var onPort = group.ToList();
            if (onPort.Count < 2 || !onPort.Any(static l => l.Listener.Protocol == "TCP"))
            {
                continue;
            }

            var names = string.Join(", ", onPort.Select(static l => $"{l.Named} {l.Listener.Protocol}"));
            foreach (var listener in onPort)
            {
                listener.ConflictMessage = $"{listener.Field}.port {group.Key} is claimed by several listeners of this Gateway: {names}; a TCP listener needs its port to itself";
                listener.Rejection ??= (ConditionReasons.ProtocolConflict, listener.ConflictMessage);
            }
        }
    }
}
