using System.CommandLine;
using FsmGateway.Host.Cli;

var root = new RootCommand("FsmGateway: an L4 (TCP) gateway for the Kubernetes Gateway API.")
{
    CompileCommand.Create(),
    RunCommand.Create(),
};

// The host handles SIGTERM and Ctrl-C itself (stop accepting, drain, exit 0); the parser must not cut that short.
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }).ConfigureAwait(false);
