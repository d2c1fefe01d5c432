using System.Net;
using System.Security.Cryptography.X509Certificates;
using FsmGateway.Kubernetes.ControlPlane;

namespace FsmGateway.Kubernetes.Tests.ControlPlane;

/// <summary>The config stream's CA and serving certificates (<see cref="StreamCertificates"/>), checked with X509Chain as a data plane checks them.</summary>
public sealed class StreamCertificatesTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 30, 6, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Authority_is_a_self_signed_ca_that_may_sign_only_end_entities()
    {
        using var ca = StreamCertificates.CreateAuthority(Now);

        Assert.Equal(ca.Subject, ca.Issuer);
        var constraints = Assert.Single(ca.Extensions.OfType<X509BasicConstraintsExtension>());
        Assert.True(constraints.CertificateAuthority);
        Assert.Equal((true, 0), (constraints.HasPathLengthConstraint, constraints.PathLengthConstraint));
        Assert.True(ca.HasPrivateKey);
        Assert.True(ca.NotAfter.ToUniversalTime() >= (Now + StreamCertificates.AuthorityLifetime - TimeSpan.FromSeconds(1)).UtcDateTime);
    }

    [Fact]
    public void Serving_certificate_chains_to_the_authority_and_holds_the_names_asked_for_and_no_other_ca_accepts_it()
    {
        using var ca = StreamCertificates.CreateAuthority(Now);
        using var other = StreamCertificates.CreateAuthority(Now);

        using var serving = StreamCertificates.IssueServing(ca, ["fsm-gateway-controller.fsm-system", "fsm-gateway-controller.fsm-system.svc", "127.0.0.1"], Now);

        Assert.True(serving.HasPrivateKey);
        Assert.True(serving.MatchesHostname("fsm-gateway-controller.fsm-system"));
        Assert.True(serving.MatchesHostname("fsm-gateway-controller.fsm-system.svc"));
        Assert.False(serving.MatchesHostname("fsm-gateway-controller.elsewhere"));
        var san = Assert.Single(serving.Extensions.OfType<X509SubjectAlternativeNameExtension>());
        Assert.Contains(IPAddress.Loopback, san.EnumerateIPAddresses());
        Assert.False(Assert.Single(serving.Extensions.OfType<X509BasicConstraintsExtension>()).CertificateAuthority);
        Assert.True(Chains(serving, ca, Now));
        Assert.False(Chains(serving, other, Now));
        Assert.True(serving.NotAfter.ToUniversalTime() <= (Now + StreamCertificates.ServingLifetime).UtcDateTime);
    }

    [Fact]
    public void Pem_round_trip_keeps_the_certificate_and_its_key()
    {
        using var ca = StreamCertificates.CreateAuthority(Now);

        using var loaded = StreamCertificates.FromPem(StreamCertificates.CertificatePem(ca), StreamCertificates.KeyPem(ca));

        Assert.Equal(ca.Thumbprint, loaded.Thumbprint);
        using var serving = StreamCertificates.IssueServing(loaded, ["a.example"], Now);
        Assert.True(Chains(serving, ca, Now));
    }

    [Fact]
    public void Serving_certificate_is_renewed_when_a_third_of_its_lifetime_is_left()
    {
        using var ca = StreamCertificates.CreateAuthority(Now);
        using var serving = StreamCertificates.IssueServing(ca, ["a.example"], Now);

        Assert.False(StreamCertificates.IsDueForRenewal(serving, Now + TimeSpan.FromDays(55)));
        Assert.True(StreamCertificates.IsDueForRenewal(serving, Now + TimeSpan.FromDays(61)));
    }

    private static bool Chains(X509Certificate2 leaf, X509Certificate2 root, DateTimeOffset at)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(X509CertificateLoader.LoadCertificate(root.RawData));
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = at.UtcDateTime + TimeSpan.FromHours(1);
        return chain.Build(leaf);
    }
}
