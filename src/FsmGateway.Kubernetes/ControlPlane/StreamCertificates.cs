using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace FsmGateway.Kubernetes.ControlPlane;

/// <summary>
/// The certificates of the config stream (ADR 0010), made with the framework's <see cref="CertificateRequest"/>: a
/// self-signed CA the controller creates (stored in a Secret, see <see cref="StreamAuthority"/>; a new one when the old
/// nears its end, see <see cref="CaRotation"/>), and each replica's serving certificate, issued by it for the controller
/// Service's DNS names. ECDSA P-256 keys. Pure: the time is given.
/// </summary>
internal static class StreamCertificates
{
    /// <summary>How long a CA is valid by default (<c>--stream-ca-lifetime</c>); the controller rotates it before its end (<see cref="CaRotation"/>).</summary>
    public static readonly TimeSpan AuthorityLifetime = TimeSpan.FromDays(365);

    /// <summary>How long a serving certificate is valid; a replica issues itself a new one when a third of that is left.</summary>
    public static readonly TimeSpan ServingLifetime = TimeSpan.FromDays(90);

    /// <summary>How far back validity starts, for clocks a little behind ours (a tenth of a lifetime shorter than 50 minutes).</summary>
    private static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(5);

    /// <summary>
    /// A new self-signed CA (with its private key), valid for <paramref name="lifetime"/> (default
    /// <see cref="AuthorityLifetime"/>): may sign end-entity certificates only. Its subject names its creation time, so
    /// the old and the new CA of a rotation are told apart by name as well as by key identifier.
    /// </summary>
    public static X509Certificate2 CreateAuthority(DateTimeOffset now, TimeSpan? lifetime = null)
    {
        var lasts = lifetime ?? AuthorityLifetime;
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var created = now.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", System.Globalization.CultureInfo.InvariantCulture);
        var request = new CertificateRequest($"CN=fsm-gateway-controller-ca {created}, O=FsmGateway", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        var skew = lasts / 10 < ClockSkew ? lasts / 10 : ClockSkew;
        using var signed = request.CreateSelfSigned(now - skew, now + lasts);
        return Reload(signed);
    }

    /// <summary>
    /// A serving certificate signed by <paramref name="authority"/> for <paramref name="names"/> (DNS names, or IP
    /// addresses as text), valid for <see cref="ServingLifetime"/> but never beyond the CA.
    /// </summary>
    public static X509Certificate2 IssueServing(X509Certificate2 authority, IEnumerable<string> names, DateTimeOffset now)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=fsm-gateway-controller, O=FsmGateway", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        foreach (var name in names.Distinct(StringComparer.OrdinalIgnoreCase))
        {
            if (IPAddress.TryParse(name, out var address))
            {
                san.AddIpAddress(address);
            }
            else
            {
                san.AddDnsName(name);
            }
        }

        request.CertificateExtensions.Add(san.Build(critical: false));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1", "Server Authentication")], critical: false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(authority, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        var notAfter = now + ServingLifetime < authority.NotAfter ? now + ServingLifetime : new DateTimeOffset(authority.NotAfter);
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        var notBefore = now - ClockSkew > new DateTimeOffset(authority.NotBefore) ? now - ClockSkew : new DateTimeOffset(authority.NotBefore);
        using var signed = request.Create(authority, notBefore, notAfter, serial);
        using var withKey = signed.CopyWithPrivateKey(key);
        return Reload(withKey);
    }

    /// <summary>Whether <paramref name="serving"/> should be replaced: a third or less of its lifetime left.</summary>
    public static bool IsDueForRenewal(X509Certificate2 serving, DateTimeOffset now) =>
        now >= new DateTimeOffset(serving.NotAfter) - ((serving.NotAfter - serving.NotBefore) / 3);

    /// <summary>The certificate as PEM (public only).</summary>
    public static string CertificatePem(X509Certificate2 certificate) => certificate.ExportCertificatePem();

    /// <summary>Certificates as one PEM bundle (public only), in the order given: what data planes trust.</summary>
    public static string BundlePem(IEnumerable<X509Certificate2> certificates) => string.Join("\n", certificates.Select(c => c.ExportCertificatePem()));

    /// <summary>The certificates of a PEM bundle; a <see cref="CryptographicException"/> when it holds none or is not PEM.</summary>
    public static X509Certificate2Collection ParseBundle(string pem)
    {
        var bundle = new X509Certificate2Collection();
        bundle.ImportFromPem(pem);
        return bundle.Count > 0 ? bundle : throw new CryptographicException("no PEM certificate (-----BEGIN CERTIFICATE-----)");
    }

    /// <summary>The private key as PKCS#8 PEM.</summary>
    public static string KeyPem(X509Certificate2 certificate) =>
        (certificate.GetECDsaPrivateKey() ?? throw new InvalidOperationException("the certificate has no ECDSA private key")).ExportPkcs8PrivateKeyPem();

    /// <summary>A certificate and its key from PEM; a clear <see cref="CryptographicException"/> when they are not a pair or not PEM.</summary>
    public static X509Certificate2 FromPem(string certificatePem, string keyPem)
    {
        using var loaded = X509Certificate2.CreateFromPem(certificatePem, keyPem);
        return Reload(loaded);
    }

    /// <summary>
    /// Through PKCS#12 and back: a certificate whose key was created in memory is then usable by SslStream on every
    /// platform (an ephemeral key is not, on some).
    /// </summary>
    private static X509Certificate2 Reload(X509Certificate2 certificate) =>
        X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null, X509KeyStorageFlags.Exportable);
}
