namespace FsmGateway.Kubernetes.Mapping;

/// <summary>A field of a Kubernetes object that cannot be mapped: the field's path and what is wrong with it.</summary>
internal sealed class MappingException(string field, string problem) : Exception($"{field}: {problem}")
{
    public string Field { get; } = field;

    public string Problem { get; } = problem;
}
