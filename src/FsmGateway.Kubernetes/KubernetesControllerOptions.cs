namespace FsmGateway.Kubernetes;

/// <summary>What the controller does besides watching: status writes, leader election, per-Gateway provisioning.</summary>
public sealed class KubernetesControllerOptions
{
    /// <summary>Whether to elect a leader through a Lease, so that of several replicas only one writes. Default true.</summary>
    public bool LeaderElection { get; set; } = true;

    /// <summary>The namespace of the Lease. Default <c>fsm-system</c>.</summary>
    public string LeaseNamespace { get; set; } = "fsm-system";

    /// <summary>The Lease's name. Default <c>fsm-gateway-controller</c>.</summary>
    public string LeaseName { get; set; } = "fsm-gateway-controller";

    /// <summary>This replica's identity in the Lease. Default the host name (the pod name in a cluster) and a random suffix.</summary>
    public string Identity { get; set; } = $"{Environment.MachineName}-{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>How long a leader's Lease lasts without renewal before another replica may take it. Default 15 s.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long the leader keeps trying to renew before it gives up leading. Default 10 s.</summary>
    public TimeSpan RenewDeadline { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often the Lease is tried. Default 2 s.</summary>
    public TimeSpan RetryPeriod { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How often everything written is compared with the cluster again, so that status someone else overwrote and
    /// provisioned objects someone changed are repaired. Default 5 min.
    /// </summary>
    public TimeSpan ResyncPeriod { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// The data-plane image. When set, each accepted Gateway gets a Deployment of it and a LoadBalancer Service in its
    /// namespace; when null, nothing is provisioned (the data plane is run some other way).
    /// </summary>
    public string? DataPlaneImage { get; set; }

    /// <summary>
    /// Replicas of each provisioned data-plane Deployment, unless its Gateway's <c>spec.infrastructure.parametersRef</c>
    /// ConfigMap says otherwise. Applied declaratively: a Deployment scaled by hand is set back. Default 1.
    /// </summary>
    public int DataPlaneReplicas { get; set; } = 1;

    /// <summary>
    /// The controller's config stream the provisioned data-plane pods subscribe to (their <c>--controller-address</c>,
    /// e.g. <c>https://fsm-gateway-controller.fsm-system:15010</c>), so that they report their listeners' bind outcomes
    /// and <c>Programmed</c> follows them (ADR 0010). Null: the pods read the API server and report nothing, so their
    /// Gateways stay <c>Programmed=False</c> (<c>Pending</c>); their ServiceAccount is given no permissions, so that
    /// works only where someone grants it read access.
    /// </summary>
    public string? DataPlaneControllerAddress { get; set; }

    /// <summary>
    /// How long a data-plane pod lets open connections finish when it stops (passed to it as <c>--drain-timeout</c>);
    /// its <c>terminationGracePeriodSeconds</c> is this plus <see cref="DataPlanePreStopDelay"/> plus a margin, so the
    /// kubelet does not kill a draining pod. Default 30 s.
    /// </summary>
    public TimeSpan DataPlaneDrainTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a stopping data-plane pod keeps serving before it starts to drain (a <c>preStop</c> sleep), so that
    /// load balancers and kube-proxy stop sending it new connections first. Default 5 s; zero for none.
    /// </summary>
    public TimeSpan DataPlanePreStopDelay { get; set; } = TimeSpan.FromSeconds(5);
}
