using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Gatehouse.TestSupport;

/// <summary>A signing key generated for one test run, with its public JWK.</summary>
public sealed class TestKey : IDisposable
{
    private readonly AsymmetricAlgorithm _algorithm;

    private TestKey(string kid, string alg, AsymmetricAlgorithm algorithm, SecurityKey key, Dictionary<string, string> jwk)
    {
        Kid = kid;
        Algorithm = alg;
        _algorithm = algorithm;
        Key = key;
        Jwk = jwk;
    }

    public string Kid { get; }

    /// <summary>The JWS algorithm the key signs with (RS256, ES256).</summary>
    public string Algorithm { get; }

    public SecurityKey Key { get; }

    /// <summary>The public key as JWK members (no private part).</summary>
    public Dictionary<string, string> Jwk { get; }

    public SigningCredentials Credentials => new(Key, Algorithm);

    /// <summary>The public key as PEM text: what a key-confusion attacker uses as an HMAC secret.</summary>
    public byte[] PublicKeyPemBytes => Encoding.ASCII.GetBytes(_algorithm.ExportSubjectPublicKeyInfoPem());

    public static TestKey Rsa(string kid)
    {
        var rsa = System.Security.Cryptography.RSA.Create(2048);
        var p = rsa.ExportParameters(false);
        return new TestKey(kid, SecurityAlgorithms.RsaSha256, rsa, new RsaSecurityKey(rsa) { KeyId = kid }, new Dictionary<string, string>
        {
            ["kty"] = "RSA",
            ["kid"] = kid,
            ["use"] = "sig",
            ["n"] = Base64UrlEncoder.Encode(p.Modulus!),
            ["e"] = Base64UrlEncoder.Encode(p.Exponent!),
        });
    }

    public static TestKey Ec(string kid)
    {
        var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var p = ec.ExportParameters(false);
        return new TestKey(kid, SecurityAlgorithms.EcdsaSha256, ec, new ECDsaSecurityKey(ec) { KeyId = kid }, new Dictionary<string, string>
        {
            ["kty"] = "EC",
            ["kid"] = kid,
            ["use"] = "sig",
            ["crv"] = "P-256",
            ["x"] = Base64UrlEncoder.Encode(p.Q.X!),
            ["y"] = Base64UrlEncoder.Encode(p.Q.Y!),
        });
    }

    /// <summary>A JWKS document with the public keys.</summary>
    public static string Jwks(params TestKey[] keys) => JsonSerializer.Serialize(new { keys = keys.Select(k => k.Jwk) });

    public void Dispose() => _algorithm.Dispose();
}

/// <summary>
/// An OIDC issuer for tests: real keys generated per instance and tokens signed with them, so every check the
/// gateway makes runs against real signatures.
/// </summary>
public sealed class TestIssuer : IDisposable
{
    private static readonly JsonWebTokenHandler Handler = new() { SetDefaultTimesOnTokenCreation = false };

    public TestIssuer(string issuer, string audience = "gatehouse")
    {
        Issuer = issuer;
        Audience = audience;
    }

    public string Issuer { get; }

    public string Audience { get; }

    public TestKey RsaKey { get; } = TestKey.Rsa("rsa-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));

    public TestKey EcKey { get; } = TestKey.Ec("ec-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));

    /// <summary>The JWKS document of both keys.</summary>
    public string Jwks => TestKey.Jwks(RsaKey, EcKey);

    /// <summary>
    /// A token for <paramref name="subject"/>: this issuer and audience, valid from a minute ago for ten minutes, signed
    /// with the RSA key unless <paramref name="credentials"/> says otherwise. <paramref name="configure"/> changes anything.
    /// </summary>
    public string Mint(string? subject, Action<SecurityTokenDescriptor>? configure = null, SigningCredentials? credentials = null)
    {
        var now = DateTime.UtcNow;
        var descriptor = new SecurityTokenDescriptor
        {
            Issuer = Issuer,
            Audience = Audience,
            IssuedAt = now,
            NotBefore = now.AddMinutes(-1),
            Expires = now.AddMinutes(10),
            Claims = new Dictionary<string, object>(StringComparer.Ordinal),
            SigningCredentials = credentials ?? RsaKey.Credentials,
        };
        if (subject is not null)
        {
            descriptor.Claims["sub"] = subject;
        }

        configure?.Invoke(descriptor);
        return Handler.CreateToken(descriptor);
    }

    /// <summary>An unsigned token (<c>alg: none</c>) with the given claims: what an attacker sends to a lax validator.</summary>
    public string MintUnsigned(string subject)
    {
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var header = Base64UrlEncoder.Encode("""{"alg":"none","typ":"JWT"}""");
        var payload = Base64UrlEncoder.Encode(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["iss"] = Issuer, ["aud"] = Audience, ["sub"] = subject, ["iat"] = now, ["nbf"] = now - 60, ["exp"] = now + 600,
        }));
        return $"{header}.{payload}.";
    }

    /// <summary>
    /// HS256 keyed with the RSA public key's PEM text and the RSA key's id: accepted by a validator that lets the
    /// token's header pick a symmetric algorithm for an asymmetric key.
    /// </summary>
    public string MintKeyConfusion(string subject)
    {
        var hmac = new SymmetricSecurityKey(RsaKey.PublicKeyPemBytes) { KeyId = RsaKey.Kid };
        return Mint(subject, credentials: new SigningCredentials(hmac, SecurityAlgorithms.HmacSha256));
    }

    public void Dispose()
    {
        RsaKey.Dispose();
        EcKey.Dispose();
    }
}
