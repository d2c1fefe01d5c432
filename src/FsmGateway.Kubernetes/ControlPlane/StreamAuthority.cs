using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using FsmGateway.Kubernetes.Controller;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Kubernetes.ControlPlane;

/// <summary>
/// The controller's CA for the config stream (ADR 0010), kept in Secret <see cref="SecretName"/> in the controller's
/// namespace, and this replica's serving certificate issued from it. Every replica reads the Secret; the first to find
/// none creates it, and a replica whose create loses the race (409) reads the winner's, so all replicas serve
/// certificates of one CA, and a restart keeps it. Loading starts with the host and retries with back-off while the
/// API server does not answer; TLS handshakes and provisioning wait for it.
/// </summary>
internal sealed partial class StreamAuthority : IHostedService, IDisposable
{
    /// <summary>The Secret holding the CA's certificate and key (type <c>kubernetes.io/tls</c>).</summary>
    public const string SecretName = "fsm-gateway-controller-ca";

    private readonly IKubernetes _client;
    private readonly string _namespace;
    private readonly IReadOnlyList<string> _servingNames;
    private readonly string _controllerName;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TaskCompletionSource<X509Certificate2> _authority = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _gate = new();
    private X509Certificate2? _serving;
    private Task _loading = Task.CompletedTask;

    public StreamAuthority(IKubernetes client, string ns, IReadOnlyList<string> servingNames, string controllerName, TimeProvider time, ILogger logger)
    {
        _client = client;
        _namespace = ns;
        _servingNames = servingNames;
        _controllerName = controllerName;
        _time = time;
        _logger = logger;
    }

    /// <summary>The names (DNS or IP) the serving certificate is issued for.</summary>
    public IReadOnlyList<string> ServingNames => _servingNames;

    /// <summary>The CA certificate as PEM (public only), what data planes trust; null until it is loaded.</summary>
    public string? AuthorityPem { get; private set; }

    /// <summary>This replica's serving certificate (with its key), issued once the CA is loaded and again when a third of its lifetime is left.</summary>
    public async ValueTask<X509Certificate2> ServingAsync(CancellationToken cancellationToken)
    {
        var authority = await _authority.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            if (_serving is null || StreamCertificates.IsDueForRenewal(_serving, now))
            {
                // The old one is not disposed: handshakes in progress may still hold it.
                _serving = StreamCertificates.IssueServing(authority, _servingNames, now);
                LogIssued(_logger, string.Join(", ", _servingNames), _serving.NotAfter.ToUniversalTime().ToString("u", System.Globalization.CultureInfo.InvariantCulture));
            }

            return _serving;
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _loading = Task.Run(() => LoadAsync(_stopping.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _loading.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public void Dispose() => _stopping.Dispose();

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromSeconds(1);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var authority = await ReadOrCreateAsync(cancellationToken).ConfigureAwait(false);
                AuthorityPem = StreamCertificates.CertificatePem(authority);
                _authority.TrySetResult(authority);
                return;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                LogLoadFailed(_logger, _namespace, SecretName, ErrorText.Of(e), delay.TotalSeconds);
                LogLoadFailedInFull(_logger, e);
            }

            try
            {
                await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
        }
    }

    /// <summary>The stored CA; when there is none, a new one, created unless another replica created one first (then that one).</summary>
    private async Task<X509Certificate2> ReadOrCreateAsync(CancellationToken cancellationToken)
    {
        if (await ReadAsync(cancellationToken).ConfigureAwait(false) is { } stored)
        {
            LogLoaded(_logger, _namespace, SecretName, stored.Thumbprint);
            return stored;
        }

        var created = StreamCertificates.CreateAuthority(_time.GetUtcNow());
        var secret = new V1Secret
        {
            ApiVersion = "v1",
            Kind = "Secret",
            Type = "kubernetes.io/tls",
            Metadata = new V1ObjectMeta
            {
                Name = SecretName,
                NamespaceProperty = _namespace,
                Labels = new Dictionary<string, string> { [DataPlaneManifests.ManagedByLabel] = DataPlaneManifests.ManagedByValue },
                Annotations = new Dictionary<string, string> { [DataPlaneManifests.ControllerAnnotation] = _controllerName },
            },
            Data = new Dictionary<string, byte[]>
            {
                ["tls.crt"] = Encoding.ASCII.GetBytes(StreamCertificates.CertificatePem(created)),
                ["tls.key"] = Encoding.ASCII.GetBytes(StreamCertificates.KeyPem(created)),
            },
        };
        try
        {
            await _client.CoreV1.CreateNamespacedSecretAsync(secret, _namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
            LogCreated(_logger, _namespace, SecretName, created.Thumbprint);
            return created;
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
        {
            // Another replica created it between our read and our create: use theirs.
            created.Dispose();
            var winner = await ReadAsync(cancellationToken).ConfigureAwait(false)
                ?? throw new InvalidOperationException($"Secret {_namespace}/{SecretName} was created by someone else and then deleted");
            LogLoaded(_logger, _namespace, SecretName, winner.Thumbprint);
            return winner;
        }
    }

    private async Task<X509Certificate2?> ReadAsync(CancellationToken cancellationToken)
    {
        V1Secret secret;
        try
        {
            secret = await _client.CoreV1.ReadNamespacedSecretAsync(SecretName, _namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        if (secret.Data is null || !secret.Data.TryGetValue("tls.crt", out var certificate) || !secret.Data.TryGetValue("tls.key", out var key))
        {
            throw new InvalidDataException($"Secret {_namespace}/{SecretName} has no data.tls.crt and data.tls.key; delete it to have the controller create a new CA (data planes then need to be restarted)");
        }

        try
        {
            return StreamCertificates.FromPem(Encoding.ASCII.GetString(certificate), Encoding.ASCII.GetString(key));
        }
        catch (CryptographicException e)
        {
            throw new InvalidDataException($"Secret {_namespace}/{SecretName}: data.tls.crt and data.tls.key are not a PEM certificate and its key ({e.Message}); delete it to have the controller create a new CA", e);
        }
    }

    [LoggerMessage(1, LogLevel.Information, "Config stream CA: created Secret {Namespace}/{Name} (thumbprint {Thumbprint})")]
    private static partial void LogCreated(ILogger logger, string @namespace, string name, string thumbprint);

    [LoggerMessage(2, LogLevel.Information, "Config stream CA: using Secret {Namespace}/{Name} (thumbprint {Thumbprint})")]
    private static partial void LogLoaded(ILogger logger, string @namespace, string name, string thumbprint);

    [LoggerMessage(3, LogLevel.Warning, "Config stream CA: reading or creating Secret {Namespace}/{Name} failed: {Error}; retrying in {DelaySeconds} s (data planes cannot connect until it succeeds)")]
    private static partial void LogLoadFailed(ILogger logger, string @namespace, string name, string error, double delaySeconds);

    [LoggerMessage(4, LogLevel.Debug, "Config stream CA: the failure in full")]
    private static partial void LogLoadFailedInFull(ILogger logger, Exception exception);

    [LoggerMessage(5, LogLevel.Information, "Config stream: serving certificate issued for {Names}, valid until {NotAfter}")]
    private static partial void LogIssued(ILogger logger, string names, string notAfter);
}
