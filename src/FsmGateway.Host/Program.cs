using System.CommandLine;
using FsmGateway.Host.Cli;

var root = new RootCommand("FsmGateway: an L4 (TCP) gateway for the Kubernetes Gateway API.")
{
    CompileCommand.Create(),
};
return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
