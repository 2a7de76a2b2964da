using System.Buffers;
using System.Buffers.Text;
using System.Collections.Frozen;
using System.Globalization;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;

namespace Gatehouse.Policy.Identity;

/// <summary>Why a token was refused. The client is told only that authentication failed; the log gets the reason.</summary>
public enum TokenFailure : byte
{
    None,
    /// <summary>Not a compact JWS with a JSON header and payload.</summary>
    Malformed,
    /// <summary>No configured provider has the token's issuer.</summary>
    UnknownIssuer,
    /// <summary>The token's algorithm is not on the provider's allow-list (this covers <c>none</c> and HS*).</summary>
    AlgorithmNotAllowed,
    /// <summary>No key of the provider has the token's key id, even after fetching the keys again.</summary>
    UnknownKey,
    BadSignature,
    Expired,
    NotYetValid,
    NoExpiry,
    WrongAudience,
    WrongIssuer,
    /// <summary>The identity claim is missing, empty or not a string.</summary>
    NoIdentityClaim,
    /// <summary>The provider's keys could not be fetched (discovery).</summary>
    KeysUnavailable,
    /// <summary>Anything else the validator refused.</summary>
    Invalid,
}

/// <summary>Who a valid token says the client is.</summary>
/// <param name="Name">The identity claim's value.</param>
/// <param name="Groups">The groups claim's values (none when the claim is absent).</param>
/// <param name="ExpiresAt">The token's <c>exp</c>.</param>
/// <param name="Provider">The provider that accepted it.</param>
public sealed record TokenIdentity(string Name, IReadOnlyCollection<string> Groups, DateTimeOffset ExpiresAt, JwtIdentityProvider Provider)
{
    /// <summary>
    /// The last moment the gateway honours the token: <c>exp</c> plus the provider's clock skew, the same bound the
    /// login itself was checked against, so a session never outlives what a new login would be allowed.
    /// </summary>
    public DateTimeOffset HonouredUntil => ExpiresAt + Provider.ClockSkew;
}

/// <summary>The outcome of checking a token: an identity, or a failure with a reason for the log (never token content).</summary>
public readonly record struct TokenCheck(TokenIdentity? Identity, TokenFailure Failure, string? Reason, string? ProviderName)
{
    public bool Succeeded => Identity is not null;

    internal static TokenCheck Fail(TokenFailure failure, string reason, string? provider) => new(null, failure, reason, provider);
}

/// <summary>
/// Checks OIDC/JWT access tokens of one identity provider with Microsoft.IdentityModel's JsonWebTokenHandler:
/// signature against the provider's public keys (a JWKS file, or OIDC discovery through ConfigurationManager, cached and
/// refreshed), issuer, audience, expiry and not-before with bounded clock skew, and an allow-list of asymmetric
/// algorithms. Thread-safe; one instance per configured provider.
/// </summary>
public sealed class JwtIdentityProvider
{
    /// <summary>Larger than any password message the gateway reads before login (10000 bytes by default).</summary>
    private const int MaxTokenBytes = 64 * 1024;

    /// <summary>One client for every provider's discovery: pooled connections, bounded waits and response sizes.</summary>
    private static readonly HttpClient s_http = new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
    {
        Timeout = TimeSpan.FromSeconds(10),
        MaxResponseContentBufferSize = 1024 * 1024,
    };

    private readonly JsonWebTokenHandler _handler = new() { MapInboundClaims = false, MaximumTokenSizeInBytes = MaxTokenBytes };
    private readonly TokenValidationParameters _parameters;
    private readonly ConfigurationManager<OpenIdConnectConfiguration>? _discovery;
    private readonly FrozenSet<string> _algorithms;
    private readonly JwtProviderOptions _options;

    static JwtIdentityProvider()
    {
        // IdentityModel 8 refreshes discovered keys on a background task by default, so the login whose token carries a
        // new key id would fail while the refresh runs. In blocking mode the refresh that an unknown key id requests (at
        // most once per RefreshInterval) completes before the token is checked again: the first login after a key
        // rotation succeeds. The switch is process-wide; only this class uses IdentityModel.
        AppContext.SetSwitch("Switch.Microsoft.IdentityModel.UpdateConfigAsBlocking", true);
    }

    /// <param name="options">The provider's settings, already validated by the config loader (checked again here).</param>
    /// <exception cref="ArgumentException">An algorithm that may not be allowed, a skew out of bounds, or neither or both key sources.</exception>
    /// <remarks>
    /// Expiry and not-before are checked by IdentityModel against the system clock (its TimeProvider hook is not
    /// public); the session deadline that follows from the expiry is enforced by the engine with its own TimeProvider.
    /// </remarks>
    public JwtIdentityProvider(JwtProviderOptions options)
        : this(options, JwtProviderOptions.UnknownKeyRefreshInterval)
    {
    }

    /// <summary>Test hook: a shorter interval between refreshes for unknown key ids.</summary>
    internal JwtIdentityProvider(JwtProviderOptions options, TimeSpan unknownKeyRefreshInterval)
    {
        ArgumentNullException.ThrowIfNull(options);
        foreach (var algorithm in options.Algorithms)
        {
            if (JwtProviderOptions.CheckAlgorithm(algorithm) is { } problem)
            {
                throw new ArgumentException(problem, nameof(options));
            }
        }

        if (options.Algorithms.Count == 0 || options.ClockSkew < TimeSpan.Zero || options.ClockSkew > JwtProviderOptions.MaxClockSkew
            || (options.Keys is null) == !options.Discovery)
        {
            throw new ArgumentException("A provider needs algorithms, a clock skew from 0 to 5 minutes, and either keys or discovery.", nameof(options));
        }

        _options = options;
        _algorithms = options.Algorithms.ToFrozenSet(StringComparer.Ordinal);
        _parameters = new TokenValidationParameters
        {
            ValidIssuer = options.Issuer,
            ValidateIssuer = true,
            ValidAudience = options.Audience,
            ValidateAudience = true,
            ValidAlgorithms = options.Algorithms,
            RequireSignedTokens = true,
            RequireExpirationTime = true,
            ValidateLifetime = true,
            ClockSkew = options.ClockSkew,
            IssuerSigningKeys = options.Keys?.Keys,
            TryAllIssuerSigningKeys = true,

            // Belt and braces: the algorithm allow-list already refuses HS*, and no symmetric key is ever loaded.
            ValidateIssuerSigningKey = true,
            IssuerSigningKeyValidator = static (key, _, _) => JwksKeySet.IsPublicAsymmetric(key),
        };

        if (options.Discovery)
        {
            bool? allowsHttp = JwtProviderOptions.DiscoveryAllowsHttp(options.Issuer)
                               ?? throw new ArgumentException("Discovery needs an http(s) issuer address.", nameof(options));
            _discovery = new ConfigurationManager<OpenIdConnectConfiguration>(
                options.DiscoveryAddress,
                new PublicKeysOnlyRetriever(options.Issuer),
                new HttpDocumentRetriever(s_http) { RequireHttps = !allowsHttp.Value })
            {
                AutomaticRefreshInterval = options.JwksRefresh,
                RefreshInterval = unknownKeyRefreshInterval,
            };
            _parameters.ConfigurationManager = _discovery;
        }
    }

    public string Name => _options.Name;

    public string Issuer => _options.Issuer;

    public TimeSpan ClockSkew => _options.ClockSkew;

    public JwtProviderOptions Options => _options;

    /// <summary>Whether this provider's identities may open the connection (the policy's bindings decide the role).</summary>
    public bool MayUse(string connection) => _options.Connections?.Contains(connection) ?? true;

    /// <summary>Checks a token in compact form.</summary>
    public Task<TokenCheck> ValidateAsync(string token, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(token);
        return TryRead(token, out var jwt)
            ? ValidateAsync(jwt!, ct)
            : Task.FromResult(TokenCheck.Fail(TokenFailure.Malformed, "the password is not a well-formed JWT", Name));
    }

    internal async Task<TokenCheck> ValidateAsync(JsonWebToken token, CancellationToken ct)
    {
        // Checked before any key is touched, with the library's own ValidAlgorithms check behind it.
        if (token.Alg is not { } algorithm || !_algorithms.Contains(algorithm))
        {
            return TokenCheck.Fail(TokenFailure.AlgorithmNotAllowed, "the token's algorithm is not on the provider's allow-list", Name);
        }

        if (_discovery is not null)
        {
            try
            {
                // Cached; fetched (blocking) the first time and after each refresh interval.
                await _discovery.GetConfigurationAsync(ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                var inner = ex;
                while (inner.InnerException is not null)
                {
                    inner = inner.InnerException;
                }

                return TokenCheck.Fail(TokenFailure.KeysUnavailable,
                    $"the signing keys could not be fetched from {_options.DiscoveryAddress}: {inner.GetType().Name}: {inner.Message}", Name);
            }
        }

        // A copy per check: the handler records refresh state on the parameters it is given.
        var result = await _handler.ValidateTokenAsync(token, _parameters.Clone()).ConfigureAwait(false);
        if (!result.IsValid)
        {
            var (failure, reason) = Describe(result.Exception);
            return TokenCheck.Fail(failure, reason, Name);
        }

        var valid = (JsonWebToken)result.SecurityToken;

        // The claim as stored, not converted: a number or an array is not a name (RFC 7519 StringOrURI).
        if (!valid.TryGetPayloadValue(_options.IdentityClaim, out object? claim) || claim is not string { Length: > 0 } name)
        {
            return TokenCheck.Fail(TokenFailure.NoIdentityClaim, $"the token has no text claim '{_options.IdentityClaim}' to name its identity", Name);
        }

        var expires = new DateTimeOffset(DateTime.SpecifyKind(valid.ValidTo, DateTimeKind.Utc));
        return new TokenCheck(new TokenIdentity(name, ReadGroups(valid), expires, this), TokenFailure.None, null, Name);
    }

    /// <summary>Parses a compact JWS without checking anything (the provider is chosen by its issuer, then everything is checked).</summary>
    internal static bool TryRead(string token, out JsonWebToken? jwt)
    {
        jwt = null;
        if (token.Length > MaxTokenBytes)
        {
            return false;
        }

        try
        {
            jwt = new JsonWebToken(token);
            return !jwt.IsEncrypted;
        }
        catch (Exception ex) when (ex is ArgumentException or SecurityTokenException or JsonException or FormatException)
        {
            return false;
        }
    }

    /// <summary>The groups claim: a JSON array of strings, or one space-separated string (as OAuth's <c>scope</c>).</summary>
    private IReadOnlyCollection<string> ReadGroups(JsonWebToken token)
    {
        // The claim as stored: the library would also turn one string into a one-element array.
        if (!token.TryGetPayloadValue(_options.GroupsClaim, out object? claim))
        {
            return [];
        }

        // Arrays are kept as JSON; only their string elements are groups.
        IEnumerable<string> groups = claim switch
        {
            string text => text.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            JsonElement { ValueKind: JsonValueKind.Array } array =>
                array.EnumerateArray().Where(e => e.ValueKind == JsonValueKind.String).Select(e => e.GetString()!).Where(g => g.Length > 0),
            _ => [],
        };
        return groups.Distinct(StringComparer.Ordinal).ToArray();
    }

    /// <summary>The precise reason, for the log. Exception messages are not used: they may quote the token.</summary>
    private static (TokenFailure, string) Describe(Exception? exception) => exception switch
    {
        SecurityTokenExpiredException e => (TokenFailure.Expired, $"the token expired at {Utc(e.Expires)}"),
        SecurityTokenNotYetValidException e => (TokenFailure.NotYetValid, $"the token is not valid before {Utc(e.NotBefore)}"),
        SecurityTokenNoExpirationException => (TokenFailure.NoExpiry, "the token has no expiry (exp)"),
        SecurityTokenInvalidLifetimeException => (TokenFailure.Invalid, "the token's lifetime is invalid (not-before after expiry)"),
        SecurityTokenInvalidAudienceException => (TokenFailure.WrongAudience, "the token is not for this gateway's audience"),
        SecurityTokenInvalidIssuerException => (TokenFailure.WrongIssuer, "the token's issuer is not the provider's"),
        SecurityTokenInvalidAlgorithmException => (TokenFailure.AlgorithmNotAllowed, "the token's algorithm is not on the provider's allow-list"),
        SecurityTokenSignatureKeyNotFoundException => (TokenFailure.UnknownKey, "no signing key of the provider matches the token (unknown key id)"),
        SecurityTokenInvalidSigningKeyException => (TokenFailure.BadSignature, "the token was signed with a key that is not accepted"),
        SecurityTokenInvalidSignatureException => (TokenFailure.BadSignature, "the token's signature does not verify with the provider's keys"),
        SecurityTokenMalformedException => (TokenFailure.Malformed, "the password is not a well-formed JWT"),
        null => (TokenFailure.Invalid, "refused by the token validator"),
        _ => (TokenFailure.Invalid, $"refused by the token validator ({exception.GetType().Name})"),
    };

    private static string Utc(DateTime time) =>
        DateTime.SpecifyKind(time, DateTimeKind.Utc).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>
    /// Reads the discovery document and its JWKS with the standard retriever, then insists that the document names the
    /// configured issuer (OIDC Discovery 1.0 section 4.3) and keeps only public RSA and EC keys.
    /// </summary>
    private sealed class PublicKeysOnlyRetriever(string issuer) : IConfigurationRetriever<OpenIdConnectConfiguration>
    {
        public async Task<OpenIdConnectConfiguration> GetConfigurationAsync(string address, IDocumentRetriever retriever, CancellationToken cancel)
        {
            var configuration = await OpenIdConnectConfigurationRetriever.GetAsync(address, retriever, cancel).ConfigureAwait(false);
            if (!string.Equals(configuration.Issuer, issuer, StringComparison.Ordinal))
            {
                throw new InvalidOperationException("the discovery document names another issuer than the configured one");
            }

            var keys = configuration.SigningKeys.Where(JwksKeySet.IsPublicAsymmetric).ToList();
            configuration.SigningKeys.Clear();
            foreach (var key in keys)
            {
                configuration.SigningKeys.Add(key);
            }

            return configuration;
        }
    }
}

/// <summary>
/// The configured identity providers. A token is checked by the providers whose issuer is the token's <c>iss</c>
/// (read unverified only to choose; the chosen provider verifies everything).
/// </summary>
public sealed class IdentityProviderSet
{
    public static readonly IdentityProviderSet Empty = new([]);

    public IdentityProviderSet(IEnumerable<JwtIdentityProvider> providers)
    {
        Providers = providers.ToArray();
    }

    public IReadOnlyList<JwtIdentityProvider> Providers { get; }

    public int Count => Providers.Count;

    public async Task<TokenCheck> ValidateAsync(string token, CancellationToken ct)
    {
        if (!JwtIdentityProvider.TryRead(token, out var jwt))
        {
            return TokenCheck.Fail(TokenFailure.Malformed, "the password is not a well-formed JWT", null);
        }

        TokenCheck? first = null;
        foreach (var provider in Providers)
        {
            if (!string.Equals(provider.Issuer, jwt!.Issuer, StringComparison.Ordinal))
            {
                continue;
            }

            var check = await provider.ValidateAsync(jwt, ct).ConfigureAwait(false);
            if (check.Succeeded)
            {
                return check;
            }

            first ??= check;
        }

        return first ?? TokenCheck.Fail(TokenFailure.UnknownIssuer, "no identity provider is configured for the token's issuer", null);
    }
}

/// <summary>Recognizes a password that is a JWT rather than a static secret.</summary>
public static class JwtFormat
{
    private const int StackLimit = 512;

    /// <summary>
    /// Whether the bytes are a compact JWS (RFC 7515 section 7.1): three base64url parts separated by dots, header and
    /// payload non-empty (the signature may be empty, as in an <c>alg: none</c> token, which must reach the validator to
    /// be refused there), and a header that decodes to a JSON object.
    /// </summary>
    public static bool LooksLikeJwt(ReadOnlySpan<byte> password)
    {
        int firstDot = password.IndexOf((byte)'.');
        if (firstDot <= 0)
        {
            return false;
        }

        var rest = password[(firstDot + 1)..];
        int secondDot = rest.IndexOf((byte)'.');
        if (secondDot <= 0)
        {
            return false;
        }

        var header = password[..firstDot];
        var payload = rest[..secondDot];
        var signature = rest[(secondDot + 1)..];
        if (!IsBase64Url(header) || !IsBase64Url(payload) || !IsBase64Url(signature))
        {
            return false;
        }

        int max = Base64Url.GetMaxDecodedLength(header.Length);
        byte[]? rented = null;
        Span<byte> decoded = max <= StackLimit ? stackalloc byte[StackLimit] : (rented = ArrayPool<byte>.Shared.Rent(max));
        try
        {
            if (Base64Url.DecodeFromUtf8(header, decoded, out _, out int written) != OperationStatus.Done)
            {
                return false;
            }

            var json = decoded[..written].TrimStart(" \t\r\n"u8);
            return !json.IsEmpty && json[0] == (byte)'{';
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    private static bool IsBase64Url(ReadOnlySpan<byte> part)
    {
        foreach (byte b in part)
        {
            if (!(char.IsAsciiLetterOrDigit((char)b) || b == '-' || b == '_'))
            {
                return false;
            }
        }

        return true;
    }
}
