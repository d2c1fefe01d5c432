namespace FsmGateway.Kubernetes;

/// <summary>
/// Shares what the data planes connected to each controller replica reported with the other replicas (ADR 0010), so
/// that the leader, which alone writes status, compiles with the reports of every data plane whichever replica its
/// stream reached. Each replica keeps one Lease of its own (<c>fsm-gateway-reports-IDENTITY</c> in the leader-election
/// namespace) holding its reports, written when they change (at most once a second) and renewed a few times per lease
/// duration; every replica reads the others' and drops those not renewed for their lease duration (a replica that
/// died), so a dead replica's reports expire.
/// </summary>
public interface IReplicaReportExchange
{
    /// <summary>Sets this replica's reports (text in a format of the caller's), written to its Lease soon, debounced.</summary>
    /// <param name="reports">The reports, replacing the previous ones.</param>
    void Publish(string reports);

    /// <summary>The reports of the other replicas whose Lease is alive, by replica identity: the current set first, then each change.</summary>
    IObservable<IReadOnlyDictionary<string, string>> Others { get; }
}
