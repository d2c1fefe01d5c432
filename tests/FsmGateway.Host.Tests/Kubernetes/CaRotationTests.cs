using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Security.Cryptography.X509Certificates;
using FsmGateway.Host.Tests.Support;
using FsmGateway.Kubernetes.Controller;
using FsmGateway.Kubernetes.ControlPlane;
using FsmGateway.Testing.Kubernetes;
using static FsmGateway.Host.Tests.Support.SeedCluster;

namespace FsmGateway.Host.Tests.Kubernetes;

/// <summary>
/// The config stream's CA rotated with no connection lost (ADR 0014), end to end with real processes against the fake
/// API server: the controller's CA nears its end, the controller publishes the bundle of old and new CA, switches its
/// serving certificate, and drops the old CA; the test plays the kubelet, copying the bundle to the data plane's mounted
/// CA file whenever it changes (write and rename, as the kubelet swaps a ConfigMap volume).
/// </summary>
public sealed class CaRotationTests : IAsyncLifetime
{
    private const string Audience = "fsm-gateway-controller";

    private SeedCluster _cluster = null!;

    public async Task InitializeAsync()
    {
        _cluster = await SeedCluster.StartAsync("controller-token");
        _cluster.Server.AddServiceAccountToken(FakeApiServer.ProjectedToken("httpbin-token"), Namespace, "fsm-gateway", Audience);
    }

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    /// <summary>
    /// A data plane connected before the rotation keeps its stream (no reconnect, its held connection served, config
    /// still flowing) through all three stages; after the switch it reconnects to a restarted controller (the restart
    /// continues the rotation from the Secret) trusting the bundle it re-read; and a data plane started after the
    /// rotation, trusting only the new CA, connects and serves.
    /// </summary>
    [Fact]
    public async Task A_rotation_keeps_the_data_planes_stream_and_connections_and_a_data_plane_started_after_it_connects()
    {
        // A CA of 90 s, created just now: at half its lifetime (~40 s from now) it is due for rotation.
        await using var scene = await StartSceneAsync(TimeSpan.FromSeconds(90));
        Assert.Equal(0, scene.Controller.CountLines("Config stream CA rotation"));

        // The three stages, in order, by the controller's log.
        var created = await scene.Controller.WaitForLineAsync("Config stream CA rotation .*stage Publishing", TimeSpan.FromSeconds(90));
        Assert.Contains("created CA", created, StringComparison.Ordinal);
        await scene.Controller.WaitForLineAsync("Config stream CA rotation .*issues the serving certificates from now on.*stage Retiring", TimeSpan.FromSeconds(60));
        Assert.Equal("during", await Net.RoundTripAsync(scene.Held, "during"));

        // The controller restarts mid-rotation: it continues from the Secret (no new CA), and the data plane connects
        // again, trusting the bundle of old and new it re-read from its CA file, and keeps its connection.
        await scene.RestartControllerAsync();
        Assert.Equal(0, scene.DataPlane.CountLines("refused the controller"));
        var issued = await scene.Controller.WaitForLineAsync("serving certificate issued for");
        Assert.DoesNotContain(scene.Ca.Subject, issued, StringComparison.Ordinal);
        await scene.Controller.WaitForLineAsync("Config stream CA rotation .*dropped the old CA.*stage Stable", TimeSpan.FromSeconds(90));
        Assert.Equal(0, scene.Controller.CountLines("created CA"));
        Assert.Equal("after", await Net.RoundTripAsync(scene.Held, "after"));

        // Config still flows to it.
        await using var banner = await MoveBarToBannerAsync();
        scene.Held.Dispose();
        Assert.Equal(0, await scene.DataPlane.TerminateAsync());

        // The bundle holds the new CA alone now; a data plane started with it connects and serves.
        await Net.EventuallyAsync(() => Task.FromResult(File.ReadAllText(scene.CaFile).Split("BEGIN CERTIFICATE").Length == 2), "the bundle holds one CA", TimeSpan.FromSeconds(30));
        Assert.DoesNotContain(StreamCertificates.CertificatePem(scene.Ca), File.ReadAllText(scene.CaFile), StringComparison.Ordinal);
        await using var after = scene.StartDataPlane("dp-after");
        await after.WaitUntilReadyAsync();
        Assert.Equal("B", await BannerServer.ReadBannerAsync(_cluster.Foo));
        Assert.Equal(0, after.CountLines("warn:.*Config stream"));
        Assert.Equal(0, await after.TerminateAsync());
        Assert.Equal(0, await scene.Controller.TerminateAsync());
    }

    /// <summary>
    /// With data planes provisioned, the bundle goes to the ConfigMap of every Gateway namespace (which the kubelet
    /// mounts in the pods), and the switch waits until it is there: when the Secret says the new CA issues, the
    /// ConfigMap already holds old and new; after the grace it holds the new CA alone.
    /// </summary>
    [Fact]
    public async Task The_bundle_is_in_every_gateway_namespaces_configmap_before_the_switch_and_the_old_ca_leaves_it_after()
    {
        // A CA of 30 s, created just now: due at half its lifetime (~14 s from now).
        using var old = ApplyCa(TimeSpan.FromSeconds(30));
        await using var controller = await StartProvisioningControllerAsync();
        await Net.EventuallyAsync(() => Task.FromResult(ConfigMapBundle() is { } b && b.Contains(StreamCertificates.CertificatePem(old), StringComparison.Ordinal)), "the ConfigMap holds the CA", TimeSpan.FromSeconds(60));

        string? atSwitch = null;
        await Net.EventuallyAsync(
            () =>
            {
                var stage = _cluster.Server.Get("v1", "Secret", "fsm-system", StreamAuthority.SecretName)?["metadata"]?["annotations"]?[CaRotation.StageAnnotation]?.GetValue<string>();
                atSwitch = stage == nameof(CaRotationStage.Retiring) ? ConfigMapBundle() : null;
                return Task.FromResult(atSwitch is not null);
            },
            "the new CA issues",
            TimeSpan.FromSeconds(90));
        var secret = _cluster.Server.Get("v1", "Secret", "fsm-system", StreamAuthority.SecretName)!;
        var newCa = Encoding.ASCII.GetString(Convert.FromBase64String(secret["data"]!["tls.crt"]!.GetValue<string>()));
        Assert.Contains(StreamCertificates.CertificatePem(old), atSwitch, StringComparison.Ordinal);
        Assert.Contains(newCa, atSwitch, StringComparison.Ordinal);

        await Net.EventuallyAsync(() => Task.FromResult(ConfigMapBundle() == newCa), "the ConfigMap holds the new CA alone", TimeSpan.FromSeconds(60));
        Assert.Equal(0, controller.CountLines("warn:.*CA"));
        Assert.Equal(0, await controller.TerminateAsync());
    }

    /// <summary>
    /// The CA Secret deleted while a data plane holds its stream and a proxied connection (ADR 0014, "Repair"): the
    /// controller writes it back from memory with the same CA, the stream and the connection go on untouched, a
    /// controller restarted afterwards keeps that CA, and a data plane started afterwards connects with the bundle it
    /// has mounted.
    /// </summary>
    [Fact]
    public async Task A_deleted_ca_secret_comes_back_with_the_same_ca_while_the_data_planes_stream_and_connection_survive()
    {
        await using var scene = await StartSceneAsync(TimeSpan.FromDays(90));
        var caPem = StreamCertificates.CertificatePem(scene.Ca);
        Assert.Equal(caPem, StoredCa("tls.crt"));

        Assert.True(_cluster.Server.Delete("v1", "Secret", "fsm-system", StreamAuthority.SecretName));
        await Net.EventuallyAsync(() => Task.FromResult(StoredCa("tls.crt") is not null), "the CA Secret is written back", TimeSpan.FromSeconds(30));
        Assert.Equal(caPem, StoredCa("tls.crt"));
        Assert.Equal(caPem, StoredCa(CaRotation.BundleKey));
        var repaired = await scene.Controller.WaitForLineAsync("was deleted; wrote back the CA");
        Assert.Contains(scene.Ca.Subject, repaired, StringComparison.Ordinal);

        // The stream was not touched: config still flows on it, with no second sync, and the connection is served.
        Assert.Equal("during", await Net.RoundTripAsync(scene.Held, "during"));
        await using var banner = await MoveBarToBannerAsync();
        Assert.Equal(1, scene.DataPlane.CountLines("Config stream: synced"));

        // A controller started afterwards finds the same CA; the data plane reconnects, trusting it still.
        await scene.RestartControllerAsync();
        Assert.Equal(0, scene.Controller.CountLines("Config stream CA: created Secret"));
        Assert.Equal("after", await Net.RoundTripAsync(scene.Held, "after"));

        // A data plane started afterwards connects and serves.
        scene.Held.Dispose();
        Assert.Equal(0, await scene.DataPlane.TerminateAsync());
        await using var after = scene.StartDataPlane("dp-after");
        await after.WaitUntilReadyAsync();
        Assert.Equal("B", await BannerServer.ReadBannerAsync(_cluster.Foo));
        Assert.Equal(0, after.CountLines("refused the controller"));
        Assert.Equal(0, scene.DataPlane.CountLines("refused the controller"));
        Assert.Equal(0, await after.TerminateAsync());
        Assert.Equal(0, await scene.Controller.TerminateAsync());
    }

    /// <summary>Waits until the controller has applied nothing for 3 s: its provisioning passes are over.</summary>
    private async Task ProvisioningQuietAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        var applies = -1;
        while (true)
        {
            var now = _cluster.Server.Requests.Count(r => r.Verb == "patch");
            if (now == applies)
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, "the controller's provisioning never went quiet");
            applies = now;
            await Task.Delay(TimeSpan.FromSeconds(3));
        }
    }

    private string? StoredCa(string key) =>
        _cluster.Server.Get("v1", "Secret", "fsm-system", StreamAuthority.SecretName)?["data"]?[key]?.GetValue<string>() is { } base64
            ? Encoding.ASCII.GetString(Convert.FromBase64String(base64))
            : null;

    /// <summary>
    /// The CA ConfigMap the provisioner writes next to the Gateway (what the kubelet mounts in the data-plane pods)
    /// comes back at once when it is deleted or its CA is edited, not only at the next resync (5 minutes).
    /// </summary>
    [Fact]
    public async Task The_gateway_namespaces_ca_configmap_is_written_back_at_once_when_deleted_or_edited()
    {
        using var ca = ApplyCa(TimeSpan.FromDays(90));
        var caPem = StreamCertificates.CertificatePem(ca);
        await using var controller = await StartProvisioningControllerAsync();
        await Net.EventuallyAsync(() => Task.FromResult(ConfigMapBundle() == caPem), "the ConfigMap holds the CA", TimeSpan.FromSeconds(60));

        // Until the start-up's passes are over any pass would write it back; after them only the ConfigMap's own change starts one.
        await ProvisioningQuietAsync();
        Assert.True(_cluster.Server.Delete("v1", "ConfigMap", Namespace, DataPlaneManifests.AuthorityConfigMapName));
        await Net.EventuallyAsync(() => Task.FromResult(ConfigMapBundle() == caPem), "the deleted ConfigMap is written back", TimeSpan.FromSeconds(30));
        await ProvisioningQuietAsync();

        var configMap = _cluster.Server.Get("v1", "ConfigMap", Namespace, DataPlaneManifests.AuthorityConfigMapName)!;
        configMap["data"]![DataPlaneManifests.AuthorityKey] = "-----BEGIN CERTIFICATE-----\nedited by hand\n-----END CERTIFICATE-----\n";
        _cluster.Server.Apply(configMap);
        Assert.NotEqual(caPem, ConfigMapBundle());
        await Net.EventuallyAsync(() => Task.FromResult(ConfigMapBundle() == caPem), "the edited ConfigMap is written back", TimeSpan.FromSeconds(30));
        Assert.Equal(0, controller.CountLines("warn:.*CA"));
        Assert.Equal(0, await controller.TerminateAsync());
    }

    private string? ConfigMapBundle() =>
        _cluster.Server.Get("v1", "ConfigMap", Namespace, DataPlaneManifests.AuthorityConfigMapName)?["data"]?[DataPlaneManifests.AuthorityKey]?.GetValue<string>();

    /// <summary>Points the Gateway's route at a new banner backend and waits until the data plane serves it on <c>bar</c>.</summary>
    private async Task<BannerServer> MoveBarToBannerAsync()
    {
        var banner = new BannerServer("B");
        try
        {
            _cluster.ApplyEndpoints(banner.Port);
            await Net.EventuallyAsync(async () => await TryBannerAsync(_cluster.Bar) == "B", "the new endpoint reaches the data plane", TimeSpan.FromSeconds(60));
            return banner;
        }
        catch
        {
            await banner.DisposeAsync();
            throw;
        }

        static async Task<string?> TryBannerAsync(int port)
        {
            try
            {
                return await BannerServer.ReadBannerAsync(port);
            }
            catch (OperationCanceledException)
            {
                return null; // still the echo server, which sends no banner
            }
        }
    }

    /// <summary>The kubelet's part, until disposed: <see cref="KeepMountedAsync"/> into ca.crt, once the file is there.</summary>
    private async Task<MountedBundle> MountBundleAsync()
    {
        var path = Path.Combine(_cluster.Directory.FullName, "ca.crt");
        var kubelet = new CancellationTokenSource();
        var bundle = new MountedBundle(path, kubelet, KeepMountedAsync(path, kubelet.Token));
        try
        {
            await Net.EventuallyAsync(() => Task.FromResult(File.Exists(path)), "the CA file is mounted", TimeSpan.FromSeconds(30));
            return bundle;
        }
        catch
        {
            await bundle.DisposeAsync();
            throw;
        }
    }

    /// <summary>The Secret's bundle (data.ca.crt, what the provisioner writes to each ConfigMap) in the file, replaced whenever it changes.</summary>
    private async Task KeepMountedAsync(string path, CancellationToken cancellationToken)
    {
        string? mounted = null;
        while (!cancellationToken.IsCancellationRequested)
        {
            var data = _cluster.Server.Get("v1", "Secret", "fsm-system", StreamAuthority.SecretName)?["data"];
            var bundle = (data?[CaRotation.BundleKey] ?? data?["tls.crt"])?.GetValue<string>();
            if (bundle is not null && bundle != mounted)
            {
                var staged = path + ".new";
                await File.WriteAllTextAsync(staged, Encoding.ASCII.GetString(Convert.FromBase64String(bundle)), CancellationToken.None);
                File.Move(staged, path, overwrite: true);
                mounted = bundle;
            }

            try
            {
                await Task.Delay(100, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>The mounted CA file at <see cref="Path"/>, kept up to date until disposed.</summary>
    private sealed class MountedBundle(string path, CancellationTokenSource kubelet, Task mounting) : IAsyncDisposable
    {
        public string Path => path;

        public async ValueTask DisposeAsync()
        {
            await kubelet.CancelAsync();
            await mounting;
            kubelet.Dispose();
        }
    }

    /// <summary>A CA of <paramref name="lifetime"/>, created just now, in the controller's Secret (as if an earlier controller had made it).</summary>
    private X509Certificate2 ApplyCa(TimeSpan lifetime)
    {
        var ca = StreamCertificates.CreateAuthority(DateTimeOffset.UtcNow, lifetime);
        _cluster.Server.ApplyYaml($$"""
            apiVersion: v1
            kind: Secret
            metadata: { name: {{StreamAuthority.SecretName}}, namespace: fsm-system }
            type: kubernetes.io/tls
            data: { tls.crt: {{Base64(StreamCertificates.CertificatePem(ca))}}, tls.key: {{Base64(StreamCertificates.KeyPem(ca))}} }
            """);
        return ca;
    }

    private static string Base64(string text) => Convert.ToBase64String(Encoding.ASCII.GetBytes(text));

    /// <summary>The controller with data planes to provision (<c>--image</c>), ready.</summary>
    private async Task<GatewayProcess> StartProvisioningControllerAsync()
    {
        var controller = StartController(Net.FreePort(), "--image", "example.com/fsm-gateway:test");
        try
        {
            await controller.WaitUntilReadyAsync();
            return controller;
        }
        catch
        {
            await controller.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// The stream tests' scene: an echo backend behind the Gateway, a CA of <paramref name="caLifetime"/> in the Secret
    /// and its bundle mounted, the controller ready, and a data plane (<c>dp-before</c>) ready with one proxied
    /// connection held (it has echoed "before").
    /// </summary>
    private async Task<Scene> StartSceneAsync(TimeSpan caLifetime)
    {
        var scene = new Scene(this, Net.FreePort());
        try
        {
            scene.Echo = new EchoServer();
            _cluster.ApplyEndpoints(scene.Echo.Port);
            scene.Ca = ApplyCa(caLifetime);
            scene.Bundle = await MountBundleAsync();
            scene.Controller = StartController(scene.Stream);
            await scene.Controller.WaitUntilReadyAsync();
            scene.DataPlane = scene.StartDataPlane("dp-before");
            await scene.DataPlane.WaitUntilReadyAsync();
            scene.Held = await Net.ConnectAsync(_cluster.Foo);
            Assert.Equal("before", await Net.RoundTripAsync(scene.Held, "before"));
            return scene;
        }
        catch
        {
            await scene.DisposeAsync();
            throw;
        }
    }

    private GatewayProcess StartController(int stream, params string[] more) => GatewayProcess.Start(
        new Dictionary<string, string?> { ["POD_NAME"] = "controller-0" },
        [
            "controller", "--kubeconfig", _cluster.Kubeconfig, "--admin-port", "0", "--no-leader-election", "--leader-election-namespace", "fsm-system",
            "--stream-address", "127.0.0.1", "--stream-port", stream.ToString(CultureInfo.InvariantCulture),
            "--data-plane-controller-address", $"https://127.0.0.1:{stream.ToString(CultureInfo.InvariantCulture)}",
            "--stream-ca-rotate-at", "0.5", "--stream-ca-propagation-delay", "2s", "--stream-ca-retire-grace", "20s", "--stream-ca-check-interval", "500ms",
            .. more,
        ]);

    /// <summary>What <see cref="StartSceneAsync"/> started, disposed in reverse.</summary>
    private sealed class Scene(CaRotationTests test, int stream) : IAsyncDisposable
    {
        public int Stream { get; } = stream;

        public EchoServer? Echo { get; set; }

        public X509Certificate2 Ca { get; set; } = null!;

        public MountedBundle? Bundle { get; set; }

        public string CaFile => Bundle!.Path;

        public GatewayProcess Controller { get; set; } = null!;

        public GatewayProcess DataPlane { get; set; } = null!;

        public Socket Held { get; set; } = null!;

        /// <summary>Stops the controller and starts another on the same stream port; waits until the data plane has synced from it.</summary>
        public async Task RestartControllerAsync()
        {
            await Controller.DisposeAsync();
            Controller = test.StartController(Stream);
            await Controller.WaitUntilReadyAsync();
            await Net.EventuallyAsync(() => Task.FromResult(DataPlane.CountLines("Config stream: synced") >= 2), "the data plane resyncs from the restarted controller", TimeSpan.FromSeconds(60));
        }

        /// <summary>A data plane named <paramref name="name"/> for the Gateway, trusting the mounted bundle.</summary>
        public GatewayProcess StartDataPlane(string name)
        {
            var token = Path.Combine(test._cluster.Directory.FullName, "token.jwt");
            File.WriteAllText(token, FakeApiServer.ProjectedToken("httpbin-token") + "\n");
            return GatewayProcess.Start(
                new Dictionary<string, string?> { ["KUBECONFIG"] = null, ["POD_NAME"] = name },
                "gateway", "--gateway", $"{Namespace}/{GatewayName}", "--admin-port", "0",
                "--controller-address", $"https://127.0.0.1:{Stream.ToString(CultureInfo.InvariantCulture)}",
                "--controller-ca-file", CaFile, "--controller-token-file", token);
        }

        public async ValueTask DisposeAsync()
        {
            Held?.Dispose();
            if (DataPlane is not null)
            {
                await DataPlane.DisposeAsync();
            }

            if (Controller is not null)
            {
                await Controller.DisposeAsync();
            }

            if (Bundle is not null)
            {
                await Bundle.DisposeAsync();
            }

            Ca?.Dispose();
            if (Echo is not null)
            {
                await Echo.DisposeAsync();
            }
        }
    }
}
