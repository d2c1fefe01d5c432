using System.CommandLine;
using FsmGateway.Host.Cli;

var root = new RootCommand("FsmGateway: an L4 (TCP) gateway for the Kubernetes Gateway API.")
{
    CompileCommand.Create(),
    RunCommand.Create(),
#if !DATA_PLANE // The Native AOT data plane has no KubernetesClient modes (docs/adr/0011).
    KubernetesCommands.CreateController(),
    KubernetesCommands.CreateGateway(),
#else
    ControllerStreamCli.CreateGateway(), // the config stream only (docs/adr/0010)
#endif
};

var parsed = root.Parse(args);

// Socket completions run inline on the epoll threads instead of hopping to the thread pool where the process proxies
// traffic (`run`, `gateway`): the relay's work per completion is a send or a buffer rent, and the hop costs more than the
// work (docs/adr/0005). The controller proxies nothing, so it keeps the default, where a continuation can never stall
// the event loop. Must be set before the first socket is created (parsing creates none); an explicit setting in the
// environment wins.
const string InlineCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";
if (parsed.CommandResult.Command.Name is "run" or "gateway" && Environment.GetEnvironmentVariable(InlineCompletions) is null)
{
    Environment.SetEnvironmentVariable(InlineCompletions, "1");
}

// The host handles SIGTERM and Ctrl-C itself (stop accepting, drain, exit 0); the parser must not cut that short.
return await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }).ConfigureAwait(false);
