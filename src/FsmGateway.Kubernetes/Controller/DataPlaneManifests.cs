using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using k8s.Models;

namespace FsmGateway.Kubernetes.Controller;

/// <summary>The objects that make one Gateway's data plane, as they should be.</summary>
/// <param name="Deployment">The pods.</param>
/// <param name="Service">Their Service, exposing the listener ports.</param>
/// <param name="DisruptionBudget">Keeps one pod through voluntary disruptions; null when there is one replica (a budget would block node drains).</param>
internal sealed record DataPlaneObjects(V1Deployment Deployment, V1Service Service, V1PodDisruptionBudget? DisruptionBudget);

/// <summary>
/// Builds, as pure functions of a Gateway and the provisioning options, what the controller applies for it: a
/// Deployment running <c>fsm-gateway gateway --gateway ns/name</c>, a Service (LoadBalancer by default) labelled
/// <c>app: fsm-gateway</c> exposing the listener ports and, with more than one replica, a PodDisruptionBudget, all
/// owned by the Gateway (deleting it deletes them); and per namespace the ServiceAccount the pods run as (owned by
/// every Gateway there; it has no Kubernetes API permissions, and the pods mount no API token) and, when the stream is
/// secured, the ConfigMap with the controller's CA certificate. No I/O, no clock: the same inputs give the same
/// objects, which is what server-side apply wants and what the snapshot tests check.
/// </summary>
internal static partial class DataPlaneManifests
{
    /// <summary>The label every provisioned object carries, with the value <see cref="ManagedByValue"/>.</summary>
    public const string ManagedByLabel = "app.kubernetes.io/managed-by";

    public const string ManagedByValue = "fsm-gateway-controller";

    /// <summary>The label FSM's guide selects the Service by: <c>kubectl get svc -l app=fsm-gateway</c>.</summary>
    public const string AppLabel = "app";

    public const string AppValue = "fsm-gateway";

    public const string GatewayNameLabel = "gateway.networking.k8s.io/gateway-name";

    /// <summary>Annotations: which controller made the object, and for which Gateway (in full, where labels cannot hold it).</summary>
    public const string ControllerAnnotation = "gateway.fsm-gateway.io/controller-name";

    public const string GatewayAnnotation = "gateway.fsm-gateway.io/gateway";

    public const string ServiceAccountName = "fsm-gateway";

    /// <summary>The audience of the projected token a data plane authenticates to the controller's config stream with (ADR 0010).</summary>
    public const string TokenAudience = "fsm-gateway-controller";

    /// <summary>The projected token's lifetime: the shortest the API server allows. The kubelet renews it at 80%; the data plane reads it again at every connect.</summary>
    public const long TokenExpirationSeconds = 600;

    /// <summary>The ConfigMap in each Gateway namespace holding the controller's CA certificate (public), which data planes verify the stream against.</summary>
    public const string AuthorityConfigMapName = "fsm-gateway-controller-ca";

    /// <summary>The key of the CA certificate (PEM) in <see cref="AuthorityConfigMapName"/>.</summary>
    public const string AuthorityKey = "ca.crt";

    /// <summary>Where the pod finds the CA certificate.</summary>
    public const string AuthorityDirectory = "/var/run/secrets/fsm-gateway/controller-ca";

    /// <summary>Where the pod finds its projected token.</summary>
    public const string TokenDirectory = "/var/run/secrets/fsm-gateway/token";

    public const int DefaultAdminPort = 9901;

    /// <summary>Added to the pre-stop delay and the drain timeout: the kubelet must not kill a pod still draining.</summary>
    public static readonly TimeSpan GraceMargin = TimeSpan.FromSeconds(10);

    private static readonly Regex Dns1035Label = DnsLabelRegex();

    /// <summary>The Deployment, Service and (with replicas above one) PodDisruptionBudget of <paramref name="gateway"/>.</summary>
    public static DataPlaneObjects Build(DataPlaneGateway gateway, DataPlaneParameters parameters, ProvisioningOptions options)
    {
        var replicas = parameters.Replicas ?? options.Replicas;
        return new DataPlaneObjects(
            Deployment(gateway, parameters, options, replicas),
            Service(gateway, parameters, options),
            replicas > 1 ? DisruptionBudget(gateway, options) : null);
    }

    /// <summary>
    /// <c>fsm-gateway-&lt;gateway&gt;</c> when that is a valid Service name (a DNS-1035 label of at most 63
    /// characters); otherwise a shortened, cleaned form with a hash of the full name, so it stays unique.
    /// </summary>
    public static string DataPlaneName(string gatewayName) => Label($"fsm-gateway-{gatewayName}", gatewayName);

    /// <summary>A label value for the Gateway's name: the name itself when it fits (63 characters), else a hashed form.</summary>
    public static string GatewayLabelValue(string gatewayName) => Label(gatewayName, gatewayName);

    /// <summary>The data plane's admin port: 9901, or the next port no listener uses.</summary>
    public static int AdminPort(IReadOnlyList<int> ports)
    {
        var port = DefaultAdminPort;
        while (ports.Contains(port))
        {
            port++;
        }

        return port;
    }

    /// <summary>The <c>prometheus.io/*</c> annotations of a pod whose metrics are at <c>/metrics</c> on <paramref name="port"/>.</summary>
    public static IReadOnlyDictionary<string, string> ScrapeAnnotations(int port) => new Dictionary<string, string>
    {
        ["prometheus.io/scrape"] = "true",
        ["prometheus.io/port"] = port.ToString(CultureInfo.InvariantCulture),
        ["prometheus.io/path"] = "/metrics",
    };

    /// <summary>The pods' <c>terminationGracePeriodSeconds</c>: the pre-stop delay, then the drain, plus a margin; whole seconds, rounded up.</summary>
    public static long GracePeriodSeconds(ProvisioningOptions options) =>
        (long)Math.Ceiling((options.PreStopDelay + options.DrainTimeout + GraceMargin).TotalSeconds);

    /// <summary>A duration as the command line reads it: whole seconds as <c>30s</c>, otherwise milliseconds.</summary>
    public static string DurationArgument(TimeSpan value) =>
        value.Ticks % TimeSpan.TicksPerSecond == 0
            ? string.Create(CultureInfo.InvariantCulture, $"{(long)value.TotalSeconds}s")
            : string.Create(CultureInfo.InvariantCulture, $"{(long)Math.Ceiling(value.TotalMilliseconds)}ms");

    /// <summary>The ServiceAccount the data planes of <paramref name="ns"/> run as, owned by every Gateway there (the last one deleted takes it along).</summary>
    public static V1ServiceAccount ServiceAccount(string ns, IEnumerable<DataPlaneGateway> owners, ProvisioningOptions options) => new()
    {
        ApiVersion = "v1",
        Kind = "ServiceAccount",
        Metadata = Metadata(ServiceAccountName, ns, null, options, [.. owners.OrderBy(g => g.Name, StringComparer.Ordinal).Select(g => OwnerReference(g, controller: false))]),
    };

    /// <summary>
    /// The ConfigMap <see cref="AuthorityConfigMapName"/> of <paramref name="ns"/>: the controller's CA certificate
    /// (<paramref name="authorityPem"/>, public only), mounted into the data-plane pods, which verify the controller's
    /// serving certificate against it. Owned like the ServiceAccount.
    /// </summary>
    public static V1ConfigMap AuthorityConfigMap(string ns, IEnumerable<DataPlaneGateway> owners, string authorityPem, ProvisioningOptions options) => new()
    {
        ApiVersion = "v1",
        Kind = "ConfigMap",
        Metadata = Metadata(AuthorityConfigMapName, ns, null, options, [.. owners.OrderBy(g => g.Name, StringComparer.Ordinal).Select(g => OwnerReference(g, controller: false))]),
        Data = new SortedDictionary<string, string>(StringComparer.Ordinal) { [AuthorityKey] = authorityPem },
    };

    /// <summary>
    /// The Deployment. Listener ports are deliberately not in the pod template: the pods read their listeners
    /// themselves, so adding or removing one changes only the Service and never restarts the pods (which would cut
    /// live connections).
    /// </summary>
    private static V1Deployment Deployment(DataPlaneGateway gateway, DataPlaneParameters parameters, ProvisioningOptions options, int replicas)
    {
        var admin = AdminPort(gateway.Ports);
        var podAnnotations = Merge(gateway.Annotations, ScrapeAnnotations(admin));
        return new V1Deployment
        {
            ApiVersion = "apps/v1",
            Kind = "Deployment",
            Metadata = Metadata(DataPlaneName(gateway.Name), gateway.Namespace, gateway, options, [OwnerReference(gateway, controller: true)]),
            Spec = new V1DeploymentSpec
            {
                Replicas = replicas,
                Selector = new V1LabelSelector { MatchLabels = SelectorLabels(gateway) },
                Template = new V1PodTemplateSpec
                {
                    // The de-facto annotations Prometheus's kubernetes_sd pod relabelling (and many charts) look for.
                    Metadata = new V1ObjectMeta { Labels = Merge(gateway.Labels, SelectorLabels(gateway)), Annotations = podAnnotations },
                    Spec = new V1PodSpec
                    {
                        ServiceAccountName = ServiceAccountName,

                        // Fed by the config stream, the data plane never calls the API server (its ServiceAccount may do nothing there).
                        AutomountServiceAccountToken = options.ControllerAddress is null ? null : false,
                        TerminationGracePeriodSeconds = GracePeriodSeconds(options),
                        SecurityContext = new V1PodSecurityContext
                        {
                            RunAsNonRoot = true,
                            SeccompProfile = new V1SeccompProfile { Type = "RuntimeDefault" },

                            // Listeners below 1024 without root or capabilities (a "safe" sysctl, allowed by the
                            // restricted Pod Security level); always set, so the template does not change with ports.
                            Sysctls = [new V1Sysctl { Name = "net.ipv4.ip_unprivileged_port_start", Value = "0" }],
                        },
                        Containers =
                        [
                            new V1Container
                            {
                                Name = "gateway",
                                Image = options.Image,
                                Args =
                                [
                                    CommandLineNames.GatewayCommand,
                                    CommandLineNames.Gateway, gateway.FullName,
                                    CommandLineNames.ControllerName, options.ControllerName,
                                    CommandLineNames.AdminAddress, "0.0.0.0",
                                    CommandLineNames.AdminPort, admin.ToString(CultureInfo.InvariantCulture),
                                    CommandLineNames.DrainTimeout, DurationArgument(options.DrainTimeout),
                                    .. (options.ControllerAddress is { } stream ? [CommandLineNames.ControllerAddress, stream] : Array.Empty<string>()),
                                    .. (options.SecureStream
                                        ? [CommandLineNames.ControllerCaFile, $"{AuthorityDirectory}/{AuthorityKey}", CommandLineNames.ControllerTokenFile, $"{TokenDirectory}/token"]
                                        : Array.Empty<string>()),
                                ],
                                Ports = [new V1ContainerPort { Name = "admin", ContainerPort = admin, Protocol = "TCP" }],
                                ReadinessProbe = new V1Probe { HttpGet = new V1HTTPGetAction { Path = "/readyz", Port = admin } },
                                LivenessProbe = new V1Probe { HttpGet = new V1HTTPGetAction { Path = "/healthz", Port = admin } },

                                // Keep serving while endpoints controllers and load balancers take the pod out of
                                // rotation; only then does SIGTERM start the drain.
                                Lifecycle = options.PreStopDelay > TimeSpan.Zero
                                    ? new V1Lifecycle { PreStop = new V1LifecycleHandler { Sleep = new V1SleepAction { Seconds = (long)Math.Ceiling(options.PreStopDelay.TotalSeconds) } } }
                                    : null,
                                Resources = parameters.Resources ?? new V1ResourceRequirements
                                {
                                    Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("100m"), ["memory"] = new("64Mi") },
                                },
                                SecurityContext = new V1SecurityContext
                                {
                                    AllowPrivilegeEscalation = false,
                                    ReadOnlyRootFilesystem = true,
                                    Capabilities = new V1Capabilities { Drop = ["ALL"] },
                                },
                                VolumeMounts =
                                [
                                    new V1VolumeMount { Name = "tmp", MountPath = "/tmp" },
                                    .. (options.SecureStream
                                        ? [new V1VolumeMount { Name = "controller-ca", MountPath = AuthorityDirectory, ReadOnlyProperty = true }, new V1VolumeMount { Name = "controller-token", MountPath = TokenDirectory, ReadOnlyProperty = true }]
                                        : Array.Empty<V1VolumeMount>()),
                                ],
                            },
                        ],
                        Volumes =
                        [
                            new V1Volume { Name = "tmp", EmptyDir = new V1EmptyDirVolumeSource() },
                            .. (options.SecureStream
                                ? [
                                    new V1Volume { Name = "controller-ca", ConfigMap = new V1ConfigMapVolumeSource { Name = AuthorityConfigMapName } },

                                    // A token for the controller only (its audience), short-lived and renewed by the kubelet:
                                    // worthless to the API server, and the pod mounts no API token at all.
                                    new V1Volume
                                    {
                                        Name = "controller-token",
                                        Projected = new V1ProjectedVolumeSource
                                        {
                                            Sources = [new V1VolumeProjection { ServiceAccountToken = new V1ServiceAccountTokenProjection { Audience = TokenAudience, ExpirationSeconds = TokenExpirationSeconds, Path = "token" } }],
                                        },
                                    },
                                ]
                                : Array.Empty<V1Volume>()),
                        ],
                    },
                },
            },
        };
    }

    private static V1Service Service(DataPlaneGateway gateway, DataPlaneParameters parameters, ProvisioningOptions options) => new()
    {
        ApiVersion = "v1",
        Kind = "Service",
        Metadata = Metadata(DataPlaneName(gateway.Name), gateway.Namespace, gateway, options, [OwnerReference(gateway, controller: true)]),
        Spec = new V1ServiceSpec
        {
            Type = parameters.ServiceType ?? "LoadBalancer",
            ExternalTrafficPolicy = parameters.ExternalTrafficPolicy,
            Selector = SelectorLabels(gateway),

            // Port names are generated: listener names need not be valid port names (IANA_SVC_NAME, 15 characters).
            Ports = [.. gateway.Ports.Select(p => new V1ServicePort { Name = $"tcp-{p}", Port = p, TargetPort = p, Protocol = "TCP" })],
        },
    };

    /// <summary>One pod stays up through voluntary disruptions (node drains, cluster upgrades): the Gateway keeps serving.</summary>
    private static V1PodDisruptionBudget DisruptionBudget(DataPlaneGateway gateway, ProvisioningOptions options) => new()
    {
        ApiVersion = "policy/v1",
        Kind = "PodDisruptionBudget",
        Metadata = Metadata(DataPlaneName(gateway.Name), gateway.Namespace, gateway, options, [OwnerReference(gateway, controller: true)]),
        Spec = new V1PodDisruptionBudgetSpec { MinAvailable = 1, Selector = new V1LabelSelector { MatchLabels = SelectorLabels(gateway) } },
    };

    private static SortedDictionary<string, string> SelectorLabels(DataPlaneGateway gateway) => new(StringComparer.Ordinal)
    {
        [AppLabel] = AppValue,
        [GatewayNameLabel] = GatewayLabelValue(gateway.Name),
    };

    /// <summary>
    /// Name, namespace, labels, annotations, owners. A Gateway's infrastructure labels and annotations come first and
    /// ours win on a clash (selectors and the ownership marks must hold whatever a Gateway says).
    /// </summary>
    private static V1ObjectMeta Metadata(string name, string? ns, DataPlaneGateway? gateway, ProvisioningOptions options, List<V1OwnerReference>? owners)
    {
        var labels = new SortedDictionary<string, string>(StringComparer.Ordinal) { [ManagedByLabel] = ManagedByValue };
        var annotations = new SortedDictionary<string, string>(StringComparer.Ordinal) { [ControllerAnnotation] = options.ControllerName };
        if (gateway is not null)
        {
            labels = Merge(gateway.Labels, labels);
            labels[AppLabel] = AppValue;
            labels[GatewayNameLabel] = GatewayLabelValue(gateway.Name);
            annotations = Merge(gateway.Annotations, annotations);
            annotations[GatewayAnnotation] = gateway.FullName;
        }

        return new V1ObjectMeta { Name = name, NamespaceProperty = ns, Labels = labels, Annotations = annotations, OwnerReferences = owners };
    }

    private static SortedDictionary<string, string> Merge(IReadOnlyDictionary<string, string> first, IReadOnlyDictionary<string, string> winning)
    {
        var merged = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in first.Concat(winning))
        {
            merged[key] = value;
        }

        return merged;
    }

    private static V1OwnerReference OwnerReference(DataPlaneGateway gateway, bool controller) => new()
    {
        ApiVersion = gateway.ApiVersion,
        Kind = "Gateway",
        Name = gateway.Name,
        Uid = gateway.Uid,
        Controller = controller,
    };

    private static string Label(string wanted, string hashed)
    {
        if (wanted.Length <= 63 && Dns1035Label.IsMatch(wanted))
        {
            return wanted;
        }

        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(hashed)))[..8];
        var cleaned = new StringBuilder();
        foreach (var c in wanted.ToLowerInvariant())
        {
            cleaned.Append(char.IsAsciiLetterOrDigit(c) ? c : '-');
        }

        var stem = cleaned.ToString().TrimStart('-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9');
        stem = stem[..Math.Min(stem.Length, 63 - 9)].TrimEnd('-');
        return stem.Length == 0 ? $"gw-{hash}" : $"{stem}-{hash}";
    }

    [GeneratedRegex("^[a-z]([-a-z0-9]*[a-z0-9])?$", RegexOptions.CultureInvariant)]
    private static partial Regex DnsLabelRegex();
}
