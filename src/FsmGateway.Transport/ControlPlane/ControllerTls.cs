using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace FsmGateway.Transport.ControlPlane;

/// <summary>
/// The data plane's side of the config stream's security (ADR 0010): the CA it verifies the controller's certificate
/// against, and the token it authenticates with, both read from files (mounted from a ConfigMap and a projected
/// volume in a cluster) at start to check them and again at every connect.
/// </summary>
internal static class ControllerTls
{
    /// <summary>The CA certificates in a PEM file, or why there are none usable.</summary>
    public static (X509Certificate2Collection? Authorities, string? Error) LoadAuthorities(string path)
    {
        var authorities = new X509Certificate2Collection();
        try
        {
            authorities.ImportFromPemFile(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
        {
            return (null, $"'{LogText.Escape(path)}' cannot be read as PEM certificates: {ErrorText.Of(e)}");
        }

        return authorities.Count == 0
            ? (null, $"'{LogText.Escape(path)}' holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
            : (authorities, null);
    }

    /// <summary>The token in a file (surrounding white space removed), or why there is none.</summary>
    public static (string? Token, string? Error) ReadToken(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return (null, $"'{LogText.Escape(path)}' cannot be read: {ErrorText.Of(e)}");
        }

        return text.Length == 0 || text.Any(char.IsWhiteSpace)
            ? (null, $"'{LogText.Escape(path)}' does not hold a token (it is empty or has white space inside)")
            : (text, null);
    }

    /// <summary>
    /// Whether <paramref name="certificate"/> is acceptable: for the host name asked for (the platform's check) and
    /// chaining to one of <paramref name="authorities"/> only (the system's roots do not count). Null when it is; else
    /// why not, for the log.
    /// </summary>
    public static string? Reject(X509Certificate? certificate, SslPolicyErrors errors, X509Certificate2Collection authorities)
    {
        if (certificate is null || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
        {
            return "the controller presented no certificate";
        }

        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch))
        {
            return $"the controller's certificate ({certificate.Subject}) is not for the host name the data plane connected to";
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var presented = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        try
        {
            if (chain.Build(presented))
            {
                return null;
            }

            var why = string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct());
            return $"the controller's certificate ({presented.Subject}, issued by {presented.Issuer}) does not chain to the CA in the --controller-ca-file ({why})";
        }
        finally
        {
            foreach (var element in chain.ChainElements)
            {
                element.Certificate.Dispose();
            }
        }
    }
}
