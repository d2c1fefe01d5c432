using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using k8s.Models;

namespace FsmGateway.Kubernetes.ControlPlane;

/// <summary>When and how the config stream's CA is rotated (<c>--stream-ca-*</c>; docs/adr/0014).</summary>
internal sealed record CaRotationOptions
{
    /// <summary>How long a CA the controller creates is valid. Default 365 days.</summary>
    public TimeSpan Lifetime { get; init; } = StreamCertificates.AuthorityLifetime;

    /// <summary>At which fraction of a CA's lifetime its successor is created (above 0, below 1). Default 2/3.</summary>
    public double RotateAt { get; init; } = 2.0 / 3;

    /// <summary>
    /// How long after the bundle of old and new CA is in every ConfigMap the serving certificates switch to the new
    /// CA: the time the kubelet needs to update the mounted ConfigMap in every pod (its sync period plus its cache's
    /// TTL, about a minute or two by default). Default 5 minutes.
    /// </summary>
    public TimeSpan PropagationDelay { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>How long after the switch the old CA stays in the bundle, for replicas that have not switched yet. Default 1 hour.</summary>
    public TimeSpan RetireGrace { get; init; } = TimeSpan.FromHours(1);

    /// <summary>How often every replica reads the CA Secret again (to follow a rotation), and the leader checks whether a stage is due. Default 1 minute.</summary>
    public TimeSpan CheckInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Why these options are unusable, naming each option; empty when they are fine.</summary>
    public IReadOnlyList<string> Validate()
    {
        var failures = new List<string>();
        if (Lifetime < TimeSpan.FromSeconds(10) || Lifetime > TimeSpan.FromDays(36500))
        {
            failures.Add($"--stream-ca-lifetime: {Lifetime} is not between 10 s and 100 years");
        }

        if (!(RotateAt > 0 && RotateAt < 1))
        {
            failures.Add($"--stream-ca-rotate-at: {RotateAt.ToString(CultureInfo.InvariantCulture)} is not a fraction of the CA's lifetime above 0 and below 1 (e.g. 0.67)");
        }

        if (CheckInterval <= TimeSpan.Zero || CheckInterval > TimeSpan.FromDays(1))
        {
            failures.Add($"--stream-ca-check-interval: {CheckInterval} is not a positive duration of at most a day");
        }

        if (PropagationDelay < TimeSpan.Zero)
        {
            failures.Add($"--stream-ca-propagation-delay: {PropagationDelay} is negative");
        }

        if (CheckInterval > TimeSpan.Zero && RetireGrace < 2 * CheckInterval)
        {
            failures.Add($"--stream-ca-retire-grace: {RetireGrace} is shorter than two --stream-ca-check-interval ({CheckInterval}): a replica that reads the Secret once per interval could still serve a certificate of the CA dropped from the bundle");
        }

        if (Lifetime >= TimeSpan.FromSeconds(10) && Lifetime <= TimeSpan.FromDays(36500) && RotateAt is > 0 and < 1 && Lifetime * (1 - RotateAt) <= PropagationDelay + RetireGrace + (2 * CheckInterval))
        {
            failures.Add($"--stream-ca-lifetime/--stream-ca-rotate-at: the {Lifetime * (1 - RotateAt)} a CA has left when its rotation starts must exceed --stream-ca-propagation-delay + --stream-ca-retire-grace + two --stream-ca-check-interval ({PropagationDelay + RetireGrace + (2 * CheckInterval)})");
        }

        return failures;
    }
}

/// <summary>The stages of a CA rotation, as stored in the Secret's <see cref="CaRotation.StageAnnotation"/>.</summary>
internal enum CaRotationStage
{
    /// <summary>One CA: it issues the serving certificates and is the whole bundle.</summary>
    Stable,

    /// <summary>A new CA exists and is in the bundle beside the old one, which still issues; waiting for the bundle to reach every data plane.</summary>
    Publishing,

    /// <summary>The new CA issues; the old one stays in the bundle for the grace period.</summary>
    Retiring,
}

/// <summary>
/// The CA state kept in Secret <see cref="StreamAuthority.SecretName"/>: the CA that issues the serving certificates,
/// the bundle data planes trust, and during a rotation the new CA and the stage with its start. Everything a replica
/// that becomes leader mid-rotation needs to carry on where the last one stopped.
/// </summary>
internal sealed record CaState(
    X509Certificate2 Signing,
    IReadOnlyList<X509Certificate2> Trusted,
    X509Certificate2? Next,
    CaRotationStage Stage,
    DateTimeOffset? Since,
    DateTimeOffset? PublishedAt)
{
    /// <summary>The bundle as PEM: what the ConfigMaps carry and data planes trust.</summary>
    public string TrustedPem { get; } = StreamCertificates.BundlePem(Trusted);

    /// <summary>A state with one CA, before any rotation.</summary>
    public static CaState Of(X509Certificate2 authority) => new(authority, [authority], null, CaRotationStage.Stable, null, null);
}

/// <summary>
/// The staged CA rotation, as cert-manager's, Istio's and linkerd's trust-anchor rotation go: (1) before the CA nears its
/// end (<see cref="CaRotationOptions.RotateAt"/> of its lifetime) the leader creates a new CA and publishes the bundle
/// of both, while the old one still issues; (2) once the provisioner has written that bundle to every ConfigMap and the
/// kubelet has had <see cref="CaRotationOptions.PropagationDelay"/> to bring it to the pods, the new CA issues (every
/// replica switches its serving certificate when it reads the Secret); (3) after
/// <see cref="CaRotationOptions.RetireGrace"/> the old CA leaves the bundle. Each stage is stored in the Secret and
/// written with the resourceVersion read, so a leader that fails over mid-rotation is continued by the next one, and
/// two replicas never fork it. Pure: the time, whether the bundle is published and how a CA is made are given.
/// </summary>
internal static class CaRotation
{
    /// <summary>The Secret annotation holding the stage (absent when stable).</summary>
    public const string StageAnnotation = "gateway.fsm-gateway.io/ca-rotation-stage";

    /// <summary>The Secret annotation holding when the stage began (RFC 3339).</summary>
    public const string SinceAnnotation = "gateway.fsm-gateway.io/ca-rotation-since";

    /// <summary>The Secret annotation holding when the bundle was in every ConfigMap (RFC 3339), in the publishing stage.</summary>
    public const string PublishedAnnotation = "gateway.fsm-gateway.io/ca-bundle-published-at";

    /// <summary>The Secret's key for the bundle data planes trust (as cert-manager's <c>ca.crt</c>).</summary>
    public const string BundleKey = "ca.crt";

    /// <summary>The Secret's keys for the new CA while it is being published.</summary>
    public const string NextCertificateKey = "next.crt";

    public const string NextKeyKey = "next.key";

    /// <summary>When a CA's successor is due: <see cref="CaRotationOptions.RotateAt"/> of its lifetime.</summary>
    public static DateTimeOffset RotationDue(X509Certificate2 authority, CaRotationOptions options)
    {
        var notBefore = new DateTimeOffset(authority.NotBefore.ToUniversalTime());
        var notAfter = new DateTimeOffset(authority.NotAfter.ToUniversalTime());
        return notBefore + ((notAfter - notBefore) * options.RotateAt);
    }

    /// <summary>
    /// The next state, or null when nothing is due. <paramref name="published"/>: whether the bundle of
    /// <paramref name="state"/> is in every ConfigMap (always true for a controller that provisions none).
    /// </summary>
    public static CaState? Next(CaState state, DateTimeOffset now, CaRotationOptions options, bool published, Func<DateTimeOffset, X509Certificate2> create)
    {
        switch (state.Stage)
        {
            case CaRotationStage.Stable:
                if (now < RotationDue(state.Signing, options))
                {
                    return null;
                }

                var next = create(now);
                return new CaState(state.Signing, [state.Signing, next], next, CaRotationStage.Publishing, now, null);
            case CaRotationStage.Publishing when state.Next is { } successor:
                if (state.PublishedAt is not { } publishedAt)
                {
                    return published ? state with { PublishedAt = now } : null;
                }

                return now >= publishedAt + options.PropagationDelay
                    ? new CaState(successor, state.Trusted, null, CaRotationStage.Retiring, now, null)
                    : null;
            case CaRotationStage.Retiring:
                return now >= state.Since + options.RetireGrace
                    ? CaState.Of(state.Signing)
                    : null;
            default:
                return null;
        }
    }

    /// <summary>When <see cref="Next"/> may next have something to do (for the leader's timer), given that it has nothing to do now.</summary>
    public static DateTimeOffset? NextDue(CaState state, CaRotationOptions options) => state.Stage switch
    {
        CaRotationStage.Stable => RotationDue(state.Signing, options),
        CaRotationStage.Publishing => state.PublishedAt + options.PropagationDelay,
        CaRotationStage.Retiring => state.Since + options.RetireGrace,
        _ => null,
    };

    /// <summary>The state stored in a Secret; a clear <see cref="InvalidDataException"/> naming the Secret and key when it is unusable.</summary>
    public static CaState Read(V1Secret secret, string where)
    {
        var data = secret.Data ?? new Dictionary<string, byte[]>();
        if (!data.TryGetValue("tls.crt", out var certificate) || !data.TryGetValue("tls.key", out var key))
        {
            throw new InvalidDataException($"Secret {where} has no data.tls.crt and data.tls.key");
        }

        X509Certificate2 signing;
        try
        {
            signing = StreamCertificates.FromPem(Encoding.ASCII.GetString(certificate), Encoding.ASCII.GetString(key));
        }
        catch (CryptographicException e)
        {
            throw new InvalidDataException($"Secret {where}: data.tls.crt and data.tls.key are not a PEM certificate and its key ({e.Message})", e);
        }

        IReadOnlyList<X509Certificate2> trusted = [signing];
        if (data.TryGetValue(BundleKey, out var bundle))
        {
            try
            {
                var parsed = StreamCertificates.ParseBundle(Encoding.ASCII.GetString(bundle));
                trusted = [.. parsed];
            }
            catch (CryptographicException e)
            {
                throw new InvalidDataException($"Secret {where}: data.{BundleKey} is not a PEM bundle of CA certificates ({e.Message})", e);
            }

            if (!trusted.Any(c => c.Thumbprint == signing.Thumbprint))
            {
                throw new InvalidDataException($"Secret {where}: data.{BundleKey} does not hold the CA of data.tls.crt ({signing.Subject}), so data planes would refuse its certificates");
            }
        }

        var annotations = secret.Metadata?.Annotations ?? new Dictionary<string, string>();
        var stage = CaRotationStage.Stable;
        if (annotations.TryGetValue(StageAnnotation, out var stageText) && !Enum.TryParse(stageText, ignoreCase: false, out stage))
        {
            throw new InvalidDataException($"Secret {where}: annotation {StageAnnotation} '{stageText}' is not Publishing or Retiring");
        }

        X509Certificate2? next = null;
        if (stage == CaRotationStage.Publishing)
        {
            if (!data.TryGetValue(NextCertificateKey, out var nextCertificate) || !data.TryGetValue(NextKeyKey, out var nextKey))
            {
                throw new InvalidDataException($"Secret {where}: stage Publishing without data.{NextCertificateKey} and data.{NextKeyKey}");
            }

            try
            {
                next = StreamCertificates.FromPem(Encoding.ASCII.GetString(nextCertificate), Encoding.ASCII.GetString(nextKey));
            }
            catch (CryptographicException e)
            {
                throw new InvalidDataException($"Secret {where}: data.{NextCertificateKey} and data.{NextKeyKey} are not a PEM certificate and its key ({e.Message})", e);
            }
        }

        var since = Time(annotations, SinceAnnotation, where);
        if (stage != CaRotationStage.Stable && since is null)
        {
            throw new InvalidDataException($"Secret {where}: stage {stage} without annotation {SinceAnnotation}");
        }

        return new CaState(signing, trusted, next, stage, since, Time(annotations, PublishedAnnotation, where));
    }

    /// <summary>Writes <paramref name="state"/> into <paramref name="secret"/> (data and annotations), keeping everything else of it.</summary>
    public static void Write(V1Secret secret, CaState state)
    {
        secret.Data ??= new Dictionary<string, byte[]>();
        secret.Data["tls.crt"] = Encoding.ASCII.GetBytes(StreamCertificates.CertificatePem(state.Signing));
        secret.Data["tls.key"] = Encoding.ASCII.GetBytes(StreamCertificates.KeyPem(state.Signing));
        secret.Data[BundleKey] = Encoding.ASCII.GetBytes(state.TrustedPem);
        if (state.Next is { } next)
        {
            secret.Data[NextCertificateKey] = Encoding.ASCII.GetBytes(StreamCertificates.CertificatePem(next));
            secret.Data[NextKeyKey] = Encoding.ASCII.GetBytes(StreamCertificates.KeyPem(next));
        }
        else
        {
            secret.Data.Remove(NextCertificateKey);
            secret.Data.Remove(NextKeyKey);
        }

        secret.Metadata ??= new V1ObjectMeta();
        var annotations = secret.Metadata.Annotations ??= new Dictionary<string, string>();
        Set(annotations, StageAnnotation, state.Stage == CaRotationStage.Stable ? null : state.Stage.ToString());
        Set(annotations, SinceAnnotation, state.Since?.UtcDateTime.ToString("o", CultureInfo.InvariantCulture));
        Set(annotations, PublishedAnnotation, state.PublishedAt?.UtcDateTime.ToString("o", CultureInfo.InvariantCulture));
    }

    private static void Set(IDictionary<string, string> annotations, string name, string? value)
    {
        if (value is null)
        {
            annotations.Remove(name);
        }
        else
        {
            annotations[name] = value;
        }
    }

    private static DateTimeOffset? Time(IDictionary<string, string> annotations, string name, string where)
    {
        if (!annotations.TryGetValue(name, out var text))
        {
            return null;
        }

        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var value)
            ? value
            : throw new InvalidDataException($"Secret {where}: annotation {name} '{text}' is not a time (RFC 3339)");
    }
}
