namespace FsmGateway.Kubernetes.ControlPlane;

/// <summary>What a running replica does with what it read of the CA Secret (<see cref="CaSecretRepair.Decide"/>).</summary>
internal enum CaSecretAction
{
    /// <summary>Take the stored state as this replica's (a rotation stage another replica wrote, or a CA replaced in place by hand).</summary>
    Follow,

    /// <summary>Keep serving the CA in hand and write nothing: a follower waiting for the leader to repair the Secret.</summary>
    KeepHeld,

    /// <summary>The Secret is gone: the leader creates it again from the CA and stage in hand (a create: only one replica's wins).</summary>
    Recreate,

    /// <summary>The Secret is unusable, or was created again with a CA no data plane trusts: the leader replaces it with the CA and stage in hand, with the resourceVersion read.</summary>
    Overwrite,
}

/// <summary>
/// What a replica read of the CA Secret at a check: <see cref="Missing"/>; or unusable (<see cref="Error"/> names the
/// Secret and the field); or a <see cref="State"/> with the Secret's <see cref="Uid"/>. <see cref="UnchangedReads"/>:
/// at how many checks in a row this replica has read the Secret at this same resourceVersion (1 the first time).
/// </summary>
internal sealed record CaSecretRead(bool Missing, CaState? State, string? Uid, string? Error, int UnchangedReads)
{
    public static CaSecretRead Gone { get; } = new(true, null, null, null, 1);

    public static CaSecretRead Unusable(string error, int unchangedReads = 1) => new(false, null, null, error, unchangedReads);

    public static CaSecretRead Of(CaState state, string? uid, int unchangedReads = 1) => new(false, state, uid, null, unchangedReads);
}

/// <summary>
/// How a running replica keeps the CA Secret what the data planes trust (ADR 0014, "Repair"). Every replica holds the
/// CA and the rotation stage in memory, so a Secret deleted, emptied or corrupted while replicas run is written back by
/// the leader from what it holds, the same CA and stage: data planes that trust it keep working and no rotation
/// happens that nobody planned. Followers never write; they keep what they hold until the Secret is usable again. A
/// Secret created again during the gap by a replica that started then (the create-once path: it held no CA) carries a
/// CA no data plane trusts (the ConfigMaps carry the leader's bundle); the leader overwrites it, and a follower keeps
/// its own CA until the leader has had a check to do so, then follows what is stored (which is then what the leader
/// holds, or, when that fresh replica is the leader, its new CA). Pure.
/// </summary>
internal static class CaSecretRepair
{
    /// <summary>
    /// At how many checks in a row a follower must read a Secret created again with a CA it does not know before it
    /// follows it: two check intervals, so the leader (which checks once per interval too) has checked at least once.
    /// </summary>
    public const int FollowForeignAfterReads = 3;

    /// <summary>
    /// The action for what was read, given the state this replica holds (<paramref name="held"/>, from the Secret of
    /// uid <paramref name="heldUid"/>) and whether it leads.
    /// </summary>
    public static CaSecretAction Decide(CaState held, string? heldUid, CaSecretRead read, bool leading)
    {
        if (read.Missing)
        {
            return leading ? CaSecretAction.Recreate : CaSecretAction.KeepHeld;
        }

        if (read.State is not { } stored)
        {
            return leading ? CaSecretAction.Overwrite : CaSecretAction.KeepHeld;
        }

        if (IsForeignRecreation(held, heldUid, stored, read.Uid))
        {
            if (leading)
            {
                return CaSecretAction.Overwrite;
            }

            return read.UnchangedReads >= FollowForeignAfterReads ? CaSecretAction.Follow : CaSecretAction.KeepHeld;
        }

        return CaSecretAction.Follow;
    }

    /// <summary>
    /// Whether the Secret was deleted and created again (another uid) with a CA this replica does not trust: neither
    /// the CA it issues from nor one in its bundle. A recreation with the same CA is the leader's repair; an in-place
    /// edit (same uid) is someone replacing the CA on purpose.
    /// </summary>
    public static bool IsForeignRecreation(CaState held, string? heldUid, CaState stored, string? storedUid) =>
        heldUid is not null
        && storedUid is not null
        && heldUid != storedUid
        && !held.Trusted.Any(c => c.Thumbprint == stored.Signing.Thumbprint)
        && held.Next?.Thumbprint != stored.Signing.Thumbprint;
}
