using System.Collections.Concurrent;
using System.Net;
using FsmGateway.Routing;

namespace FsmGateway.Transport.Proxy;

/// <summary>
/// The checks a listener's <see cref="ClientPolicy"/> runs on an accepted connection before any upstream connect, in
/// order: FSM's ListenerFilters, then the route rule's filters (RouteRuleFilterPolicy), then the listener's connection
/// limit (ClientTrafficPolicy). Built once per route model; the counts live in <see cref="ConnectionGate"/>s that
/// outlive route models, so a reload never resets them while connections they count are open.
/// </summary>
internal sealed class ClientAdmission
{
    private readonly Check[] _checks;

    private ClientAdmission(Check[] checks, TimeSpan? closeDelay)
    {
        _checks = checks;
        CloseDelay = closeDelay;
    }

    /// <summary>The gates this admission counts in (for <see cref="GateRegistry.Retain"/>).</summary>
    public IEnumerable<ConnectionGate> Gates => _checks.Where(static c => c.Gate is not null).Select(static c => c.Gate!);

    /// <summary>How long a connection refused by the connection limit is held before it is closed.</summary>
    public TimeSpan? CloseDelay { get; }

    /// <summary>The admission of <paramref name="policy"/>, or <see langword="null"/> when it checks nothing.</summary>
    public static ClientAdmission? For(ClientPolicy policy, BindKey listener, GateRegistry gates)
    {
        var checks = new List<Check>();
        foreach (var filter in policy.ListenerFilters)
        {
            checks.Add(Check.Of(filter, gates, listener, "listener"));
        }

        foreach (var filter in policy.RouteFilters)
        {
            checks.Add(Check.Of(filter, gates, listener, "route"));
        }

        if (policy.ConnectionLimit is { } limit)
        {
            checks.Add(new Check(
                TerminationReason.RefusedConnectionLimit,
                gates.Get(listener, "connectionLimit"),
                limit.Max,
                [],
                [],
                $"the listener's connection limit ({limit.Max}) is reached"));
        }

        return checks.Count == 0 ? null : new ClientAdmission([.. checks], policy.ConnectionLimit?.CloseDelay);
    }

    /// <summary>
    /// Runs every check on a connection from <paramref name="client"/>. An admitted connection is counted by the gates
    /// it passed until <see cref="ConnectionGate.Exit"/> on each of <paramref name="entered"/>. A refused one is counted
    /// by none: the gates it passed before the check that refused it are left at once, so it holds no one's slot while
    /// it is held for a close delay, and the slot is free before the client sees the connection close.
    /// </summary>
    /// <returns>Why the connection is refused, or <see langword="null"/> when it is admitted.</returns>
    public (TerminationReason Reason, string Text)? Admit(EndPoint? client, List<ConnectionGate> entered)
    {
        var address = client is IPEndPoint ip ? (ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address) : null;
        foreach (var check in _checks)
        {
            if (check.Gate is { } gate)
            {
                if (!gate.TryEnter(check.Max))
                {
                    return Refuse(entered, check.Refusal, check.Text);
                }

                entered.Add(gate);
                continue;
            }

            if (check.Allowed.Length > 0 && (address is null || !Array.Exists(check.Allowed, n => n.Contains(address))))
            {
                return Refuse(entered, check.Refusal, address is null ? $"{check.Text}: the client address is unknown" : $"{check.Text}: {address} is not in the allow list");
            }

            if (address is not null)
            {
                foreach (var denied in check.Forbidden)
                {
                    if (denied.Contains(address))
                    {
                        return Refuse(entered, check.Refusal, $"{check.Text}: {address} is in the deny list ({denied})");
                    }
                }
            }
        }

        return null;
    }

    /// <summary>Leaves the gates a refused connection passed, and says why it is refused.</summary>
    private static (TerminationReason Reason, string Text) Refuse(List<ConnectionGate> entered, TerminationReason reason, string text)
    {
        foreach (var gate in entered)
        {
            gate.Exit();
        }

        entered.Clear();
        return (reason, text);
    }

    /// <summary>One check: a counting gate (a connection cap), or allow and deny lists.</summary>
    private sealed record Check(TerminationReason Refusal, ConnectionGate? Gate, long Max, IPNetwork[] Allowed, IPNetwork[] Forbidden, string Text)
    {
        public static Check Of(ConnectionFilter filter, GateRegistry gates, BindKey listener, string scope) => filter.Type switch
        {
            ConnectionFilterType.ConcurrencyLimit => new Check(
                TerminationReason.RefusedConnectionLimit,
                gates.Get(listener, $"{scope}:{filter.Source}:{filter.Config}"),
                filter.MaxConnections ?? int.MaxValue,
                [],
                [],
                $"ConcurrencyLimit {filter.Config} ({filter.MaxConnections}) is reached"),
            _ => new Check(
                TerminationReason.RefusedIpDenied,
                null,
                0,
                [.. filter.Allowed.Select(IPNetwork.Parse)],
                [.. filter.Forbidden.Select(IPNetwork.Parse)],
                $"IPRestriction {filter.Config}"),
        };
    }
}

/// <summary>A count of open connections that admits up to a maximum, exactly; shared by every route model of a listener.</summary>
internal sealed class ConnectionGate
{
    private long _count;

    /// <summary>The connections counted now.</summary>
    public long Count => Interlocked.Read(ref _count);

    /// <summary>Counts one more connection unless <paramref name="max"/> are counted already.</summary>
    public bool TryEnter(long max)
    {
        var count = Interlocked.Read(ref _count);
        while (count < max)
        {
            var seen = Interlocked.CompareExchange(ref _count, count + 1, count);
            if (seen == count)
            {
                return true;
            }

            count = seen;
        }

        return false;
    }

    /// <summary>A connection counted by <see cref="TryEnter"/> has closed.</summary>
    public void Exit() => Interlocked.Decrement(ref _count);
}

/// <summary>
/// Every listener's <see cref="ConnectionGate"/>s, keyed by the listener's sockets and the check's identity (its policy
/// and config object), kept across routing tables for as long as a serving listener uses them. A connection holds the
/// gates it entered directly, so a gate forgotten here still counts down correctly.
/// </summary>
internal sealed class GateRegistry
{
    private readonly ConcurrentDictionary<(BindKey Listener, string Check), ConnectionGate> _gates = new();

    public ConnectionGate Get(BindKey listener, string check) => _gates.GetOrAdd((listener, check), static _ => new ConnectionGate());

    /// <summary>Forgets the gates none of <paramref name="models"/> counts in. Called after each apply.</summary>
    /// <param name="models">The route models serving now.</param>
    public void Retain(IEnumerable<RouteModel> models)
    {
        var live = models.SelectMany(static m => m.Admission?.Gates ?? []).ToHashSet(ReferenceEqualityComparer.Instance);
        foreach (var (key, gate) in _gates)
        {
            if (!live.Contains(gate))
            {
                _gates.TryRemove(key, out _);
            }
        }
    }
}
