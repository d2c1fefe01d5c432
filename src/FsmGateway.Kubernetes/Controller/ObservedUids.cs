using System.Collections.Concurrent;
using FsmGateway.Resources;

namespace FsmGateway.Kubernetes.Controller;

/// <summary>
/// The uid of each object whose status the controller writes, as its config watch last saw it. A status written is
/// written to one object: one deleted and created again under the same name is another object (a new uid) with no
/// status, even when its compiled status is the same as the old one's. <see cref="KubernetesStatusWriter"/> remembers
/// the uid it wrote to and writes again when this one differs, rather than taking the new object for written.
/// </summary>
/// <remarks>
/// Fed by the config watch (<see cref="Api.KubernetesWatchSource"/>) before each event enters the pipeline, so any
/// status set compiled from a snapshot holding the new object is written after the new uid is known here. A relist that
/// finds an object re-created while the watch was away reports it with its new uid. Only the kinds the writer writes are
/// kept (not Services and EndpointSlices); a deleted object is forgotten.
/// </remarks>
internal sealed class ObservedUids
{
    private readonly ConcurrentDictionary<ResourceKey, string> _uids = new();

    /// <summary>Whether the uids of <paramref name="kind"/> are kept.</summary>
    public static bool Tracks(ResourceKind kind) => KubernetesStatusWriter.WrittenKinds.Contains(kind);

    /// <summary>The object <paramref name="key"/> is, or is now, the one with <paramref name="uid"/> (null: not known).</summary>
    public void Upserted(ResourceKey key, string? uid)
    {
        if (!Tracks(key.Kind))
        {
            return;
        }

        if (uid is null)
        {
            _uids.TryRemove(key, out _);
        }
        else
        {
            _uids[key] = uid;
        }
    }

    /// <summary>The object <paramref name="key"/> is gone.</summary>
    public void Deleted(ResourceKey key) => _uids.TryRemove(key, out _);

    /// <summary>The uid of the object <paramref name="key"/> as last seen; null when it is not known (or gone).</summary>
    public string? UidOf(ResourceKey key) => _uids.TryGetValue(key, out var uid) ? uid : null;
}
