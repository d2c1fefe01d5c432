namespace FsmGateway.Configuration;

/// <summary>Somewhere Gateway API objects come from: the Kubernetes API, manifest files, code.</summary>
public interface IConfigSource
{
    /// <summary>A name unique among the gateway's sources; it tags every event the source sends.</summary>
    string Name { get; }

    /// <summary>
    /// The source's events: on subscription its current contents, then <see cref="ConfigEvent.SourceSynced"/>
    /// (or a <see cref="ConfigEvent.SourceReset"/>), then changes as they happen.
    /// </summary>
    IObservable<ConfigEvent> Events { get; }
}
