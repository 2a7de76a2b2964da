using System.Collections.Frozen;
using Microsoft.IdentityModel.Tokens;

namespace Gatehouse.Policy.Identity;

/// <summary>
/// One OIDC/JWT identity provider whose access tokens clients may present as their password. Built and checked by the
/// config loader (docs/configuration.md, <c>identity_providers</c>); <see cref="JwtIdentityProvider"/> checks them again.
/// </summary>
public sealed record JwtProviderOptions
{
    /// <summary>The asymmetric signature algorithms a provider accepts unless its config narrows them.</summary>
    public static readonly IReadOnlyList<string> DefaultAlgorithms = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"];

    /// <summary>
    /// Every algorithm that may be allowed: RSA PKCS#1 v1.5, RSA-PSS and ECDSA (RFC 7518 section 3.1). Never <c>none</c>
    /// (anyone could mint a token) and never HS* (a symmetric check keyed with a public key is the classic key confusion).
    /// </summary>
    public static readonly FrozenSet<string> SupportedAlgorithms =
        FrozenSet.ToFrozenSet(["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"], StringComparer.Ordinal);

    /// <summary>60 s absorbs ordinary clock drift between the issuer and the gateway without stretching a token's life much.</summary>
    public static readonly TimeSpan DefaultClockSkew = TimeSpan.FromSeconds(60);

    /// <summary>More than 5 minutes would let an expired token keep working long enough to matter.</summary>
    public static readonly TimeSpan MaxClockSkew = TimeSpan.FromMinutes(5);

    /// <summary>Issuers rotate keys in days; an hour notices a rotation that did not come with a new key id.</summary>
    public static readonly TimeSpan DefaultJwksRefresh = TimeSpan.FromHours(1);

    /// <summary>The shortest automatic refresh ConfigurationManager allows (its MinimumAutomaticRefreshInterval).</summary>
    public static readonly TimeSpan MinJwksRefresh = TimeSpan.FromMinutes(5);

    public static readonly TimeSpan MaxJwksRefresh = TimeSpan.FromDays(1);

    /// <summary>
    /// A token whose key id is unknown makes the keys be fetched again at most this often, so a stream of forged key
    /// ids cannot turn the gateway into a load generator against the issuer.
    /// </summary>
    public static readonly TimeSpan UnknownKeyRefreshInterval = TimeSpan.FromMinutes(5);

    /// <summary>Name in logs and errors.</summary>
    public required string Name { get; init; }

    /// <summary>The exact <c>iss</c> value of its tokens; with discovery, also the base of the discovery document's address.</summary>
    public required string Issuer { get; init; }

    /// <summary>The <c>aud</c> value its tokens must carry for this gateway.</summary>
    public required string Audience { get; init; }

    /// <summary>The public keys from a JWKS file; null with <see cref="Discovery"/>.</summary>
    public JwksKeySet? Keys { get; init; }

    /// <summary>Fetch the keys through <c>{issuer}/.well-known/openid-configuration</c> and its <c>jwks_uri</c>.</summary>
    public bool Discovery { get; init; }

    /// <summary>How often discovered keys are fetched again.</summary>
    public TimeSpan JwksRefresh { get; init; } = DefaultJwksRefresh;

    public IReadOnlyList<string> Algorithms { get; init; } = DefaultAlgorithms;

    public TimeSpan ClockSkew { get; init; } = DefaultClockSkew;

    /// <summary>The claim whose value is the identity's name; it must equal the user name the client logs in with.</summary>
    public string IdentityClaim { get; init; } = "sub";

    /// <summary>The claim that lists the identity's groups: a JSON array of strings, or one space-separated string.</summary>
    public string GroupsClaim { get; init; } = "groups";

    /// <summary>The connections this provider's identities may open; null for all (the policy's bindings still decide).</summary>
    public FrozenSet<string>? Connections { get; init; }

    /// <summary>The address of the discovery document: <c>{issuer}/.well-known/openid-configuration</c> (OIDC Discovery 1.0 section 4).</summary>
    public string DiscoveryAddress => Issuer.TrimEnd('/') + "/.well-known/openid-configuration";

    /// <summary>Why an algorithm name cannot be allowed, or null when it can.</summary>
    public static string? CheckAlgorithm(string algorithm) => algorithm switch
    {
        _ when SupportedAlgorithms.Contains(algorithm) => null,
        _ when string.Equals(algorithm, "none", StringComparison.OrdinalIgnoreCase) =>
            "'none' is never accepted: an unsigned token would let anyone claim any identity",
        _ when algorithm.StartsWith("HS", StringComparison.OrdinalIgnoreCase) =>
            $"'{algorithm}' is not accepted: symmetric algorithms would check tokens with the public key as an HMAC secret (key confusion)",
        _ => $"unknown algorithm '{algorithm}'; supported: {string.Join(", ", SupportedAlgorithms.Order(StringComparer.Ordinal))}",
    };

    /// <summary>
    /// Whether discovery may use plain HTTP for this issuer: only on loopback (a local issuer in tests or a sidecar),
    /// since the keys decide who may log in. Null when the issuer is not an absolute http(s) address at all.
    /// </summary>
    public static bool? DiscoveryAllowsHttp(string issuer)
    {
        if (!Uri.TryCreate(issuer, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
        {
            return null;
        }

        return uri.IsLoopback;
    }
}

/// <summary>
/// The public signing keys of a JWKS document (RFC 7517 section 5): RSA and EC keys only. A symmetric (<c>oct</c>) key or
/// a private key is refused when the set is read, so no secret key can ever check a token.
/// </summary>
public sealed class JwksKeySet
{
    private JwksKeySet(IReadOnlyList<SecurityKey> keys)
    {
        Keys = keys;
    }

    /// <summary>The keys, in document order.</summary>
    internal IReadOnlyList<SecurityKey> Keys { get; }

    public int Count => Keys.Count;

    /// <summary>Reads a JWKS document; on failure <paramref name="error"/> says why (no key material in it).</summary>
    public static bool TryParse(string json, out JwksKeySet? keys, out string? error)
    {
        keys = null;
        JsonWebKeySet set;
        try
        {
            set = new JsonWebKeySet(json) { SkipUnresolvedJsonWebKeys = true };
        }
        catch (Exception ex) when (ex is ArgumentException or System.Text.Json.JsonException)
        {
            error = "not a JWKS document (a JSON object with a \"keys\" array)";
            return false;
        }

        var result = new List<SecurityKey>();
        for (int i = 0; i < set.Keys.Count; i++)
        {
            var key = set.Keys[i];
            if (key.Kty is not (JsonWebAlgorithmsKeyTypes.RSA or JsonWebAlgorithmsKeyTypes.EllipticCurve))
            {
                error = $"key {i + 1} has key type '{key.Kty}': only public RSA and EC keys are accepted, never symmetric ones";
                return false;
            }

            if (key.HasPrivateKey || !string.IsNullOrEmpty(key.D))
            {
                error = $"key {i + 1} holds a private key: the gateway needs only the public keys, keep the private ones with the issuer";
                return false;
            }
        }

        foreach (var key in set.GetSigningKeys())
        {
            result.Add(key);
        }

        if (result.Count == 0)
        {
            error = "no usable signing key (RSA or EC with use \"sig\" or no use)";
            return false;
        }

        keys = new JwksKeySet(result);
        error = null;
        return true;
    }

    /// <summary>Whether a key can only verify: RSA or EC, never symmetric.</summary>
    internal static bool IsPublicAsymmetric(SecurityKey key) => key switch
    {
        JsonWebKey jwk => jwk.Kty is JsonWebAlgorithmsKeyTypes.RSA or JsonWebAlgorithmsKeyTypes.EllipticCurve,
        AsymmetricSecurityKey => true,
        _ => false,
    };
}
