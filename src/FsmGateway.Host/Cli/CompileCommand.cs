using System.CommandLine;
using FsmGateway.Configuration;
using FsmGateway.Kubernetes.Manifests;
using FsmGateway.Resources;
using FsmGateway.Routing;

namespace FsmGateway.Host.Cli;

/// <summary>
/// <c>compile</c>: the offline compiler. Reads manifests, compiles them as the gateway would, and prints every
/// object of ours with the status that would be written, plus the routing table, without touching a cluster.
/// </summary>
internal static class CompileCommand
{
    public static Command Create()
    {
        var paths = new Argument<string[]>("PATH")
        {
            Description = "Manifest files, or folders of .yaml/.yml/.json manifests.",
            Arity = ArgumentArity.OneOrMore,
        };
        var output = new Option<string>("--output", "-o")
        {
            Description = "Output format.",
            DefaultValueFactory = _ => "yaml",
        };
        output.AcceptOnlyFromAmong("yaml", "json");
        var controllerName = new Option<string>("--controller-name")
        {
            Description = "The controller name whose GatewayClasses are ours.",
            DefaultValueFactory = _ => GatewayApi.DefaultControllerName,
        };
        var ns = new Option<string>("--namespace", "-n")
        {
            Description = "The namespace for objects that name none, as kubectl apply -n.",
            DefaultValueFactory = _ => "default",
        };

        var command = new Command("compile", "Compile Gateway API manifests offline: print each object's status and the routing table. " +
                                             "Listeners are reported as they would be once their ports are bound.")
        {
            paths, output, controllerName, ns,
        };
        command.SetAction(parse => Run(
            parse.GetValue(paths)!,
            parse.GetValue(output)!,
            parse.GetValue(controllerName)!,
            parse.GetValue(ns)!,
            parse.InvocationConfiguration.Output,
            parse.InvocationConfiguration.Error));
        return command;
    }

    internal static int Run(string[] paths, string output, string controllerName, string ns, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            return RunCore(paths, output, controllerName, ns, stdout, stderr);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The reader and the compiler report bad input as data; this is a fault of ours. Say so in one line, no stack.
            stderr.WriteLine($"error: compile failed ({ErrorText.Of(e)}); this is a bug, please report it with the manifests");
            return ExitCodes.Crashed; // not 1: that means "your manifests", and this is not about them
        }
    }

    private static int RunCore(string[] paths, string output, string controllerName, string ns, TextWriter stdout, TextWriter stderr)
    {
        var manifests = ManifestReader.ReadPaths(paths, ns);
        foreach (var note in manifests.Notes)
        {
            stderr.WriteLine($"note: {note}");
        }

        if (!manifests.Succeeded)
        {
            foreach (var error in manifests.Errors)
            {
                stderr.WriteLine($"error: {error}");
            }

            stderr.WriteLine($"compile: {manifests.Errors.Length} manifest error(s); nothing compiled");
            return ExitCodes.BadInput;
        }

        var snapshot = ConfigSnapshot.From(manifests.Resources, "manifests");
        var options = new CompilerOptions
        {
            ControllerName = controllerName,
            ImplicitGatewayClassName = GatewayApi.DefaultGatewayClassName,
        };
        var result = RouteCompiler.Compile(snapshot, options, ListenerBindings.AssumeAllBound);
        var json = CompilationResultJson.ToJsonNode(result);
        stdout.Write(output == "json" ? CompilationResultJson.ToJson(result) + "\n" : YamlOutput.Write(json));
        return ExitCodes.Ok;
    }
}
