namespace FsmGateway.Configuration;

/// <summary>
/// Something a config source or the reducer threw, contained by <see cref="ConfigPipeline"/> so that the pipeline
/// lives on: the source keeps its last contents while it is resubscribed, or the one event is skipped.
/// </summary>
/// <param name="Source">The name of the source that faulted, or whose event could not be applied.</param>
/// <param name="Exception">What was thrown.</param>
/// <param name="RetryAfter">
/// When the source is subscribed again (it faulted: its events ended in <c>OnError</c>, or subscribing threw); null
/// when one event could not be applied and was skipped.
/// </param>
public sealed record ConfigSourceFault(string Source, Exception Exception, TimeSpan? RetryAfter);
