using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using FsmGateway.Kubernetes.Controller;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Kubernetes.ControlPlane;

/// <summary>
/// The controller's CA for the config stream (ADR 0010, rotation: ADR 0014), kept in Secret <see cref="SecretName"/> in
/// the controller's namespace, and this replica's serving certificate issued from it. Every replica reads the Secret;
/// the first to find none creates it, and a replica whose create loses the race (409) reads the winner's, so all
/// replicas serve certificates of one CA, and a restart keeps it. Loading starts with the host and retries with
/// back-off while the API server does not answer; TLS handshakes and provisioning wait for it. Afterwards every replica
/// reads the Secret every <see cref="CaRotationOptions.CheckInterval"/> (a rotation's stages reach it so), and the
/// leader moves the rotation on (<see cref="CaRotation"/>), writing each stage with the resourceVersion it read. A Secret
/// deleted, emptied or corrupted while replicas run is written back by the leader from the CA and stage it holds
/// (<see cref="CaSecretRepair"/>), so data planes keep trusting the controller and no rotation happens unplanned.
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
    private readonly CaRotationOptions _rotation;
    private readonly Func<bool> _isLeader;
    private readonly bool _publishedThroughConfigMaps;
    private readonly TaskCompletionSource _loaded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _gate = new();
    private volatile CaState? _state;
    private string? _resourceVersion;
    private string? _uid;
    private string? _lastReadVersion;
    private int _unchangedReads;
    private string? _kept;
    private volatile string? _publishedPem;
    private X509Certificate2? _serving;
    private string? _servingIssuer;
    private bool _refreshFailing;
    private Task _loading = Task.CompletedTask;

    /// <summary>
    /// A replica's authority. <paramref name="isLeader"/> (default always) says when to move a rotation on;
    /// <paramref name="publishedThroughConfigMaps"/>: whether a provisioner writes the bundle to the data planes'
    /// ConfigMaps (then a rotation waits for <see cref="MarkPublished"/>); without one the bundle counts as published
    /// when it is written to the Secret.
    /// </summary>
    public StreamAuthority(
        IKubernetes client,
        string ns,
        IReadOnlyList<string> servingNames,
        string controllerName,
        TimeProvider time,
        ILogger logger,
        CaRotationOptions? rotation = null,
        Func<bool>? isLeader = null,
        bool publishedThroughConfigMaps = false)
    {
        _client = client;
        _namespace = ns;
        _servingNames = servingNames;
        _controllerName = controllerName;
        _time = time;
        _logger = logger;
        _rotation = rotation ?? new CaRotationOptions();
        _isLeader = isLeader ?? (static () => true);
        _publishedThroughConfigMaps = publishedThroughConfigMaps;
    }

    /// <summary>The names (DNS or IP) the serving certificate is issued for.</summary>
    public IReadOnlyList<string> ServingNames => _servingNames;

    /// <summary>The CA certificates data planes trust, as one PEM bundle (public only; two during a rotation); null until loaded.</summary>
    public string? AuthorityPem => _state?.TrustedPem;

    /// <summary>The stored state (for tests and the log); null until loaded.</summary>
    internal CaState? State => _state;

    /// <summary>Raised (on the refresh loop) when <see cref="AuthorityPem"/> changed: the ConfigMaps need it.</summary>
    public event Action? TrustChanged;

    /// <summary>
    /// Told by the provisioner that every ConfigMap holds <paramref name="pem"/>: a rotation waiting for its bundle to
    /// be published may go on.
    /// </summary>
    public void MarkPublished(string pem) => _publishedPem = pem;

    /// <summary>
    /// This replica's serving certificate (with its key), issued once the CA is loaded, again when a third of its
    /// lifetime is left, and again when another CA issues (a rotation's switch).
    /// </summary>
    public async ValueTask<X509Certificate2> ServingAsync(CancellationToken cancellationToken)
    {
        await _loaded.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        var authority = _state!.Signing;
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            if (_serving is null || _servingIssuer != authority.Thumbprint || StreamCertificates.IsDueForRenewal(_serving, now))
            {
                // The old one is not disposed: handshakes in progress may still hold it.
                _serving = StreamCertificates.IssueServing(authority, _servingNames, now);
                _servingIssuer = authority.Thumbprint;
                LogIssued(_logger, string.Join(", ", _servingNames), _serving.NotAfter.ToUniversalTime().ToString("u", CultureInfo.InvariantCulture), authority.Subject);
            }

            return _serving;
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _loading = Task.Run(() => RunAsync(_stopping.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _loading.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public void Dispose() => _stopping.Dispose();

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        if (!await LoadAsync(cancellationToken).ConfigureAwait(false))
        {
            return;
        }

        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_rotation.CheckInterval, _time, cancellationToken).ConfigureAwait(false);
                await RefreshAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
        }
    }

    private async Task<bool> LoadAsync(CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromSeconds(1);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var (state, version, uid) = await ReadOrCreateAsync(cancellationToken).ConfigureAwait(false);
                Adopt(state, version, uid);
                _loaded.TrySetResult();
                return true;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return false;
            }
            catch (InvalidDataException e)
            {
                // Nothing in hand to write back (this replica starts): the operator decides.
                LogLoadUnusable(_logger, e.Message, delay.TotalSeconds);
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
                return false;
            }

            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
        }

        return false;
    }

    /// <summary>
    /// Reads the Secret again (a rotation another replica moved on reaches this one so) and, when leading, moves the
    /// rotation on by one stage when one is due, or writes the Secret back from the CA and stage in hand when it was
    /// deleted, is unusable or was created again with a CA no data plane trusts (<see cref="CaSecretRepair"/>). A
    /// failure is logged (a Warning once per outage) and retried at the next interval; the CA in hand keeps serving meanwhile.
    /// </summary>
    internal async Task RefreshAsync(CancellationToken cancellationToken)
    {
        try
        {
            var secret = await ReadSecretAsync(cancellationToken).ConfigureAwait(false);
            var held = _state!; // refreshes run after the load only
            var read = Parse(secret, held);
            switch (CaSecretRepair.Decide(held, _uid, read, _isLeader()))
            {
                case CaSecretAction.KeepHeld:
                    ReportKept(read);
                    return;
                case CaSecretAction.Recreate:
                    await RecreateAsync(held, cancellationToken).ConfigureAwait(false);
                    break;
                case CaSecretAction.Overwrite:
                    await OverwriteAsync(secret!, held, read, cancellationToken).ConfigureAwait(false);
                    break;
                default:
                    if (secret!.Metadata?.ResourceVersion != _resourceVersion)
                    {
                        Adopt(read.State!, secret.Metadata?.ResourceVersion, secret.Metadata?.Uid);
                    }

                    await MoveRotationOnAsync(secret, cancellationToken).ConfigureAwait(false);
                    break;
            }

            if (_refreshFailing || _kept is not null)
            {
                _refreshFailing = false;
                _kept = null;
                LogRefreshRecovered(_logger, _namespace, SecretName);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            if (!_refreshFailing)
            {
                _refreshFailing = true;
                LogRefreshFailed(_logger, _namespace, SecretName, ErrorText.Of(e), _rotation.CheckInterval.TotalSeconds);
            }

            LogLoadFailedInFull(_logger, e);
        }
    }

    /// <summary>What was read, parsed only when it is not what this replica last adopted; counts the checks that read the same resourceVersion.</summary>
    private CaSecretRead Parse(V1Secret? secret, CaState held)
    {
        var version = secret?.Metadata?.ResourceVersion;
        _unchangedReads = version is not null && version == _lastReadVersion ? _unchangedReads + 1 : 1;
        _lastReadVersion = version;
        if (secret is null)
        {
            return CaSecretRead.Gone;
        }

        if (version is not null && version == _resourceVersion)
        {
            return CaSecretRead.Of(held, _uid, _unchangedReads);
        }

        try
        {
            return CaSecretRead.Of(CaRotation.Read(secret, $"{_namespace}/{SecretName}"), secret.Metadata?.Uid, _unchangedReads);
        }
        catch (InvalidDataException e)
        {
            return CaSecretRead.Unusable(e.Message, _unchangedReads);
        }
    }

    /// <summary>A follower waiting for the leader to repair the Secret: said once per outage (and again when the reason changes).</summary>
    private void ReportKept(CaSecretRead read)
    {
        var reason = read switch
        {
            { Missing: true } => $"Secret {_namespace}/{SecretName} is gone",
            { Error: { } error } => error,
            _ => $"Secret {_namespace}/{SecretName} was created again with CA '{read.State!.Signing.Subject}', which this replica does not trust",
        };
        if (reason == _kept)
        {
            return;
        }

        _kept = reason;
        if (read.Error is not null)
        {
            LogKeptUnusable(_logger, reason);
        }
        else
        {
            LogKept(_logger, reason);
        }
    }

    /// <summary>The leader's repair of a deleted Secret: created again with the CA and stage in hand; a create conflict means another replica did it first.</summary>
    private async Task RecreateAsync(CaState held, CancellationToken cancellationToken)
    {
        try
        {
            var written = await _client.CoreV1.CreateNamespacedSecretAsync(NewSecret(held), _namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
            LogRepaired(_logger, $"Secret {_namespace}/{SecretName} was deleted", held.Signing.Subject, held.Signing.Thumbprint, held.Stage.ToString());
            Written(written);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
        {
            LogRepairRaced(_logger, _namespace, SecretName);
        }
    }

    /// <summary>The leader's repair of an unusable or foreign Secret: replaced, with the resourceVersion read, by the CA and stage in hand.</summary>
    private async Task OverwriteAsync(V1Secret secret, CaState held, CaSecretRead read, CancellationToken cancellationToken)
    {
        var what = read.Error ?? $"Secret {_namespace}/{SecretName} was created again with CA '{read.State!.Signing.Subject}', which no data plane trusts";
        CaRotation.Write(secret, held);
        Own(secret);
        try
        {
            var written = await _client.CoreV1.ReplaceNamespacedSecretAsync(secret, SecretName, _namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
            LogRepaired(_logger, what, held.Signing.Subject, held.Signing.Thumbprint, held.Stage.ToString());
            Written(written);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
        {
            LogRepairRaced(_logger, _namespace, SecretName);
        }
    }

    /// <summary>The Secret as this replica wrote it back: what it holds is what is stored again.</summary>
    private void Written(V1Secret written)
    {
        _resourceVersion = written.Metadata?.ResourceVersion;
        _uid = written.Metadata?.Uid;
        _lastReadVersion = _resourceVersion;
        _unchangedReads = 1;
    }

    /// <summary>When leading, moves the rotation on by one stage when one is due, writing it with the resourceVersion read.</summary>
    private async Task MoveRotationOnAsync(V1Secret secret, CancellationToken cancellationToken)
    {
        if (!_isLeader() || _state is not { } state)
        {
            return;
        }

        var published = !_publishedThroughConfigMaps || _publishedPem == state.TrustedPem;
        if (CaRotation.Next(state, _time.GetUtcNow(), _rotation, published, now => StreamCertificates.CreateAuthority(now, _rotation.Lifetime)) is not { } next)
        {
            return;
        }

        CaRotation.Write(secret, next);
        try
        {
            var written = await _client.CoreV1.ReplaceNamespacedSecretAsync(secret, SecretName, _namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
            LogStage(_logger, _namespace, SecretName, Describe(state, next), next.Stage.ToString());
            Adopt(next, written.Metadata?.ResourceVersion, written.Metadata?.Uid);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
        {
            // Another replica wrote it since we read it (a leader change mid-rotation): its state wins, and
            // the next read adopts it.
            LogStageRaced(_logger, _namespace, SecretName);
        }
    }

    private static string Describe(CaState from, CaState to) => to.Stage switch
    {
        CaRotationStage.Publishing when from.Stage == CaRotationStage.Stable => $"created CA '{to.Next!.Subject}' (valid until {to.Next.NotAfter.ToUniversalTime().ToString("u", CultureInfo.InvariantCulture)}) and published the bundle of it and '{to.Signing.Subject}'; the old CA still issues",
        CaRotationStage.Publishing => "the bundle is in every ConfigMap; waiting the propagation delay for the kubelet to bring it to the pods",
        CaRotationStage.Retiring => $"CA '{to.Signing.Subject}' issues the serving certificates from now on; the old one stays in the bundle for the retire grace",
        _ => $"dropped the old CA from the bundle; CA '{to.Signing.Subject}' alone is trusted",
    };

    private void Adopt(CaState state, string? resourceVersion, string? uid)
    {
        var before = _state?.TrustedPem;
        _state = state;
        _resourceVersion = resourceVersion;
        _uid = uid;
        if (before is not null && before != state.TrustedPem)
        {
            LogTrustChanged(_logger, state.Trusted.Count);
            TrustChanged?.Invoke();
        }
    }

    /// <summary>The stored CA; when there is none, a new one, created unless another replica created one first (then that one).</summary>
    private async Task<(CaState State, string? Version, string? Uid)> ReadOrCreateAsync(CancellationToken cancellationToken)
    {
        if (await ReadSecretAsync(cancellationToken).ConfigureAwait(false) is { } stored)
        {
            var state = CaRotation.Read(stored, $"{_namespace}/{SecretName}");
            LogLoaded(_logger, _namespace, SecretName, state.Signing.Thumbprint);
            return (state, stored.Metadata?.ResourceVersion, stored.Metadata?.Uid);
        }

        var created = CaState.Of(StreamCertificates.CreateAuthority(_time.GetUtcNow(), _rotation.Lifetime));
        var secret = NewSecret(created);
        try
        {
            var written = await _client.CoreV1.CreateNamespacedSecretAsync(secret, _namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
            LogCreated(_logger, _namespace, SecretName, created.Signing.Thumbprint);
            return (created, written.Metadata?.ResourceVersion, written.Metadata?.Uid);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
        {
            // Another replica created it between our read and our create: use theirs.
            created.Signing.Dispose();
            var winner = await ReadSecretAsync(cancellationToken).ConfigureAwait(false)
                ?? throw new InvalidOperationException($"Secret {_namespace}/{SecretName} was created by someone else and then deleted");
            var state = CaRotation.Read(winner, $"{_namespace}/{SecretName}");
            LogLoaded(_logger, _namespace, SecretName, state.Signing.Thumbprint);
            return (state, winner.Metadata?.ResourceVersion, winner.Metadata?.Uid);
        }
    }

    /// <summary>The Secret holding <paramref name="state"/>, as a replica creates it.</summary>
    private V1Secret NewSecret(CaState state)
    {
        var secret = new V1Secret
        {
            ApiVersion = "v1",
            Kind = "Secret",
            Type = "kubernetes.io/tls",
            Metadata = new V1ObjectMeta { Name = SecretName, NamespaceProperty = _namespace },
        };
        Own(secret);
        CaRotation.Write(secret, state);
        return secret;
    }

    /// <summary>Our label and controller annotation (kept, or put back on a Secret someone emptied).</summary>
    private void Own(V1Secret secret)
    {
        secret.Metadata ??= new V1ObjectMeta();
        (secret.Metadata.Labels ??= new Dictionary<string, string>())[DataPlaneManifests.ManagedByLabel] = DataPlaneManifests.ManagedByValue;
        (secret.Metadata.Annotations ??= new Dictionary<string, string>())[DataPlaneManifests.ControllerAnnotation] = _controllerName;
    }

    private async Task<V1Secret?> ReadSecretAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _client.CoreV1.ReadNamespacedSecretAsync(SecretName, _namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
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

    [LoggerMessage(5, LogLevel.Information, "Config stream: serving certificate issued for {Names}, valid until {NotAfter}, by CA '{Authority}'")]
    private static partial void LogIssued(ILogger logger, string names, string notAfter, string authority);

    [LoggerMessage(6, LogLevel.Information, "Config stream CA rotation (Secret {Namespace}/{Name}): {What} (stage {Stage})")]
    private static partial void LogStage(ILogger logger, string @namespace, string name, string what, string stage);

    [LoggerMessage(7, LogLevel.Information, "Config stream CA rotation: Secret {Namespace}/{Name} was written by another replica since it was read; following its state")]
    private static partial void LogStageRaced(ILogger logger, string @namespace, string name);

    [LoggerMessage(8, LogLevel.Warning, "Config stream CA: reading Secret {Namespace}/{Name} again (or moving its rotation on) failed: {Error}; keeping the CA in hand, retrying every {IntervalSeconds} s")]
    private static partial void LogRefreshFailed(ILogger logger, string @namespace, string name, string error, double intervalSeconds);

    [LoggerMessage(9, LogLevel.Information, "Config stream CA: Secret {Namespace}/{Name} can be read again")]
    private static partial void LogRefreshRecovered(ILogger logger, string @namespace, string name);

    [LoggerMessage(11, LogLevel.Warning, "Config stream CA: {What}; wrote back the CA '{Subject}' (thumbprint {Thumbprint}) and rotation stage {Stage} this replica holds, so data planes that trust it keep connecting")]
    private static partial void LogRepaired(ILogger logger, string what, string subject, string thumbprint, string stage);

    [LoggerMessage(12, LogLevel.Information, "Config stream CA: Secret {Namespace}/{Name} was written by another replica since it was read; following it at the next check")]
    private static partial void LogRepairRaced(ILogger logger, string @namespace, string name);

    [LoggerMessage(13, LogLevel.Information, "Config stream CA: {Reason}; this replica keeps serving with the CA it holds while the leader writes it back")]
    private static partial void LogKept(ILogger logger, string reason);

    [LoggerMessage(14, LogLevel.Warning, "Config stream CA: {Reason}; this replica keeps serving with the CA it holds while the leader writes it back")]
    private static partial void LogKeptUnusable(ILogger logger, string reason);

    [LoggerMessage(15, LogLevel.Warning, "Config stream CA: {Error}; this replica holds no CA to write back (running replicas repair it from memory): delete it to have a new CA created, whose bundle data planes get through their ConfigMaps; retrying in {DelaySeconds} s")]
    private static partial void LogLoadUnusable(ILogger logger, string error, double delaySeconds);

    [LoggerMessage(10, LogLevel.Information, "Config stream CA: the bundle data planes trust changed ({Count} CA certificate(s)); writing it to the ConfigMaps")]
    private static partial void LogTrustChanged(ILogger logger, int count);
}
