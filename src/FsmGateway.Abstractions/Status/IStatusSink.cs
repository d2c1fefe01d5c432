namespace FsmGateway.Status;

/// <summary>Receives the statuses the compiler decided: a Kubernetes status writer, a log, an admin endpoint.</summary>
public interface IStatusSink
{
    /// <summary>Publishes one complete set of statuses. Sinks compare with what they hold and write only what changed.</summary>
    /// <param name="statuses">Every status of every object that is ours, as of one compilation.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the statuses are written.</returns>
    ValueTask PublishAsync(StatusSet statuses, CancellationToken cancellationToken);
}
