using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Gatehouse.Host.Tls;

/// <summary>Server certificates for client-facing TLS: from PEM files, or generated in memory for demos and tests.</summary>
internal static class CertificateLoader
{
    /// <summary>Loads a certificate (with its chain, if the file has one) and its private key from PEM files.</summary>
    public static X509Certificate2 FromPemFiles(string certificateFile, string keyFile) =>
        X509Certificate2.CreateFromPemFile(certificateFile, keyFile);

    /// <summary>
    /// A self-signed certificate for localhost, valid for 30 days, made at start-up and never written to disk.
    /// Clients must not verify it (sslmode=require); use real certificates anywhere else.
    /// </summary>
    public static X509Certificate2 CreateSelfSigned(string subjectName = "gatehouse.localhost")
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={subjectName}", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddDnsName(subjectName);
        san.AddIpAddress(IPAddress.Loopback);
        san.AddIpAddress(IPAddress.IPv6Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(30));
    }
}
