using System.Collections.Immutable;
using FsmGateway.Configuration;
using FsmGateway.Resources;
using FsmGateway.Status;

namespace FsmGateway.Routing;

/// <summary>The output of one compilation: what to serve, what to write as status, and what a human should know.</summary>
/// <param name="Revision">The revision of the snapshot compiled.</param>
/// <param name="Table">The routing table.</param>
/// <param name="Statuses">The status of every object that is ours.</param>
/// <param name="Diagnostics">Notes for logs, sorted by object then message.</param>
public sealed record CompilationResult(long Revision, RoutingTable Table, StatusSet Statuses, ImmutableArray<Diagnostic> Diagnostics)
{
    /// <summary>The apiVersion each route with a status was written in (v1 or v1alpha2), so output can echo it. GatewayClasses and Gateways are v1.</summary>
    public ResourceMap<string> RouteApiVersions { get; init; } = ResourceMap<string>.Empty;
}

/// <summary>A note about one object (or the whole snapshot) for logs and the offline compiler's output.</summary>
/// <param name="Severity">How much it matters.</param>
/// <param name="Object">The object it concerns, when there is one.</param>
/// <param name="Message">What happened and why.</param>
public sealed record Diagnostic(DiagnosticSeverity Severity, ResourceKey? Object, string Message);

/// <summary>How much a diagnostic matters.</summary>
public enum DiagnosticSeverity
{
    /// <summary>A decision worth knowing (which route won a port).</summary>
    Info,

    /// <summary>Something was ignored or refused.</summary>
    Warning,
}
