using System.CommandLine;
using FsmGateway.Host.ControlPlane;
using FsmGateway.Kubernetes;
using FsmGateway.Kubernetes.ControlPlane;
using FsmGateway.Resources;
using FsmGateway.Transport;
using FsmGateway.Transport.Hosting;

namespace FsmGateway.Host.Cli;

/// <summary>
/// The two in-cluster modes. <c>controller</c>: watch the cluster, compile, write status as the elected leader, and
/// provision a data plane per accepted Gateway. <c>gateway</c>: the data plane of one Gateway, reading its config from
/// the API server. Both use the in-cluster config in a pod, else <c>--kubeconfig</c>, <c>$KUBECONFIG</c> or
/// <c>~/.kube/config</c>; both are ready once every watched kind has been listed.
/// </summary>
internal static class KubernetesCommands
{
    public static Command CreateController()
    {
        var connection = new ConnectionOptions();
        var leaseNamespace = new Option<string>("--leader-election-namespace") { Description = "Namespace of the leader-election Lease.", DefaultValueFactory = _ => Environment.GetEnvironmentVariable("POD_NAMESPACE") ?? "fsm-system" };
        var leaseName = new Option<string>("--lease-name") { Description = "Name of the leader-election Lease.", DefaultValueFactory = _ => "fsm-gateway-controller" };
        var leaseDuration = new Option<string>("--lease-duration") { Description = "How long a leader's Lease lasts without renewal before another replica may take it.", DefaultValueFactory = _ => "15s" };
        var renewDeadline = new Option<string>("--renew-deadline") { Description = "How long the leader keeps trying to renew before it stops leading.", DefaultValueFactory = _ => "10s" };
        var retryPeriod = new Option<string>("--retry-period") { Description = "How often the Lease is tried.", DefaultValueFactory = _ => "2s" };
        var noLeaderElection = new Option<bool>("--no-leader-election") { Description = "Act as leader without a Lease (only when a single replica runs)." };
        var image = new Option<string?>("--image") { Description = "Data-plane image to provision per accepted Gateway (a Deployment and a LoadBalancer Service labelled app=fsm-gateway). Without it, nothing is provisioned." };
        var preStopDelay = new Option<string>("--data-plane-pre-stop-delay")
        {
            Description = "How long a stopping data-plane pod keeps serving before it drains (a preStop 'sleep' handler, which Kubernetes runs from 1.30 on), so endpoints and load balancers stop sending it new connections first; 0s for none; at most 5m. Its terminationGracePeriodSeconds is this plus --drain-timeout plus 10 s. Default 5s.",
        };
        var streamAddress = new Option<string>("--stream-address") { Description = "Address of the config stream data planes subscribe to (gRPC over HTTP/2; every replica serves it).", DefaultValueFactory = _ => "0.0.0.0" };
        var streamPort = new Option<int>("--stream-port") { Description = "Port of the config stream; 0 picks a free one.", DefaultValueFactory = _ => ConfigStreamServerOptions.DefaultPort };
        var tokenReview = new Option<string>("--stream-token-review-interval") { Description = "How often the ServiceAccount token each open config stream was admitted with is reviewed again (a TokenReview), so a revoked ServiceAccount or deleted pod stops receiving config; a stream also ends when its token expires, and the data plane connects again with the token the kubelet renewed.", DefaultValueFactory = _ => "1m" };
        var caLifetime = new Option<string>("--stream-ca-lifetime") { Description = "How long a config stream CA the controller creates is valid (the first, and each rotation's new one).", DefaultValueFactory = _ => "8760h" };
        var caRotateAt = new Option<double>("--stream-ca-rotate-at") { Description = "At which fraction of its lifetime the CA is rotated (above 0, below 1): a new CA is created and trusted beside the old one, serving certificates switch to it once data planes have both, and the old one is dropped after --stream-ca-retire-grace.", DefaultValueFactory = _ => 2.0 / 3 };
        var caPropagation = new Option<string>("--stream-ca-propagation-delay") { Description = "How long after the bundle of old and new CA is in every data plane's ConfigMap the controller's certificates switch to the new CA (the kubelet's time to update mounted ConfigMaps).", DefaultValueFactory = _ => "5m" };
        var caGrace = new Option<string>("--stream-ca-retire-grace") { Description = "How long after the switch the old CA stays trusted.", DefaultValueFactory = _ => "1h" };
        var caCheck = new Option<string>("--stream-ca-check-interval") { Description = "How often every replica reads the CA Secret again (to follow a rotation), and the leader checks whether a rotation stage is due.", DefaultValueFactory = _ => "1m" };
        var streamInsecure = new Option<bool>("--stream-insecure")
        {
            Description = "Serve the config stream as plain HTTP/2 to any caller, without TLS or data-plane authentication (local use and tests only). By default it is TLS, with a certificate from the CA in Secret fsm-gateway-controller-ca in --leader-election-namespace (created if absent), and each data plane is authenticated by its ServiceAccount token.",
        };
        var dataPlaneStream = new Option<string?>("--data-plane-controller-address")
        {
            Description = "The config stream provisioned data planes subscribe to (their --controller-address); its host is also in the stream's certificate. Default: https://fsm-gateway-controller.NAMESPACE:STREAM-PORT (http:// with --stream-insecure), the controller Service of deploy/ in --leader-election-namespace; 'none' to have them read the API server (they then report no bind outcomes, so Programmed stays False, and their ServiceAccount has no permissions unless you grant some).",
        };
        var serve = new ServeOptions();
        var command = new Command("controller", "Run the controller: watch Gateway API objects, write their status (as the elected leader), provision a data plane per Gateway and stream each data plane its Gateway's config.")
        {
            leaseNamespace, leaseName, leaseDuration, renewDeadline, retryPeriod, noLeaderElection, image, preStopDelay, streamAddress, streamPort, streamInsecure, tokenReview, dataPlaneStream,
            caLifetime, caRotateAt, caPropagation, caGrace, caCheck,
        };
        connection.AddTo(command);
        serve.AddTo(command);
        command.SetAction((parse, cancellationToken) =>
        {
            var error = parse.InvocationConfiguration.Error;
            if (!TryRead(serve, connection, parse, "controller", error, out var settings, out var configureClient))
            {
                return Task.FromResult(ExitCodes.BadInput);
            }

            TimeSpan Positive(Option<string> option) => DurationParser.Read(parse, option) is var value && value > TimeSpan.Zero
                ? value
                : throw new ArgumentException($"{option.Name}: '{parse.GetValue(option)}' is not a positive duration (e.g. 15s)");
            TimeSpan lease, renew, retry, review;
            TimeSpan? preStop;
            CaRotationOptions rotation;
            try
            {
                (lease, renew, retry, review) = (Positive(leaseDuration), Positive(renewDeadline), Positive(retryPeriod), Positive(tokenReview));
                preStop = parse.GetValue(preStopDelay) is null ? null : DurationParser.Read(parse, preStopDelay);
                rotation = new CaRotationOptions
                {
                    Lifetime = Positive(caLifetime),
                    RotateAt = parse.GetValue(caRotateAt),
                    PropagationDelay = DurationParser.Read(parse, caPropagation),
                    RetireGrace = Positive(caGrace),
                    CheckInterval = Positive(caCheck),
                };
            }
            catch (ArgumentException e)
            {
                error.WriteLine($"controller: {e.Message}");
                return Task.FromResult(ExitCodes.BadInput);
            }

            if (!(lease > renew && renew > retry))
            {
                error.WriteLine("controller: leader election needs --lease-duration > --renew-deadline > --retry-period");
                return Task.FromResult(ExitCodes.BadInput);
            }

            var insecure = parse.GetValue(streamInsecure);
            var dataPlaneAddress = parse.GetValue(dataPlaneStream) switch
            {
                "none" => null,
                { } given => given,
                null => parse.GetValue(streamPort) is > 0 and var port
                    ? $"{(insecure ? "http" : "https")}://{ConfigStreamServerOptions.ServiceName}.{parse.GetValue(leaseNamespace)}:{port.ToString(System.Globalization.CultureInfo.InvariantCulture)}"
                    : null,
            };
            if (dataPlaneAddress is not null && (!Uri.TryCreate(dataPlaneAddress, UriKind.Absolute, out var dataPlaneUri) || dataPlaneUri.Scheme != (insecure ? "http" : "https")))
            {
                error.WriteLine($"controller: --data-plane-controller-address '{LogText.Escape(dataPlaneAddress)}' is not {(insecure ? "http" : "https")}://HOST:PORT (the stream is {(insecure ? "plain HTTP/2 with --stream-insecure" : "TLS; --stream-insecure serves http://")})");
                return Task.FromResult(ExitCodes.BadInput);
            }

            return GatewayServer.RunAsync(
                "controller",
                settings,
                o =>
                {
                    o.Mode = GatewayMode.Controller;
                },
                gateway => gateway
                    .AddKubernetes(o =>
                    {
                        configureClient(o);
                        o.UserAgent = UserAgent("controller");
                    })
                    .AddKubernetesController(o =>
                    {
                        o.LeaderElection = !parse.GetValue(noLeaderElection);
                        o.LeaseNamespace = parse.GetValue(leaseNamespace)!;
                        o.LeaseName = parse.GetValue(leaseName)!;
                        o.LeaseDuration = lease;
                        o.RenewDeadline = renew;
                        o.RetryPeriod = retry;
                        o.DataPlaneImage = parse.GetValue(image);
                        o.DataPlaneControllerAddress = dataPlaneAddress;

                        // The controller drains nothing itself: its --drain-timeout is its data planes'.
                        o.DataPlaneDrainTimeout = settings.DrainTimeout;
                        if (preStop is { } delay)
                        {
                            o.DataPlanePreStopDelay = delay;
                        }

                        if (Environment.GetEnvironmentVariable("POD_NAME") is { Length: > 0 } pod)
                        {
                            o.Identity = pod;
                        }
                    }),
                error,
                cancellationToken,
                new ConfigStreamHosting(o =>
                {
                    o.Address = parse.GetValue(streamAddress)!;
                    o.Port = parse.GetValue(streamPort);
                    o.Provisions = parse.GetValue(image) is not null;
                    o.Insecure = insecure;
                    o.TokenReviewInterval = review;
                    o.CaRotation = rotation;
                    o.Namespace = parse.GetValue(leaseNamespace)!;
                    if (dataPlaneAddress is not null && new Uri(dataPlaneAddress).Host is { Length: > 0 } host)
                    {
                        o.ExtraServingNames.Add(host.Trim('[', ']'));
                    }

                    if (Environment.GetEnvironmentVariable("POD_NAME") is { Length: > 0 } pod)
                    {
                        o.Identity = pod;
                    }
                }));
        });
        return command;
    }

    public static Command CreateGateway()
    {
        var connection = new ConnectionOptions();
        var gatewayName = new Option<string>(CommandLineNames.Gateway, "-g") { Description = "The Gateway to serve, as NAMESPACE/NAME.", Required = true };
        var controllerAddress = ControllerStreamCli.CreateAddressOption(required: false);
        var caFile = ControllerStreamCli.CreateCaFileOption();
        var tokenFile = ControllerStreamCli.CreateTokenFileOption();
        var serve = new ServeOptions();
        var accessLog = new AccessLogCli();
        var command = new Command(CommandLineNames.GatewayCommand, "Run the data plane of one Gateway: bind its listeners and route them, reading config from the controller's config stream (--controller-address) or the API server.")
        {
            gatewayName, controllerAddress, caFile, tokenFile,
        };
        connection.AddTo(command);
        serve.AddTo(command);
        accessLog.AddTo(command);
        command.SetAction((parse, cancellationToken) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var name = parse.GetValue(gatewayName)!;
            var parts = name.Split('/');
            if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
            {
                error.WriteLine($"gateway: --gateway '{LogText.Escape(name)}' is not NAMESPACE/NAME");
                return Task.FromResult(ExitCodes.BadInput);
            }

            if (!ControllerStreamCli.TryRead(parse, controllerAddress, error, out var controllers))
            {
                return Task.FromResult(ExitCodes.BadInput);
            }

            ServeSettings settings;
            Action<KubernetesOptions>? configureClient = null;
            if (controllers.Count == 0 && (parse.GetValue(caFile) is not null || parse.GetValue(tokenFile) is not null))
            {
                error.WriteLine($"gateway: {CommandLineNames.ControllerCaFile} and {CommandLineNames.ControllerTokenFile} are for the controller's config stream; give {CommandLineNames.ControllerAddress} too");
                return Task.FromResult(ExitCodes.BadInput);
            }

            if (controllers.Count > 0)
            {
                if (connection.IsGiven(parse))
                {
                    error.WriteLine("gateway: --kubeconfig and --context are for reading the API server; with --controller-address the data plane uses no Kubernetes credentials");
                    return Task.FromResult(ExitCodes.BadInput);
                }

                try
                {
                    settings = serve.Read(parse);
                }
                catch (ArgumentException e)
                {
                    error.WriteLine($"gateway: {e.Message}");
                    return Task.FromResult(ExitCodes.BadInput);
                }
            }
            else if (!TryRead(serve, connection, parse, "gateway", error, out settings, out configureClient))
            {
                return Task.FromResult(ExitCodes.BadInput);
            }

            Action<Transport.AccessLog.AccessLogOptions>? configureAccessLog;
            try
            {
                configureAccessLog = accessLog.Read(parse);
            }
            catch (ArgumentException e)
            {
                error.WriteLine($"gateway: {e.Message}");
                return Task.FromResult(ExitCodes.BadInput);
            }

            return GatewayServer.RunAsync(
                "gateway",
                settings,
                o =>
                {
                    o.ServedGateway = new ResourceKey(ResourceKind.Gateway, parts[0], parts[1]);
                    o.Mode = GatewayMode.DataPlane;
                },
                gateway =>
                {
                    if (configureAccessLog is not null)
                    {
                        gateway.AddAccessLog(configureAccessLog);
                    }

                    if (controllers.Count > 0)
                    {
                        ControllerStreamCli.Use(gateway, controllers, new ResourceKey(ResourceKind.Gateway, parts[0], parts[1]), parse.GetValue(caFile), parse.GetValue(tokenFile));
                        return;
                    }

                    gateway.AddKubernetes(o =>
                    {
                        configureClient!(o);
                        o.UserAgent = UserAgent("gateway");
                    });
                },
                error,
                cancellationToken);
        });
        return command;
    }

    private static string UserAgent(string mode) =>
        $"fsm-gateway/{typeof(KubernetesCommands).Assembly.GetName().Version?.ToString(3)} ({mode})";

    private static bool TryRead(ServeOptions serve, ConnectionOptions connection, ParseResult parse, string command, TextWriter error, out ServeSettings settings, out Action<KubernetesOptions> configureClient)
    {
        settings = null!;
        configureClient = null!;
        try
        {
            settings = serve.Read(parse);
            configureClient = connection.Read(parse);
            return true;
        }
        catch (ArgumentException e)
        {
            error.WriteLine($"{command}: {e.Message}");
            return false;
        }
    }

    /// <summary>Where the API server is.</summary>
    private sealed class ConnectionOptions
    {
        private readonly Option<string?> _kubeconfig = new("--kubeconfig") { Description = "A kubeconfig file. Default: the in-cluster config in a pod, else $KUBECONFIG or ~/.kube/config." };
        private readonly Option<string?> _context = new("--context") { Description = "The kubeconfig context to use." };

        public void AddTo(Command command)
        {
            command.Options.Add(_kubeconfig);
            command.Options.Add(_context);
        }

        public bool IsGiven(ParseResult parse) => parse.GetResult(_kubeconfig) is { Implicit: false } || parse.GetResult(_context) is { Implicit: false };

        public Action<KubernetesOptions> Read(ParseResult parse)
        {
            var kubeconfig = parse.GetValue(_kubeconfig);
            var context = parse.GetValue(_context);
            if (kubeconfig is not null && !File.Exists(kubeconfig))
            {
                throw new ArgumentException($"--kubeconfig: '{kubeconfig}' does not exist");
            }

            Action<KubernetesOptions> configure = o =>
            {
                o.KubeconfigPath = kubeconfig;
                o.Context = context;
            };

            // Load the configuration now, so a broken kubeconfig (or none, outside a cluster) is a clear error at start.
            var probe = new KubernetesOptions();
            configure(probe);
            try
            {
                probe.BuildClientConfiguration();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                var where = kubeconfig ?? Environment.GetEnvironmentVariable("KUBECONFIG") ?? "the in-cluster config or ~/.kube/config";
                throw new ArgumentException($"cannot load the Kubernetes client configuration from {where}: {e.Message}", e);
            }

            return configure;
        }
    }
}
