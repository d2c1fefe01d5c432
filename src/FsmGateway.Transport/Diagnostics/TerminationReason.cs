namespace FsmGateway.Transport.Proxy;

/// <summary>
/// Why a client connection ended: the <c>reason</c> label of <c>fsmgateway.connections.closed</c> and the access log's
/// <c>reason</c> field, rendered by <see cref="TerminationReasons.Text"/>. The first reason set wins: the heartbeat's deadlines,
/// the drain deadline and a refusal set theirs before they abort, so the resets their abort causes are not reported.
/// </summary>
/// <remarks>
/// A new reason slots in as a member before <see cref="Error"/>; its label and access-log text follow from
/// <see cref="TerminationReasons"/>, and the metric tag sets are built for every member.
/// </remarks>
internal enum TerminationReason
{
    /// <summary>Not ended yet.</summary>
    None = 0,

    /// <summary>The client's end of stream (FIN) ended the relay first, and neither side failed.</summary>
    ClientClosed,

    /// <summary>The backend's end of stream (FIN) ended the relay first, and neither side failed.</summary>
    BackendClosed,

    /// <summary>Receiving from or sending to the client failed (a reset, most often).</summary>
    ClientReset,

    /// <summary>Receiving from or sending to the backend failed (a reset, most often).</summary>
    BackendReset,

    /// <summary>No bytes either way for <see cref="ProxyOptions.IdleTimeout"/>.</summary>
    IdleTimeout,

    /// <summary>Open for longer than <see cref="ProxyOptions.MaxConnectionDuration"/>.</summary>
    MaxDuration,

    /// <summary>One direction had ended, and no bytes moved the other way for <see cref="ProxyOptions.HalfClosedTimeout"/>.</summary>
    HalfClosedTimeout,

    /// <summary>Still open at the drain deadline of a removed listener or of the proxy's shutdown.</summary>
    Drain,

    /// <summary>Refused: no route is attached to the listener, or every backend has weight 0.</summary>
    RefusedNoRoute,

    /// <summary>Refused: the chosen backend is invalid (a missing Service, a reference not permitted) or has no ready endpoint.</summary>
    RefusedNoHealthyEndpoint,

    /// <summary>Refused: the backend has endpoints, but every upstream connect attempt failed.</summary>
    RefusedUpstreamConnectFailed,

    /// <summary>Refused: the listener accepts the PROXY protocol and the header was malformed, missing, or not complete within the inspection timeout.</summary>
    RefusedProxyProtocol,

    /// <summary>
    /// Refused: a connection cap of the chosen backend was reached (its policy's <c>circuitBreaker.maxConnections</c>,
    /// or every endpoint at <c>circuitBreaker.perEndpoint.maxConnections</c>); the client connection is closed at once.
    /// </summary>
    RefusedBackendLimit,

    /// <summary>Refused: a connection cap of the listener's client policy is reached (ClientTrafficPolicy's connection limit, an FSM ConcurrencyLimit).</summary>
    RefusedConnectionLimit,

    /// <summary>Refused: the client address is not allowed by an FSM IPRestriction (not in its allow list, or in its deny list).</summary>
    RefusedIpDenied,

    /// <summary>An unexpected exception ended the connection (logged at Error).</summary>
    Error,
}

/// <summary>The text of each <see cref="TerminationReason"/> and which side ended the connection.</summary>
internal static class TerminationReasons
{
    /// <summary>Every reason a connection can end with (all but <see cref="TerminationReason.None"/>).</summary>
    public static readonly TerminationReason[] All = [.. Enum.GetValues<TerminationReason>().Where(static r => r != TerminationReason.None)];

    private static readonly string[] Texts = [.. Enum.GetValues<TerminationReason>().Select(static r => r == TerminationReason.None ? "none" : SnakeCase(r.ToString()))];

    /// <summary>The snake_case label value, e.g. <c>refused_no_route</c>.</summary>
    public static string Text(this TerminationReason reason) => Texts[(int)reason];

    /// <summary>Which side ended the connection first: <c>client</c>, <c>backend</c>, or <c>gateway</c> (timeouts, drain, refusals, errors).</summary>
    public static string ClosedBy(this TerminationReason reason) => reason switch
    {
        TerminationReason.ClientClosed or TerminationReason.ClientReset => "client",
        TerminationReason.BackendClosed or TerminationReason.BackendReset => "backend",
        _ => "gateway",
    };

    private static string SnakeCase(string name)
    {
        var text = new System.Text.StringBuilder(name.Length + 8);
        foreach (var c in name)
        {
            if (char.IsUpper(c) && text.Length > 0)
            {
                text.Append('_');
            }

            text.Append(char.ToLowerInvariant(c));
        }

        return text.ToString();
    }
}
