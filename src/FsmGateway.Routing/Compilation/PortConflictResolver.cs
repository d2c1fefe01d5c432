namespace FsmGateway.Routing.Compilation;

/// <summary>
/// Two Gateways of ours asking for the same port on overlapping addresses: the older Gateway (creationTimestamp,
/// then namespace/name) keeps the port; the other's listener is marked conflicted and is not programmed. When each
/// Gateway has addresses of its own (<see cref="CompilerOptions.GatewaysHaveOwnAddresses"/>), only listeners of one
/// Gateway can conflict.
/// </summary>
internal static class PortConflictResolver
{
    public static void Run(CompilationContext context, List<GatewayState> gateways)
    {
        if (context.Options.GatewaysHaveOwnAddresses)
        {
            // Listeners of different Gateways never conflict, and those of one Gateway on one port already do
            // (ListenerValidator): nothing is left to decide.
            return;
        }

        var contenders = gateways
            .Where(static g => g.Accepted)
            .OrderBy(static g => g.Gateway, Resources.Resource.OldestFirst)
            .SelectMany(static g => g.Listeners)
            .Where(static l => l.IsServed);

        var holders = new Dictionary<int, List<ListenerState>>();
        foreach (var listener in contenders)
        {
            if (!holders.TryGetValue(listener.Listener.Port, out var held))
            {
                holders[listener.Listener.Port] = held = [];
            }

            ListenerState? holder = null;
            foreach (var candidate in held)
            {
                if (Overlap(candidate.Owner, listener.Owner))
                {
                    holder = candidate;
                    break;
                }
            }

            if (holder is null)
            {
                held.Add(listener);
                continue;
            }

            listener.ConflictMessage =
                $"port {listener.Listener.Port} is already held by listener '{holder.Listener.Name}' of the older {holder.Owner.Key}";
            context.Warn(listener.Owner.Key, $"{listener.Named}: {listener.ConflictMessage}; not programmed");
        }
    }

    /// <summary>Two address sets overlap when either is "every address" or they share one.</summary>
    private static bool Overlap(GatewayState a, GatewayState b) =>
        a.BindAddresses.IsEmpty || b.BindAddresses.IsEmpty || a.BindAddresses.Intersect(b.BindAddresses, StringComparer.Ordinal).Any();
}
