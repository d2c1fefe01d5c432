using System.Collections.Immutable;
using FsmGateway.Resources;
using FsmGateway.Status;

namespace FsmGateway.Routing.Compilation;

/// <summary>Decides which GatewayClasses are ours, and which of them we accept.</summary>
internal static class GatewayClassFilter
{
    /// <summary>The classes that name our controller, by name, with the problem that keeps each from being accepted (null when accepted).</summary>
    public static Dictionary<string, string?> Run(CompilationContext context, ImmutableSortedDictionary<ResourceKey, GatewayClassStatus>.Builder statuses)
    {
        var ours = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var gatewayClass in context.GatewayClasses)
        {
            if (!string.Equals(gatewayClass.ControllerName, context.Options.ControllerName, StringComparison.Ordinal))
            {
                context.Note(gatewayClass.Key, $"not ours: spec.controllerName is '{gatewayClass.ControllerName}', we are '{context.Options.ControllerName}'");
                continue;
            }

            var generation = gatewayClass.Metadata.Generation;
            string? problem = gatewayClass.ParametersRef is null
                ? null
                : $"spec.parametersRef ({gatewayClass.ParametersRef}) is not supported: FsmGateway takes no GatewayClass parameters";
            ours[gatewayClass.Metadata.Name] = problem;
            var accepted = problem is null
                ? Conditions.True(ConditionTypes.Accepted, ConditionReasons.Accepted, "GatewayClass is accepted", generation)
                : Conditions.False(ConditionTypes.Accepted, ConditionReasons.InvalidParameters, problem, generation);
            statuses[gatewayClass.Key] = new GatewayClassStatus(Conditions.Sorted(accepted));
        }

        if (context.GatewayClasses.Count == 0 && context.Options.ImplicitGatewayClassName is { } implicitName)
        {
            ours[implicitName] = null;
            context.Note(null, $"no GatewayClass given: assuming GatewayClass '{implicitName}' with controller '{context.Options.ControllerName}'");
        }

        return ours;
    }
}
