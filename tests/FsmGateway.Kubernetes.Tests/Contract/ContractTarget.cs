using System.Net;
using FsmGateway.Kubernetes.Api;
using FsmGateway.Testing.Kubernetes;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace FsmGateway.Kubernetes.Tests.Contract;

/// <summary>
/// Where a contract test runs: the fake API server, or the real cluster <c>$KUBECONFIG</c> points at (which must serve
/// the Gateway API CRDs). Each target gets a namespace of its own, deleted at the end.
/// </summary>
internal sealed class ContractTarget : IAsyncDisposable
{
    public const string Fake = "fake";
    public const string Cluster = "cluster";

    private readonly FakeApiServer? _fake;

    private ContractTarget(IKubernetes client, FakeApiServer? fake, string ns)
    {
        Client = client;
        _fake = fake;
        Namespace = ns;
    }

    public IKubernetes Client { get; }

    public string Namespace { get; }

    public bool IsCluster => _fake is null;

    /// <summary>The targets to run on: always the fake; the cluster too when <c>KUBECONFIG</c> is set.</summary>
    public static TheoryData<string> All
    {
        get
        {
            var data = new TheoryData<string> { Fake };
            if (ClusterConfigured)
            {
                data.Add(Cluster);
            }

            return data;
        }
    }

    public static bool ClusterConfigured => Environment.GetEnvironmentVariable("KUBECONFIG") is { Length: > 0 };

    public static async Task<ContractTarget> CreateAsync(string name)
    {
        FakeApiServer? fake = null;
        KubernetesClientConfiguration config;
        if (name == Fake)
        {
            fake = await FakeApiServer.StartAsync(new FakeApiServerOptions { InstallGatewayApiCrds = true, Token = "contract" });
            config = fake.ClientConfiguration();
        }
        else
        {
            config = KubernetesClientConfiguration.BuildConfigFromConfigFile(Environment.GetEnvironmentVariable("KUBECONFIG"));
        }

        var client = new k8s.Kubernetes(config, new CoreGroupPathHandler());
        var ns = $"fsm-contract-{Guid.NewGuid().ToString("N")[..8]}";
        await client.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = ns } });
        return new ContractTarget(client, fake, ns);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Client.CoreV1.DeleteNamespaceAsync(Namespace);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
        }

        Client.Dispose();
        if (_fake is not null)
        {
            await _fake.DisposeAsync();
        }
    }
}

/// <summary>Marks the cluster run of the contract tests: skipped, with the reason, when no cluster is configured.</summary>
internal sealed class KubernetesClusterFactAttribute : FactAttribute
{
    public KubernetesClusterFactAttribute()
    {
        if (!ContractTarget.ClusterConfigured)
        {
            Skip = "Contract tests against a real cluster run only when KUBECONFIG points at one with the Gateway API CRDs installed; the same tests ran against the fake API server.";
        }
    }
}
