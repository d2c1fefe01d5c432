using System.Buffers;
using System.Collections.Immutable;
using FsmGateway.Resources;
using FsmGateway.Status;

namespace FsmGateway.Routing.Compilation;

/// <summary>
/// Binds each TCPRoute to the listeners its parentRefs select and that allow it, and decides the route's status:
/// one entry per parentRef that names a Gateway of ours.
/// </summary>
internal static class RouteAttacher
{
    /// <summary>
    /// Attaches every route to the listeners that take it, with its backends, and works out each route's status, on as
    /// many threads as the options allow: each route reads only what earlier stages settled, listeners take their
    /// routes under a lock and sort them oldest first afterwards, so the result is the same on any number of threads.
    /// The statuses are mapped afterwards, by <see cref="Attachment.Statuses"/>, in one pass.
    /// </summary>
    public static Attachment Run(CompilationContext context, List<GatewayState> gateways)
    {
        var routes = context.Routes;
        var statuses = context.RouteStatusEntries(routes.Count);
        context.ForRanges(routes.Count, (Statuses: statuses, Gateways: gateways.ToDictionary(static g => g.Key), Context: context), static (state, start, end) =>
        {
            for (var i = start; i < end; i++)
            {
                state.Statuses[i] = Attach(state.Context, state.Context.Routes[i], state.Gateways);
            }
        });

        foreach (var gateway in gateways)
        {
            foreach (var listener in gateway.Listeners)
            {
                listener.SortAttached();
            }
        }

        return new Attachment(statuses, routes.Count);
    }

    /// <summary>Every route attached: the statuses to write.</summary>
    public sealed class Attachment
    {
        private readonly RouteStatusEntry[] _statuses;
        private readonly int _count;

        /// <summary>The statuses of the first <paramref name="count"/> entries of <paramref name="statuses"/>.</summary>
        internal Attachment(RouteStatusEntry[] statuses, int count) => (_statuses, _count) = (statuses, count);

        /// <summary>Each route's status, by route.</summary>
        public ResourceMap<RouteStatus> Statuses() => Map(static entry => entry.Status!);

        /// <summary>The apiVersion each route status is written in, by route.</summary>
        public ResourceMap<string> ApiVersions() => Map(static entry => entry.ApiVersion!);

        /// <summary>
        /// A value for each route with a status: the routes come in the snapshot's order (sorted by key), so the map is
        /// filled in one pass and nothing is hashed.
        /// </summary>
        private ResourceMap<T> Map<T>(Func<RouteStatusEntry, T> value)
        {
            // Rented: 10,000 entries would be a large object, which only a gen2 GC frees; the map copies them into chunks.
            var entries = ArrayPool<KeyValuePair<ResourceKey, T>>.Shared.Rent(_count);
            var count = 0;
            foreach (ref readonly var entry in _statuses.AsSpan(0, _count))
            {
                if (entry.Status is not null)
                {
                    entries[count++] = new(entry.Key, value(entry));
                }
            }

            var map = ResourceMap.Create((ReadOnlySpan<KeyValuePair<ResourceKey, T>>)entries.AsSpan(0, count));
            ArrayPool<KeyValuePair<ResourceKey, T>>.Shared.Return(entries, clearArray: true);
            return map;
        }
    }

    /// <summary>
    /// A route's status (null when there is none to write), with the key and apiVersion it is written under, read where
    /// the route is at hand, so writing the statuses later touches no route again.
    /// </summary>
    internal readonly record struct RouteStatusEntry(RouteStatus? Status, ResourceKey Key, string? ApiVersion);

    /// <summary>
    /// Attaches <paramref name="route"/> and works out its status: safe to run for many routes at once (listeners take
    /// routes under a lock; the notes, fixed conditions and shared condition arrays it takes are thread-safe).
    /// </summary>
    private static RouteStatusEntry Attach(CompilationContext context, TcpRoute route, Dictionary<ResourceKey, GatewayState> byKey)
    {
        // At most one entry per parentRef: an array of that size, wrapped as it is when every parentRef made one.
        RouteParentStatus[]? ours = null;
        var count = 0;
        ResolvedBackends? backends = null;
        for (var i = 0; i < route.ParentRefs.Length; i++)
        {
            var parentRef = route.ParentRefs[i];
            var echoed = parentRef with
            {
                Group = parentRef.Group ?? GatewayApi.Group,
                Kind = parentRef.Kind ?? "Gateway",
                Namespace = parentRef.Namespace ?? route.Metadata.Namespace,
            };
            var gatewayKey = new ResourceKey(ResourceKind.Gateway, echoed.Namespace, echoed.Name);
            if (echoed.Group != GatewayApi.Group || echoed.Kind != "Gateway")
            {
                context.Note(route.Key, $"spec.parentRefs[{i}] refers to {GroupKind(echoed.Group, echoed.Kind)} {echoed.Namespace}/{echoed.Name}, not a Gateway; no status written for it");
                continue;
            }

            if (!byKey.TryGetValue(gatewayKey, out var gateway))
            {
                var exists = Exists(context, gatewayKey);
                context.Note(route.Key, $"spec.parentRefs[{i}]: {gatewayKey} {(exists ? "is not of a GatewayClass of ours" : "does not exist")}; no status written for it");
                continue;
            }

            ours ??= new RouteParentStatus[route.ParentRefs.Length];
            if (AlreadyHas(ours.AsSpan(0, count), echoed))
            {
                continue;
            }

            backends ??= ResolveBackends(context, route);
            var accepted = Attach(context, route, backends, i, echoed, gateway);
            ours[count++] = new RouteParentStatus(
                echoed,
                context.Options.ControllerName,
                gateway.RouteConditions(accepted, ResolvedRefsCondition(context, route, backends)));
        }

        // Entries other controllers wrote stay as they are; ours are replaced as a whole, and removed when the
        // route no longer reaches a Gateway of ours.
        RouteStatus? status = null;
        if (count > 0 || HasEntryOf(route.ExistingParentStatuses, context.Options.ControllerName))
        {
            var entries = ours.AsSpan(0, count);
            status = new RouteStatus(route.ExistingParentStatuses.IsEmpty
                ? count == ours!.Length ? System.Runtime.InteropServices.ImmutableCollectionsMarshal.AsImmutableArray(ours) : [.. entries]
                : [.. route.ExistingParentStatuses.Where(s => s.ControllerName != context.Options.ControllerName), .. entries]);
        }

        return status is null ? default : new RouteStatusEntry(status, route.Key, route.ApiVersion);
    }

    /// <summary>Whether the snapshot holds the Gateway <paramref name="key"/> (a method, so the loop above captures nothing).</summary>
    private static bool Exists(CompilationContext context, ResourceKey key)
    {
        foreach (var gateway in context.Gateways)
        {
            if (gateway.Key == key)
            {
                return true;
            }
        }

        return false;
    }

    private static bool AlreadyHas(ReadOnlySpan<RouteParentStatus> statuses, ParentReference parentRef)
    {
        foreach (var status in statuses)
        {
            if (status.ParentRef == parentRef)
            {
                return true;
            }
        }

        return false;
    }

    private static bool HasEntryOf(EquatableArray<RouteParentStatus> statuses, string controllerName)
    {
        foreach (var status in statuses)
        {
            if (status.ControllerName == controllerName)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Resolves every rule's backends, so ResolvedRefs speaks for the whole route even when it has several rules.</summary>
    private static ResolvedBackends ResolveBackends(CompilationContext context, TcpRoute route)
    {
        switch (route.Rules.Length)
        {
            case 0:
                return new ResolvedBackends([], []);
            case 1:
                return BackendResolver.Run(context, route, route.Rules[0], 0);
            default:
                return ResolveRules(context, route);
        }
    }

    /// <summary>A route with several rules (refused, but every rule's references are still checked): its own method, so the common case allocates no closure.</summary>
    private static ResolvedBackends ResolveRules(CompilationContext context, TcpRoute route)
    {
        var resolved = route.Rules.Select((rule, i) => BackendResolver.Run(context, route, rule, i)).ToList();
        return new ResolvedBackends(resolved[0].Backends, [.. resolved.SelectMany(static r => r.Problems)]);
    }

    /// <summary>Attaches <paramref name="route"/> to the listeners of <paramref name="gateway"/> that one parentRef selects and that take it; its Accepted condition there.</summary>
    private static Condition Attach(CompilationContext context, TcpRoute route, ResolvedBackends backends, int index, ParentReference parentRef, GatewayState gateway)
    {
        var generation = route.Metadata.Generation;
        var field = new ParentRefField(index);
        if (route.Rules.Length != 1)
        {
            return Conditions.False(ConditionTypes.Accepted, ConditionReasons.UnsupportedValue,
                $"TCPRoute supports exactly one rule; spec.rules has {route.Rules.Length}", generation);
        }

        if (gateway.Rejection is { } rejection)
        {
            return Conditions.False(ConditionTypes.Accepted, ConditionReasons.NoMatchingParent,
                $"{field}: {gateway.Key} is not accepted: {rejection.Message}", generation);
        }

        List<string>? refusals = null;
        var matched = 0;
        var attached = 0;
        foreach (var listener in gateway.Listeners)
        {
            if ((parentRef.SectionName is not null && listener.Listener.Name != parentRef.SectionName)
                || (parentRef.Port is not null && listener.Listener.Port != parentRef.Port))
            {
                continue;
            }

            matched++;
            if (Refusal(context, route, listener) is { } refusal)
            {
                (refusals ??= []).Add($"{listener.Describe} {refusal}");
                continue;
            }

            listener.Attach(route, backends);
            attached++;
        }

        if (matched == 0)
        {
            return Conditions.False(ConditionTypes.Accepted, ConditionReasons.NoMatchingParent,
                $"{field}: {gateway.Key} has no listener{Describe(parentRef)}", generation);
        }

        if (attached == 0)
        {
            return Conditions.False(ConditionTypes.Accepted, ConditionReasons.NotAllowedByListeners,
                $"{field}: no listener of {gateway.Key} allows this route: {string.Join("; ", refusals!)}", generation);
        }

        var note = AllWeightsZeroNote(route);
        if (attached == 1 && note.Length == 0)
        {
            // The common case: every route of this generation attached to one listener of this Gateway says the same.
            return context.Fixed(gateway.AcceptedByOneListener, generation);
        }

        return Conditions.True(ConditionTypes.Accepted, ConditionReasons.Accepted,
            attached == 1 ? $"Accepted by 1 listener of {gateway.Key}{note}" : $"Accepted by {attached} listeners of {gateway.Key}{note}",
            generation);
    }

    /// <summary>The path of a parentRef (<c>spec.parentRefs[1]</c>), formatted only when a message needs it.</summary>
    private readonly record struct ParentRefField(int Index)
    {
        public override string ToString() => $"spec.parentRefs[{Index}]";
    }

    /// <summary>Why <paramref name="listener"/> will not take <paramref name="route"/>, or null when it will.</summary>
    private static string? Refusal(CompilationContext context, TcpRoute route, ListenerState listener)
    {
        if (listener.Rejection is { } rejection)
        {
            return $"is not accepted ({rejection.Reason})";
        }

        if (!listener.ServesTcpRoutes)
        {
            return "does not allow kind TCPRoute";
        }

        var routeNamespace = route.Metadata.Namespace;
        var allowed = listener.Listener.AllowedRoutes;
        return allowed.From switch
        {
            FromNamespaces.Same when routeNamespace != listener.Owner.Gateway.Metadata.Namespace =>
                $"allows routes only from its own namespace '{listener.Owner.Gateway.Metadata.Namespace}', not '{routeNamespace}'",
            FromNamespaces.Selector when !allowed.Selector!.Matches(context.NamespaceLabels(routeNamespace)) =>
                $"allows routes only from namespaces matching its selector, and '{routeNamespace}' does not match",
            _ => null,
        };
    }

    private static Condition ResolvedRefsCondition(CompilationContext context, TcpRoute route, ResolvedBackends backends)
    {
        var generation = route.Metadata.Generation;
        if (backends.Problems.Count == 0)
        {
            return context.Fixed(Conditions.AllReferencesResolved, generation);
        }

        var message = string.Join("; ", backends.Problems.Select(static p => p.Message));
        return Conditions.False(ConditionTypes.ResolvedRefs, backends.Problems[0].Reason, message, generation);
    }

    private static string AllWeightsZeroNote(TcpRoute route)
    {
        var refs = route.Rules[0].BackendRefs;
        if (refs.IsEmpty)
        {
            return "; the rule has no backendRefs, so every connection is closed at once";
        }

        foreach (var reference in refs)
        {
            if (reference.Weight != 0)
            {
                return string.Empty;
            }
        }

        return "; every backendRef has weight 0, so every connection is closed at once";
    }

    internal static string GroupKind(string group, string kind) => group.Length == 0 ? kind : $"{group}/{kind}";

    private static string Describe(ParentReference parentRef) => (parentRef.SectionName, parentRef.Port) switch
    {
        ({ } name, { } port) => $" named '{name}' on port {port}",
        ({ } name, null) => $" named '{name}'",
        (null, { } port) => $" on port {port}",
        _ => "s",
    };
}
