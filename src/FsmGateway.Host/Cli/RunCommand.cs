using System.CommandLine;
using FsmGateway.Kubernetes;
using FsmGateway.Kubernetes.Manifests;
using FsmGateway.Transport;

namespace FsmGateway.Host.Cli;

/// <summary>
/// <c>run</c>: the gateway on one machine. Config comes from manifest files and folders (watched and hot-reloaded),
/// or, with no <c>--config</c>, from the embedded seed example (the FSM TCP-routing guide's Gateway and TCPRoute, with
/// the httpbin Service pointing at 127.0.0.1:8080).
/// </summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var config = new Option<string[]>("--config", "-c")
        {
            Description = "Manifest files or folders to serve, watched for changes. Without it, the embedded seed example is served.",
            AllowMultipleArgumentsPerToken = true,
        };
        var ns = new Option<string>("--namespace", "-n") { Description = "The namespace for objects that name none.", DefaultValueFactory = _ => "default" };
        var maxManifestSize = new Option<string>("--max-manifest-size")
        {
            Description = "The largest manifest file read (e.g. 8MiB, 512KiB); a larger file is reported as a manifest error and its previous objects stay.",
            DefaultValueFactory = _ => "8MiB",
        };
        var serve = new ServeOptions();
        var accessLog = new AccessLogCli();
        var command = new Command("run", "Run the gateway on one machine: serve TCP listeners from manifests, hot-reloading them, until SIGTERM or Ctrl-C (then drain).")
        {
            config, ns, maxManifestSize,
        };
        serve.AddTo(command);
        accessLog.AddTo(command);
        command.SetAction((parse, cancellationToken) =>
        {
            var error = parse.InvocationConfiguration.Error;
            ServeSettings settings;
            long maxFileSize;
            Action<Transport.AccessLog.AccessLogOptions>? configureAccessLog;
            try
            {
                settings = serve.Read(parse);
                configureAccessLog = accessLog.Read(parse);
                maxFileSize = SizeParser.Read(parse, maxManifestSize, 1, ManifestFileSourceOptions.MaxFileSizeLimit);
            }
            catch (ArgumentException e)
            {
                error.WriteLine($"run: {e.Message}");
                return Task.FromResult(ExitCodes.BadInput);
            }

            var paths = parse.GetValue(config) ?? [];
            var defaultNamespace = parse.GetValue(ns)!;
            foreach (var path in paths)
            {
                if (!File.Exists(path) && !Directory.Exists(path))
                {
                    error.WriteLine($"run: config path '{LogText.Escape(path)}' does not exist");
                    return Task.FromResult(ExitCodes.BadInput);
                }
            }

            return GatewayServer.RunAsync(
                "run",
                settings,
                o => o.StopWhenNothingBinds = true,
                gateway =>
                {
                    if (configureAccessLog is not null)
                    {
                        gateway.AddAccessLog(configureAccessLog);
                    }

                    if (paths.Length > 0)
                    {
                        gateway.LoadFromManifests(paths, defaultNamespace, o => o.MaxFileSize = maxFileSize);
                    }
                    else
                    {
                        gateway.AddConfigSource(EmbeddedExample.CreateSource(defaultNamespace));
                    }
                },
                error,
                cancellationToken);
        });
        return command;
    }
}
