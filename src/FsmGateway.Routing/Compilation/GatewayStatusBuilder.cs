using System.Collections.Immutable;
using FsmGateway.Resources;
using FsmGateway.Status;

namespace FsmGateway.Routing.Compilation;

/// <summary>
/// Writes each Gateway's status from what the stages decided and what the transport reported binding:
/// <c>Programmed=True</c> only for a listener whose socket is listening. When the controller provisions data planes
/// (<see cref="CompilationContext.DataPlanes"/>), the Gateway is Programmed only once its Deployment has an available
/// replica and its Service an address, its addresses are the Service's, and unusable parameters make it not Accepted.
/// </summary>
internal static class GatewayStatusBuilder
{
    public static void Run(CompilationContext context, List<GatewayState> gateways, ImmutableSortedDictionary<ResourceKey, GatewayStatus>.Builder statuses)
    {
        // One list for every Gateway's listeners, cleared between them: it does not outlive the Gateway's status.
        var listeners = new List<(ListenerState State, ListenerStatus Status, Condition Accepted, Condition Programmed)>();
        foreach (var gateway in gateways)
        {
            listeners.Clear();
            var listenerStatuses = new ListenerStatus[gateway.Listeners.Count];
            foreach (var listener in gateway.Listeners)
            {
                var outcome = ListenerStatusOf(context, listener);
                listenerStatuses[listeners.Count] = outcome.Status;
                listeners.Add(outcome);
            }

            var accepted = Accepted(gateway, listeners);
            var programmed = Programmed(gateway, listeners);
            EquatableArray<GatewayAddress> addresses = [];
            if (context.DataPlanes is { } dataPlanes)
            {
                var dataPlane = dataPlanes.ByGateway.GetValueOrDefault(gateway.Key);
                (accepted, programmed) = WithDataPlane(gateway, dataPlane, accepted, programmed);
                addresses = dataPlane?.Addresses ?? [];
            }

            statuses[gateway.Key] = new GatewayStatus(
                addresses,
                Conditions.Sorted(accepted, programmed),
                System.Runtime.InteropServices.ImmutableCollectionsMarshal.AsImmutableArray(listenerStatuses));
        }
    }

    /// <summary>
    /// A provisioned Gateway is Programmed only once its data plane can serve: a Deployment (else Pending) with an
    /// available replica (else Pending) and a Service with an address (else AddressNotAssigned). A Gateway whose
    /// parametersRef cannot be used is not Accepted (InvalidParameters, with the object and field at fault); its data
    /// plane is left as it was, so Programmed still says whether that one serves (Invalid when there is none).
    /// </summary>
    private static (Condition Accepted, Condition Programmed) WithDataPlane(GatewayState gateway, ProvisionedDataPlane? dataPlane, Condition accepted, Condition programmed)
    {
        var generation = gateway.Generation;
        if (dataPlane?.ParametersError is { } error && accepted.Status == ConditionStatus.True)
        {
            accepted = Conditions.False(ConditionTypes.Accepted, ConditionReasons.InvalidParameters, $"{error}. The data plane is left as it was.", generation);
        }

        if (programmed.Status != ConditionStatus.True)
        {
            return (accepted, programmed);
        }

        programmed = dataPlane switch
        {
            null => Conditions.False(ConditionTypes.Programmed, ConditionReasons.Pending,
                "Waiting for the data plane (Deployment and Service) to be provisioned", generation),
            { AvailableReplicas: <= 0, ParametersError: not null, Addresses.IsEmpty: true } => Conditions.False(ConditionTypes.Programmed, ConditionReasons.Invalid,
                "No data plane is provisioned while the Gateway's parameters are invalid.", generation),
            { AvailableReplicas: <= 0 } => Conditions.False(ConditionTypes.Programmed, ConditionReasons.Pending,
                $"Waiting for Deployment {dataPlane.Deployment} to have an available replica.", generation),
            { Addresses.IsEmpty: true } => Conditions.False(ConditionTypes.Programmed, ConditionReasons.AddressNotAssigned,
                $"Waiting for the load balancer to give Service {dataPlane.Deployment} an address.", generation),
            _ => programmed,
        };
        return (accepted, programmed);
    }

    private static (ListenerState State, ListenerStatus Status, Condition Accepted, Condition Programmed) ListenerStatusOf(
        CompilationContext context, ListenerState listener)
    {
        var generation = listener.Owner.Generation;
        var bind = listener.IsServed ? context.Bindings.For(listener.Owner.Key, listener.Listener.Port) : null;

        Condition accepted;
        if (listener.Rejection is { } rejection)
        {
            accepted = Conditions.False(ConditionTypes.Accepted, rejection.Reason, rejection.Message, generation);
        }
        else if (bind is { State: BindState.Failed })
        {
            accepted = Conditions.False(ConditionTypes.Accepted, ConditionReasons.PortUnavailable,
                $"port {listener.Listener.Port} cannot be bound: {bind.Message}", generation);
        }
        else
        {
            accepted = context.Fixed(Conditions.ListenerAccepted, generation);
        }

        var conflicted = listener.ConflictMessage is { } conflict
            ? Conditions.True(ConditionTypes.Conflicted, ConditionReasons.ProtocolConflict, conflict, generation)
            : context.Fixed(Conditions.NoConflicts, generation);

        var resolvedRefs = listener.InvalidKindsMessage is { } invalidKinds
            ? Conditions.False(ConditionTypes.ResolvedRefs, ConditionReasons.InvalidRouteKinds, invalidKinds, generation)
            : context.Fixed(Conditions.AllReferencesResolved, generation);

        var programmed = ProgrammedCondition(listener, bind, generation);
        var status = new ListenerStatus(
            listener.Listener.Name,
            listener.SupportedKinds,
            listener.AttachedCount,
            Conditions.Sorted(accepted, conflicted, programmed, resolvedRefs));
        return (listener, status, accepted, programmed);
    }

    private static Condition ProgrammedCondition(ListenerState listener, BindOutcome? bind, long generation)
    {
        if (!listener.Owner.Accepted)
        {
            return Conditions.False(ConditionTypes.Programmed, ConditionReasons.Invalid, "not served: the Gateway is not accepted", generation);
        }

        if (listener.Rejection is { } rejection)
        {
            return Conditions.False(ConditionTypes.Programmed, ConditionReasons.Invalid, $"not served: the listener is not accepted ({rejection.Reason})", generation);
        }

        if (listener.ConflictMessage is { } conflict)
        {
            return Conditions.False(ConditionTypes.Programmed, ConditionReasons.Invalid, $"not served: {conflict}", generation);
        }

        if (!listener.ServesTcpRoutes)
        {
            return Conditions.False(ConditionTypes.Programmed, ConditionReasons.Invalid, "not served: allowedRoutes.kinds names no route kind a TCP listener can serve", generation);
        }

        return bind!.State switch
        {
            BindState.Bound => Conditions.True(ConditionTypes.Programmed, ConditionReasons.Programmed,
                ListeningOn(listener.Listener.Port), generation),
            BindState.Failed => Conditions.False(ConditionTypes.Programmed, ConditionReasons.Invalid,
                $"port {listener.Listener.Port} cannot be bound: {bind.Message}", generation),
            _ => Conditions.False(ConditionTypes.Programmed, ConditionReasons.Pending,
                bind.Message is { } why ? $"Waiting for port {listener.Listener.Port} to be bound: {why}" : $"Waiting for port {listener.Listener.Port} to be bound", generation),
        };
    }

    private static Condition Accepted(GatewayState gateway, List<(ListenerState State, ListenerStatus Status, Condition Accepted, Condition Programmed)> listeners)
    {
        var generation = gateway.Generation;
        if (gateway.Rejection is { } rejection)
        {
            return Conditions.False(ConditionTypes.Accepted, rejection.Reason, rejection.Message, generation);
        }

        if (listeners.TrueForAll(static l => l.Accepted.Status == ConditionStatus.True))
        {
            return Conditions.True(ConditionTypes.Accepted, ConditionReasons.Accepted, "Gateway is accepted", generation);
        }

        var invalid = listeners.Where(static l => l.Accepted.Status != ConditionStatus.True).Select(static l => $"{l.State.Named} {l.Accepted.Reason}").ToList();

        return invalid.Count == listeners.Count
            ? Conditions.False(ConditionTypes.Accepted, ConditionReasons.ListenersNotValid, $"No listener is valid: {string.Join(", ", invalid)}", generation)
            : Conditions.True(ConditionTypes.Accepted, ConditionReasons.ListenersNotValid, $"Some listeners are not valid: {string.Join(", ", invalid)}", generation);
    }

    /// <summary>
    /// "Listening on port N", formatted once per port in the process: every compile says it of every bound listener,
    /// and the strings outlive the compile in the statuses, so sharing them leaves the GC fewer objects to trace.
    /// </summary>
    private static string ListeningOn(int port)
    {
        if ((uint)port > ushort.MaxValue)
        {
            return $"Listening on port {port}";
        }

        // In blocks of 256 ports, made when a port of the block is first used: a process serving a few ports keeps a few blocks.
        var block = ListeningMessages[port >> 8] ??= new string?[256];
        return block[port & 0xFF] ??= $"Listening on port {port}";
    }

    private static readonly string?[]?[] ListeningMessages = new string?[]?[256];

    /// <summary>"All N accepted listeners are serving", formatted once per N (every Gateway with N listeners says it).</summary>
    private static string AllServing(int count) =>
        count < AllServingMessages.Length ? AllServingMessages[count] ??= $"All {count} accepted listeners are serving" : $"All {count} accepted listeners are serving";

    private static readonly string?[] AllServingMessages = new string?[64];

    private static Condition Programmed(GatewayState gateway, List<(ListenerState State, ListenerStatus Status, Condition Accepted, Condition Programmed)> listeners)
    {
        var generation = gateway.Generation;
        if (!gateway.Accepted)
        {
            return Conditions.False(ConditionTypes.Programmed, ConditionReasons.Invalid, "The Gateway is not accepted", generation);
        }

        var acceptedCount = 0;
        var serving = 0;
        foreach (var listener in listeners)
        {
            if (listener.Accepted.Status == ConditionStatus.True)
            {
                acceptedCount++;
                serving += listener.Programmed.Status == ConditionStatus.True ? 1 : 0;
            }
        }

        if (acceptedCount > 0 && serving == acceptedCount)
        {
            return Conditions.True(ConditionTypes.Programmed, ConditionReasons.Programmed,
                acceptedCount == 1 ? "The accepted listener is serving" : AllServing(acceptedCount), generation);
        }

        var accepted = listeners.Where(static l => l.Accepted.Status == ConditionStatus.True).ToList();
        var notServing = accepted.Where(static l => l.Programmed.Status != ConditionStatus.True).ToList();

        if (accepted.Count == 0)
        {
            return Conditions.False(ConditionTypes.Programmed, ConditionReasons.Invalid, "No listener is accepted, so nothing is served", generation);
        }

        var why = string.Join("; ", notServing.Select(static l => $"{l.State.Named}: {l.Programmed.Message}"));
        var reason = notServing.All(static l => l.Programmed.Reason == ConditionReasons.Pending) ? ConditionReasons.Pending : ConditionReasons.Invalid;
        return Conditions.False(ConditionTypes.Programmed, reason, why, generation);
    }
}
