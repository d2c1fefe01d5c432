using FsmGateway.Testing.Kubernetes;
using k8s;

namespace FsmGateway.Kubernetes.Tests.Support;

/// <summary>
/// A test class whose every test gets its own fake API server (started with <paramref name="options"/>) and a client of
/// it, both disposed after the test.
/// </summary>
public abstract class FakeApiServerTest(FakeApiServerOptions? options = null) : IAsyncLifetime
{
    /// <summary>This test's fake API server.</summary>
    protected FakeApiServer Server { get; private set; } = null!;

    /// <summary>A client of <see cref="Server"/>, from <see cref="CreateClient"/>.</summary>
    protected IKubernetes Client { get; private set; } = null!;

    /// <inheritdoc/>
    public async Task InitializeAsync()
    {
        Server = await FakeApiServer.StartAsync(options);
        Client = CreateClient(Server);
    }

    /// <inheritdoc/>
    public async Task DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
    }

    /// <summary>The client the tests use: by default the fake's own (<see cref="FakeApiServer.CreateClient"/>).</summary>
    protected virtual IKubernetes CreateClient(FakeApiServer server) => server.CreateClient();
}
