using System.Collections.Immutable;
using FsmGateway.Resources;

namespace FsmGateway.Routing;

/// <summary>
/// What the transport actually did with each listening port, fed back into the compiler so that
/// <c>Programmed</c> tells the truth. Keyed by port.
/// </summary>
/// <param name="ByPort">The outcome per port; a port not listed is still pending.</param>
/// <param name="AssumeBound">When <see langword="true"/>, a port not listed counts as bound: what an offline compile reports.</param>
public sealed record ListenerBindings(ImmutableSortedDictionary<int, BindOutcome> ByPort, bool AssumeBound)
{
    /// <summary>No port bound yet: every listener is pending.</summary>
    public static ListenerBindings Pending { get; } = new(ImmutableSortedDictionary<int, BindOutcome>.Empty, AssumeBound: false);

    /// <summary>Every port counts as bound: the status a cluster would show once the data plane serves the table.</summary>
    public static ListenerBindings AssumeAllBound { get; } = new(ImmutableSortedDictionary<int, BindOutcome>.Empty, AssumeBound: true);

    /// <summary>
    /// What data planes elsewhere reported, per Gateway and port (a controller's view, from the config stream). When
    /// set, it decides every Gateway's outcomes and <see cref="ByPort"/> and <see cref="AssumeBound"/> are not used.
    /// </summary>
    public ImmutableSortedDictionary<ResourceKey, ImmutableSortedDictionary<int, BindOutcome>>? ByGateway { get; init; }

    /// <summary>The outcome of every port of a Gateway no data plane has reported for, when <see cref="ByGateway"/> is set.</summary>
    public BindOutcome Unreported { get; init; } = BindOutcome.NotYetBound;

    /// <summary>Outcomes reported by the data planes of each Gateway; a Gateway without a report gets <paramref name="unreported"/>.</summary>
    /// <param name="byGateway">The outcome per Gateway and port; a port a reporting data plane does not list is pending.</param>
    /// <param name="unreported">The outcome (pending, with a message saying why) of a Gateway no data plane has reported for.</param>
    /// <returns>The bindings.</returns>
    public static ListenerBindings Reported(ImmutableSortedDictionary<ResourceKey, ImmutableSortedDictionary<int, BindOutcome>> byGateway, BindOutcome unreported) =>
        new(ImmutableSortedDictionary<int, BindOutcome>.Empty, AssumeBound: false) { ByGateway = byGateway, Unreported = unreported };

    /// <summary>The outcome for <paramref name="port"/> of <paramref name="gateway"/>.</summary>
    /// <param name="gateway">The Gateway the listener belongs to.</param>
    /// <param name="port">The port.</param>
    /// <returns>The reported outcome when <see cref="ByGateway"/> is set, else <see cref="For(int)"/>.</returns>
    public BindOutcome For(ResourceKey gateway, int port)
    {
        if (ByGateway is null)
        {
            return For(port);
        }

        return ByGateway.TryGetValue(gateway, out var ports)
            ? ports.TryGetValue(port, out var outcome) ? outcome : BindOutcome.NotYetBound
            : Unreported;
    }

    /// <summary>The outcome for <paramref name="port"/>.</summary>
    /// <param name="port">The port.</param>
    /// <returns>The recorded outcome, or the default for unlisted ports.</returns>
    public BindOutcome For(int port) =>
        ByPort.TryGetValue(port, out var outcome) ? outcome : AssumeBound ? BindOutcome.Bound : BindOutcome.NotYetBound;
}

/// <summary>The outcome of binding one port.</summary>
/// <param name="State">Bound, failed or pending.</param>
/// <param name="Message">Why it failed (e.g. "address already in use"), for the status message.</param>
public sealed record BindOutcome(BindState State, string? Message)
{
    /// <summary>The socket is listening.</summary>
    public static BindOutcome Bound { get; } = new(BindState.Bound, null);

    /// <summary>Not tried yet.</summary>
    public static BindOutcome NotYetBound { get; } = new(BindState.Pending, null);

    /// <summary>The bind failed.</summary>
    /// <param name="message">Why.</param>
    /// <returns>A failed outcome.</returns>
    public static BindOutcome Failed(string message) => new(BindState.Failed, message);
}

/// <summary>The state of a listening socket.</summary>
public enum BindState
{
    /// <summary>Not bound yet.</summary>
    Pending,

    /// <summary>Listening.</summary>
    Bound,

    /// <summary>The bind failed (port in use, permission).</summary>
    Failed,
}
