using System.Collections.Immutable;
using FsmGateway.Resources;

namespace FsmGateway.Kubernetes.Manifests;

/// <summary>What some manifests hold: the objects read, notes on what was skipped or ignored, and errors.</summary>
/// <param name="Resources">The objects read, in file and document order; each key (kind, namespace, name) once.</param>
/// <param name="Notes">
/// Warnings, each located as <c>file: document N (line L): ...</c> and already escaped: objects skipped because
/// FsmGateway does not read their kind, fields not in the kind's schema (ignored), objects defined twice identically.
/// </param>
/// <param name="Errors">Documents or objects that could not be read.</param>
/// <remarks>
/// The same object (kind, namespace, name) defined twice: identical definitions are tolerated (the first is kept, with a
/// note); a definition that differs from an earlier one is an error located at the later one, naming both places,
/// and the earlier one is kept. The API server would apply the later one over the earlier; in a folder of files read
/// as one configuration, two different definitions are almost always a mistake, so it is reported, not guessed at.
/// </remarks>
public sealed record ManifestSet(ImmutableArray<Resource> Resources, ImmutableArray<string> Notes, ImmutableArray<ManifestError> Errors)
{
    /// <summary>Whether every document was read.</summary>
    public bool Succeeded => Errors.IsEmpty;

    /// <summary>Where each of <see cref="Resources"/> was defined (same order); empty when not known.</summary>
    internal ImmutableArray<ManifestLocation> Locations { get; init; } = [];

    internal static ManifestSet Failed(ManifestError error) => new([], [], [error]);

    /// <summary>
    /// The sets as one: resources, notes and errors in order, and each object once (see the remarks on
    /// <see cref="ManifestSet"/> for duplicates). Use it to join files read one by one.
    /// </summary>
    internal static ManifestSet Combine(IEnumerable<ManifestSet> sets)
    {
        var resources = ImmutableArray.CreateBuilder<Resource>();
        var locations = ImmutableArray.CreateBuilder<ManifestLocation>();
        var notes = ImmutableArray.CreateBuilder<string>();
        var errors = ImmutableArray.CreateBuilder<ManifestError>();
        var seen = new Dictionary<ResourceKey, (Resource Resource, ManifestLocation Location)>();
        foreach (var set in sets)
        {
            notes.AddRange(set.Notes);
            errors.AddRange(set.Errors);
            for (var i = 0; i < set.Resources.Length; i++)
            {
                var resource = set.Resources[i];
                var location = i < set.Locations.Length ? set.Locations[i] : new ManifestLocation("?", null, null);
                if (!seen.TryGetValue(resource.Key, out var first))
                {
                    seen[resource.Key] = (resource, location);
                    resources.Add(resource);
                    locations.Add(location);
                }
                else if (first.Resource.Equals(resource))
                {
                    notes.Add(location.Note(null, $"{Describe(resource.Key)} is defined again, identically (first at {first.Location}); one copy is used"));
                }
                else
                {
                    errors.Add(location.Error("metadata.name", $"{Describe(resource.Key)} is already defined differently at {first.Location}; an object may be defined once (that definition is kept)"));
                }
            }
        }

        return new ManifestSet(resources.ToImmutable(), notes.ToImmutable(), errors.ToImmutable()) { Locations = locations.ToImmutable() };
    }

    private static string Describe(ResourceKey key) => LogText.Escape(key.ToString());
}

/// <summary>Where an object was defined: file, document and line.</summary>
internal sealed record ManifestLocation(string Source, int? Document, int? Line)
{
    public ManifestError Error(string? field, string message) => new(Source, Document, Line, field, message);

    /// <summary>A note located here, formatted as an error is.</summary>
    public string Note(string? field, string message) => Error(field, message).ToString();

    public override string ToString() => Error(null, string.Empty).ToString()[..^2];
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
