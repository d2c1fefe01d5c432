namespace FsmGateway.Kubernetes.Mapping;

/// <summary>The outcome of mapping one Kubernetes object: a resource, or a note saying why it was skipped.</summary>
public sealed record MappedObject
{
    private MappedObject(Resources.Resource? resource, string? skipNote)
    {
        Resource = resource;
        SkipNote = skipNote;
    }

    /// <summary>The mapped resource; <see langword="null"/> when skipped.</summary>
    public Resources.Resource? Resource { get; }

    /// <summary>Why the object was skipped (a kind FsmGateway does not read); <see langword="null"/> when mapped.</summary>
    public string? SkipNote { get; }

    internal static MappedObject Of(Resources.Resource resource) => new(resource, null);

    internal static MappedObject Skip(string note) => new(null, note);
}

/// <summary>A Kubernetes object has a malformed field. The message names the object and the field.</summary>
public sealed class ResourceMappingException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="field">The path of the field at fault, e.g. <c>spec.listeners[1].port</c>.</param>
    /// <param name="problem">What is wrong with it.</param>
    /// <param name="objectDescription">The object, as <c>Kind name</c>.</param>
    public ResourceMappingException(string field, string problem, string objectDescription)
        : base($"{objectDescription}: {field}: {problem}")
    {
        Field = field;
        Problem = problem;
        ObjectDescription = objectDescription;
    }

    /// <summary>The path of the field at fault.</summary>
    public string Field { get; }

    /// <summary>What is wrong with the field.</summary>
    public string Problem { get; }

    /// <summary>The object, as <c>Kind name</c>.</summary>
    public string ObjectDescription { get; }
}
