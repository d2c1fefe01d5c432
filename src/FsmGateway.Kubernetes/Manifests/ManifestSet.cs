using System.Collections.Immutable;
using FsmGateway.Resources;

namespace FsmGateway.Kubernetes.Manifests;

/// <summary>What some manifests hold: the objects read, notes on what was skipped, and errors.</summary>
/// <param name="Resources">The objects read, in file and document order.</param>
/// <param name="Notes">Objects skipped because FsmGateway does not read their kind.</param>
/// <param name="Errors">Documents that could not be read.</param>
public sealed record ManifestSet(ImmutableArray<Resource> Resources, ImmutableArray<string> Notes, ImmutableArray<ManifestError> Errors)
{
    /// <summary>Whether every document was read.</summary>
    public bool Succeeded => Errors.IsEmpty;

    internal static ManifestSet Failed(ManifestError error) => new([], [], [error]);

    internal static ManifestSet Combine(IEnumerable<ManifestSet> sets)
    {
        var all = sets.ToList();
        return new ManifestSet([.. all.SelectMany(static s => s.Resources)], [.. all.SelectMany(static s => s.Notes)], [.. all.SelectMany(static s => s.Errors)]);
    }
}

/// <summary>A manifest problem, located as precisely as it can be.</summary>
/// <param name="Source">The file (or text source name).</param>
/// <param name="Document">The 1-based document number in the file, when known.</param>
/// <param name="Line">The 1-based line (of the error, or of the document's start), when known.</param>
/// <param name="Field">The field at fault, e.g. <c>spec.listeners[0].port</c>, when known.</param>
/// <param name="Message">What is wrong.</param>
public sealed record ManifestError(string Source, int? Document, int? Line, string? Field, string Message)
{
    /// <summary>The error as one line: <c>file: document N (line L): field: message</c>.</summary>
    /// <returns>The formatted error.</returns>
    public override string ToString()
    {
        // Every part but the message (whose input text is escaped where it is quoted) may come from input.
        var where = LogText.Escape(Source);
        if (Document is { } document)
        {
            where += $": document {document}";
            if (Line is { } line)
            {
                where += $" (line {line})";
            }
        }

        return Field is null ? $"{where}: {Message}" : $"{where}: {LogText.Escape(Field)}: {Message}";
    }
}
