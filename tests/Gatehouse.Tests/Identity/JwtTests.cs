using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Gatehouse.Engine.Sessions;
using Gatehouse.Host.Config;
using Gatehouse.Policy.Identity;
using Gatehouse.Tests.Support;
using Gatehouse.TestSupport;
using Microsoft.IdentityModel.Tokens;

namespace Gatehouse.Tests.Identity;

/// <summary>
/// Access tokens as passwords: real tokens signed with keys generated here, checked by <see cref="JwtIdentityProvider"/>
/// (Microsoft.IdentityModel underneath). Every refusal is checked for its reason, so a token refused for the wrong
/// reason (an expired token that would also have failed its signature) does not pass unnoticed.
/// </summary>
public sealed class JwtTests : IDisposable
{
    private const string Issuer = "https://idp.test.invalid/";
    private readonly TestIssuer _idp = new(Issuer);

    public void Dispose() => _idp.Dispose();

    private JwtIdentityProvider Provider(Func<JwtProviderOptions, JwtProviderOptions>? change = null)
    {
        Assert.True(JwksKeySet.TryParse(_idp.Jwks, out var keys, out var error), error);
        var options = new JwtProviderOptions { Name = "test", Issuer = Issuer, Audience = _idp.Audience, Keys = keys };
        return new JwtIdentityProvider(change?.Invoke(options) ?? options);
    }

    private static async Task<TokenIdentity> AcceptedAsync(JwtIdentityProvider provider, string token)
    {
        var check = await provider.ValidateAsync(token, CancellationToken.None);
        Assert.True(check.Succeeded, $"refused: {check.Failure} {check.Reason}");
        return check.Identity!;
    }

    private static async Task<TokenCheck> RefusedAsync(JwtIdentityProvider provider, string token, TokenFailure expected)
    {
        var check = await provider.ValidateAsync(token, CancellationToken.None);
        Assert.False(check.Succeeded, "accepted a token that must be refused");
        Assert.True(expected == check.Failure, $"expected {expected}, got {check.Failure}: {check.Reason}");
        Assert.False(string.IsNullOrEmpty(check.Reason));
        return check;
    }

    // ---- Valid tokens -------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("RS256")]
    [InlineData("ES256")]
    public async Task A_valid_token_gives_its_identity_groups_and_expiry(string algorithm)
    {
        var key = algorithm == "RS256" ? _idp.RsaKey : _idp.EcKey;
        var expires = DateTime.UtcNow.AddMinutes(7);
        var token = _idp.Mint("carol", d =>
        {
            d.Expires = expires;
            d.Claims!["groups"] = new[] { "analysts", "oncall" };
        }, key.Credentials);

        var identity = await AcceptedAsync(Provider(), token);

        Assert.Equal("carol", identity.Name);
        Assert.Equal(["analysts", "oncall"], identity.Groups.Order(StringComparer.Ordinal));
        Assert.Equal(new DateTimeOffset(expires).ToUnixTimeSeconds(), identity.ExpiresAt.ToUnixTimeSeconds());
        Assert.Equal(identity.ExpiresAt + TimeSpan.FromSeconds(60), identity.HonouredUntil);
    }

    // ---- Refusals -----------------------------------------------------------------------------------------------

    public enum Bad
    {
        Expired,
        NotYetValid,
        WrongAudience,
        WrongIssuer,
        AlgNone,
        Hs256SignedWithTheRsaPublicKey,
        UnknownKid,
        KnownKidButAnotherKey,
        TamperedPayload,
        NoExpiry,
        NoSubject,
        NameNotText,
    }

    public static TheoryData<Bad, TokenFailure> Refusals => new()
    {
        { Bad.Expired, TokenFailure.Expired },
        { Bad.NotYetValid, TokenFailure.NotYetValid },
        { Bad.WrongAudience, TokenFailure.WrongAudience },
        { Bad.WrongIssuer, TokenFailure.WrongIssuer },
        { Bad.AlgNone, TokenFailure.AlgorithmNotAllowed },
        { Bad.Hs256SignedWithTheRsaPublicKey, TokenFailure.AlgorithmNotAllowed },
        { Bad.UnknownKid, TokenFailure.UnknownKey },
        { Bad.KnownKidButAnotherKey, TokenFailure.BadSignature },
        { Bad.TamperedPayload, TokenFailure.BadSignature },
        { Bad.NoExpiry, TokenFailure.NoExpiry },
        { Bad.NoSubject, TokenFailure.NoIdentityClaim },
        { Bad.NameNotText, TokenFailure.Malformed }, // the library refuses a registered claim of the wrong type outright
    };

    private string MintBad(Bad bad)
    {
        var now = DateTime.UtcNow;
        switch (bad)
        {
            case Bad.Expired:
                return _idp.Mint("carol", d => (d.NotBefore, d.Expires) = (now.AddMinutes(-20), now.AddMinutes(-5)));
            case Bad.NotYetValid:
                return _idp.Mint("carol", d => (d.NotBefore, d.Expires) = (now.AddMinutes(5), now.AddMinutes(20)));
            case Bad.WrongAudience:
                return _idp.Mint("carol", d => d.Audience = "another-service");
            case Bad.WrongIssuer:
                return _idp.Mint("carol", d => d.Issuer = "https://evil.test.invalid/");
            case Bad.AlgNone:
                return _idp.MintUnsigned("carol");
            case Bad.Hs256SignedWithTheRsaPublicKey:
                return _idp.MintKeyConfusion("carol");
            case Bad.UnknownKid:
            {
                using var rogue = TestKey.Rsa("rogue");
                return _idp.Mint("carol", credentials: rogue.Credentials);
            }

            case Bad.KnownKidButAnotherKey:
            {
                using var rogue = TestKey.Rsa(_idp.RsaKey.Kid);
                return _idp.Mint("carol", credentials: rogue.Credentials);
            }

            case Bad.TamperedPayload:
            {
                var parts = _idp.Mint("carol").Split('.');
                var payload = Encoding.UTF8.GetString(Base64UrlEncoder.DecodeBytes(parts[1])).Replace("\"carol\"", "\"admin\"", StringComparison.Ordinal);
                return $"{parts[0]}.{Base64UrlEncoder.Encode(payload)}.{parts[2]}";
            }

            case Bad.NoExpiry:
                return _idp.Mint("carol", d => d.Expires = null);
            case Bad.NoSubject:
                return _idp.Mint(null);
            default:
                return _idp.Mint(null, d => d.Claims!["sub"] = new[] { "carol", "dave" });
        }
    }

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task A_bad_token_is_refused_for_the_right_reason(Bad bad, TokenFailure failure)
    {
        var token = MintBad(bad);

        await RefusedAsync(Provider(), token, failure);
    }

    [Fact]
    public async Task A_token_from_an_issuer_no_provider_has_is_refused_by_the_set()
    {
        var set = new IdentityProviderSet([Provider()]);

        var check = await set.ValidateAsync(_idp.Mint("carol", d => d.Issuer = "https://evil.test.invalid/"), CancellationToken.None);

        Assert.Equal(TokenFailure.UnknownIssuer, check.Failure);
        Assert.True((await set.ValidateAsync(_idp.Mint("carol"), CancellationToken.None)).Succeeded);
    }

    [Fact]
    public async Task The_set_tries_every_provider_of_the_issuer_so_two_audiences_can_share_one_issuer()
    {
        var set = new IdentityProviderSet([Provider(o => o with { Name = "a", Audience = "other" }), Provider(o => o with { Name = "b" })]);

        var check = await set.ValidateAsync(_idp.Mint("carol"), CancellationToken.None);

        Assert.True(check.Succeeded, check.Reason);
        Assert.Equal("b", check.ProviderName);
    }

    [Fact]
    public async Task An_algorithm_not_on_the_allow_list_is_refused_even_when_the_signature_is_good()
    {
        var esOnly = Provider(o => o with { Algorithms = ["ES256"] });

        await RefusedAsync(esOnly, _idp.Mint("carol"), TokenFailure.AlgorithmNotAllowed);
        await AcceptedAsync(esOnly, _idp.Mint("carol", credentials: _idp.EcKey.Credentials));
    }

    [Theory]
    [InlineData("none")]
    [InlineData("HS256")]
    [InlineData("hs512")]
    [InlineData("RS1")]
    public void A_provider_refuses_an_algorithm_that_may_never_be_allowed(string algorithm)
    {
        Assert.NotNull(JwtProviderOptions.CheckAlgorithm(algorithm));
        Assert.Throws<ArgumentException>(() => Provider(o => o with { Algorithms = ["RS256", algorithm] }));
    }

    [Fact]
    public void A_jwks_with_a_symmetric_or_private_key_is_refused()
    {
        var oct = """{"keys":[{"kty":"oct","kid":"k","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}]}""";
        Assert.False(JwksKeySet.TryParse(oct, out _, out var error));
        Assert.Contains("never symmetric", error, StringComparison.Ordinal);

        var withPrivate = TestKey.Jwks(_idp.RsaKey).Replace("\"use\":\"sig\"", "\"use\":\"sig\",\"d\":\"AQAB\"", StringComparison.Ordinal);
        Assert.False(JwksKeySet.TryParse(withPrivate, out _, out error));
        Assert.Contains("private key", error, StringComparison.Ordinal);

        Assert.False(JwksKeySet.TryParse("not json", out _, out error));
        Assert.False(JwksKeySet.TryParse("""{"keys":[]}""", out _, out _));
        Assert.True(JwksKeySet.TryParse(_idp.Jwks, out var keys, out _));
        Assert.Equal(2, keys!.Count);
    }

    // ---- Clock skew -----------------------------------------------------------------------------------------------

    /// <summary>Margins of 30 s either side of the bound: the test's own run time cannot move a case across it.</summary>
    [Theory]
    [InlineData(60, -30, true)]
    [InlineData(60, -90, false)]
    [InlineData(0, -30, false)]
    [InlineData(300, -270, true)]
    [InlineData(300, -330, false)]
    public async Task Expiry_is_checked_with_the_configured_skew(int skewSeconds, int expiresInSeconds, bool accepted)
    {
        var provider = Provider(o => o with { ClockSkew = TimeSpan.FromSeconds(skewSeconds) });
        var now = DateTime.UtcNow;
        var token = _idp.Mint("carol", d => (d.NotBefore, d.Expires) = (now.AddHours(-1), now.AddSeconds(expiresInSeconds)));

        var check = await provider.ValidateAsync(token, CancellationToken.None);

        Assert.Equal(accepted, check.Succeeded);
        Assert.Equal(accepted ? TokenFailure.None : TokenFailure.Expired, check.Failure);
    }

    [Theory]
    [InlineData(60, 30, true)]
    [InlineData(60, 90, false)]
    [InlineData(0, 30, false)]
    public async Task Not_before_is_checked_with_the_configured_skew(int skewSeconds, int validInSeconds, bool accepted)
    {
        var provider = Provider(o => o with { ClockSkew = TimeSpan.FromSeconds(skewSeconds) });
        var now = DateTime.UtcNow;
        var token = _idp.Mint("carol", d => (d.NotBefore, d.Expires) = (now.AddSeconds(validInSeconds), now.AddHours(1)));

        var check = await provider.ValidateAsync(token, CancellationToken.None);

        Assert.Equal(accepted, check.Succeeded);
        Assert.Equal(accepted ? TokenFailure.None : TokenFailure.NotYetValid, check.Failure);
    }

    [Fact]
    public void A_skew_over_five_minutes_is_refused()
    {
        Assert.Throws<ArgumentException>(() => Provider(o => o with { ClockSkew = TimeSpan.FromMinutes(5) + TimeSpan.FromSeconds(1) }));
        Assert.Throws<ArgumentException>(() => Provider(o => o with { ClockSkew = TimeSpan.FromSeconds(-1) }));
    }

    // ---- Claims ---------------------------------------------------------------------------------------------------

    public static TheoryData<string, object?, string[]> GroupClaims => new()
    {
        { "groups", new[] { "dba", "oncall", "dba" }, new[] { "dba", "oncall" } },
        { "groups", "dba  oncall readers", new[] { "dba", "oncall", "readers" } },
        { "groups", Array.Empty<string>(), Array.Empty<string>() },
        { "groups", null, Array.Empty<string>() },
        { "roles", new[] { "dba" }, new[] { "dba" } },
        { "roles", "dba oncall", new[] { "dba", "oncall" } },
    };

    [Theory]
    [MemberData(nameof(GroupClaims))]
    public async Task Groups_come_from_an_array_or_a_space_separated_string_in_the_configured_claim(string claim, object? value, string[] expected)
    {
        var provider = Provider(o => o with { GroupsClaim = claim });
        var token = _idp.Mint("carol", d =>
        {
            if (value is not null)
            {
                d.Claims![claim] = value;
            }

            d.Claims!["unrelated"] = new[] { "not-a-group" };
        });

        var identity = await AcceptedAsync(provider, token);

        Assert.Equal(expected.Order(StringComparer.Ordinal), identity.Groups.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task The_identity_comes_from_the_configured_claim()
    {
        var provider = Provider(o => o with { IdentityClaim = "preferred_username" });

        var identity = await AcceptedAsync(provider, _idp.Mint("0f5c-uuid", d => d.Claims!["preferred_username"] = "carol"));
        Assert.Equal("carol", identity.Name);

        await RefusedAsync(provider, _idp.Mint("0f5c-uuid"), TokenFailure.NoIdentityClaim);
        await RefusedAsync(provider, _idp.Mint("0f5c-uuid", d => d.Claims!["preferred_username"] = 42), TokenFailure.NoIdentityClaim);
        await RefusedAsync(provider, _idp.Mint("0f5c-uuid", d => d.Claims!["preferred_username"] = ""), TokenFailure.NoIdentityClaim);
    }

    // ---- Recognizing a token among passwords ----------------------------------------------------------------------

    [Theory]
    [InlineData("hunter2", false)]
    [InlineData("a.b.c", false)] // dots, but the header is not JSON
    [InlineData("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", true)] // alg none: must reach the validator to be refused
    [InlineData("eyJhbGciOiJub25lIn0..sig", false)]
    [InlineData(".eyJzdWIiOiJ4In0.sig", false)]
    [InlineData("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.sig.extra", false)]
    [InlineData("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.si+g", false)]
    [InlineData("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.sig", true)]
    public void A_password_is_taken_for_a_jwt_only_when_it_is_shaped_as_one(string password, bool expected)
    {
        Assert.Equal(expected, JwtFormat.LooksLikeJwt(Encoding.UTF8.GetBytes(password)));
    }

    [Fact]
    public void Real_tokens_are_recognized()
    {
        Assert.True(JwtFormat.LooksLikeJwt(Encoding.ASCII.GetBytes(_idp.Mint("carol"))));
        Assert.True(JwtFormat.LooksLikeJwt(Encoding.ASCII.GetBytes(_idp.Mint("carol", credentials: _idp.EcKey.Credentials))));
        Assert.True(JwtFormat.LooksLikeJwt(Encoding.ASCII.GetBytes(_idp.MintUnsigned("carol"))));
    }

    // ---- Discovery ------------------------------------------------------------------------------------------------

    [Fact]
    public async Task Discovery_fetches_the_keys_once_and_again_only_when_a_new_key_id_appears()
    {
        await using var server = new DiscoveryServer();
        using var idp = new TestIssuer(server.Issuer);
        using var rotated = TestKey.Rsa("rotated");
        server.Jwks = TestKey.Jwks(idp.RsaKey);
        var provider = new JwtIdentityProvider(new JwtProviderOptions { Name = "oidc", Issuer = server.Issuer, Audience = idp.Audience, Discovery = true });

        await AcceptedAsync(provider, idp.Mint("carol"));
        await AcceptedAsync(provider, idp.Mint("dave"));
        Assert.Equal((1, 1), (server.DocumentRequests, server.JwksRequests));

        // The issuer rotates: the new key id is unknown, so the keys are fetched again, once, and the token passes.
        server.Jwks = TestKey.Jwks(idp.RsaKey, rotated);
        await AcceptedAsync(provider, idp.Mint("carol", credentials: rotated.Credentials));
        Assert.Equal(2, server.JwksRequests);
        await AcceptedAsync(provider, idp.Mint("dave", credentials: rotated.Credentials));
        Assert.Equal(2, server.JwksRequests);

        // Another unknown key id right after: no new fetch (at most one per refresh interval), and the token is refused.
        using var rogue = TestKey.Rsa("rogue");
        await RefusedAsync(provider, idp.Mint("carol", credentials: rogue.Credentials), TokenFailure.UnknownKey);
        Assert.Equal(2, server.JwksRequests);
    }

    [Fact]
    public async Task Discovery_refreshes_for_an_unknown_key_id_again_once_the_interval_has_passed()
    {
        await using var server = new DiscoveryServer();
        using var idp = new TestIssuer(server.Issuer);
        using var later = TestKey.Rsa("later");
        server.Jwks = TestKey.Jwks(idp.RsaKey);
        var options = new JwtProviderOptions { Name = "oidc", Issuer = server.Issuer, Audience = idp.Audience, Discovery = true };
        var provider = new JwtIdentityProvider(options, unknownKeyRefreshInterval: TimeSpan.FromSeconds(1));

        await AcceptedAsync(provider, idp.Mint("carol"));
        await RefusedAsync(provider, idp.Mint("carol", credentials: later.Credentials), TokenFailure.UnknownKey);
        Assert.Equal(2, server.JwksRequests);

        server.Jwks = TestKey.Jwks(idp.RsaKey, later);
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        await AcceptedAsync(provider, idp.Mint("carol", credentials: later.Credentials));
        Assert.Equal(3, server.JwksRequests);
    }

    [Fact]
    public async Task Discovery_refuses_a_document_for_another_issuer_and_symmetric_keys_it_serves()
    {
        await using var server = new DiscoveryServer();
        using var idp = new TestIssuer(server.Issuer);
        server.Jwks = TestKey.Jwks(idp.RsaKey);
        server.DocumentIssuer = "https://someone-else.test.invalid";
        var provider = new JwtIdentityProvider(new JwtProviderOptions { Name = "oidc", Issuer = server.Issuer, Audience = idp.Audience, Discovery = true });
        await RefusedAsync(provider, idp.Mint("carol"), TokenFailure.KeysUnavailable);

        await using var server2 = new DiscoveryServer();
        using var idp2 = new TestIssuer(server2.Issuer);
        var hmac = new SymmetricSecurityKey(idp2.RsaKey.PublicKeyPemBytes) { KeyId = "hmac" };
        server2.Jwks = $$"""{"keys":[{"kty":"oct","kid":"hmac","k":"{{Base64UrlEncoder.Encode(idp2.RsaKey.PublicKeyPemBytes)}}"}, {{JsonSerializer.Serialize(idp2.RsaKey.Jwk)}}]}""";
        var provider2 = new JwtIdentityProvider(new JwtProviderOptions
        {
            Name = "oidc", Issuer = server2.Issuer, Audience = idp2.Audience, Discovery = true, Algorithms = ["RS256"],
        });
        await AcceptedAsync(provider2, idp2.Mint("carol"));
        var forged = idp2.Mint("carol", credentials: new SigningCredentials(hmac, SecurityAlgorithms.HmacSha256));
        await RefusedAsync(provider2, forged, TokenFailure.AlgorithmNotAllowed);
    }

    [Fact]
    public async Task An_unreachable_issuer_refuses_tokens_with_the_reason_in_the_log_only()
    {
        int port = FreePort();
        var issuer = $"http://127.0.0.1:{port}";
        using var idp = new TestIssuer(issuer);
        var provider = new JwtIdentityProvider(new JwtProviderOptions { Name = "oidc", Issuer = issuer, Audience = idp.Audience, Discovery = true });

        var check = await RefusedAsync(provider, idp.Mint("carol"), TokenFailure.KeysUnavailable);

        Assert.Contains("could not be fetched", check.Reason, StringComparison.Ordinal);
    }

    // ---- Session expiry (engine) ----------------------------------------------------------------------------------

    [Fact]
    public async Task The_heartbeat_ends_a_session_once_its_token_and_the_skew_have_passed()
    {
        var start = new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero);
        var time = new ManualTime(start);
        using var registry = new SessionRegistry(time);
        using var session = TestSessions.Create();
        session.Advance(SessionStage.Relaying);
        session.SetCredentialExpiry(start.AddSeconds(10), grace: TimeSpan.FromSeconds(5));
        registry.Add(session);

        time.Now = start.AddSeconds(15);
        registry.OnHeartbeat();
        Assert.Equal(SessionEndReason.None, session.EndReason);

        time.Now = start.AddSeconds(16);
        registry.OnHeartbeat();
        Assert.Equal(SessionEndReason.CredentialExpired, session.EndReason);
        Assert.Equal(PeerSide.Client, session.EndSide);
        Assert.Equal("the access token expired at 2030-01-02T03:04:15Z", session.EndDetail);
        Assert.Equal(start.AddSeconds(10), session.CredentialExpiresAt);
        var aborted = new TaskCompletionSource();
        using var registration = session.Aborted.Register(() => aborted.TrySetResult());
        await aborted.Task.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void A_session_without_a_token_never_expires()
    {
        var time = new ManualTime(DateTimeOffset.UtcNow);
        using var registry = new SessionRegistry(time);
        using var session = TestSessions.Create();
        session.Advance(SessionStage.Relaying);
        registry.Add(session);

        time.Now = DateTimeOffset.MaxValue.AddDays(-1);
        registry.OnHeartbeat();

        Assert.Null(session.CredentialExpiresAt);
        Assert.Equal(SessionEndReason.None, session.EndReason);
    }

    // ---- Config -----------------------------------------------------------------------------------------------------

    private string ConfigYaml(string jwksFile) => $$"""
        listeners:
          - name: pg
            address: 127.0.0.1:6432
            password_method: cleartext
            allow_cleartext_on_loopback: true
        connections:
          - name: demo
            host: db.internal
            database: app
            user: gatehouse
        identity_providers:
          - name: corp
            issuer: {{Issuer}}
            audience: gatehouse
            jwks_file: {{jwksFile}}
            algorithms: [RS256, ES256]
            clock_skew: 30s
            identity_claim: preferred_username
            groups_claim: roles
            connections: [demo]
          - name: cloud
            issuer: https://login.example.org/tenant
            audience: api://gatehouse
            discovery: true
            jwks_refresh: 30m
        policy: unrestricted
        """;

    [Fact]
    public void A_config_with_identity_providers_loads_them_with_their_settings_and_defaults()
    {
        var directory = Directory.CreateTempSubdirectory("gatehouse-jwks-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(directory, "jwks.json"), _idp.Jwks);
            var config = ConfigLoader.Load(ConfigYaml("jwks.json"), "gatehouse.yaml", directory);

            Assert.Equal(2, config.IdentityProviders.Count);
            var corp = config.IdentityProviders.Providers[0].Options;
            Assert.Equal(("corp", Issuer, "gatehouse", false, 2), (corp.Name, corp.Issuer, corp.Audience, corp.Discovery, corp.Keys!.Count));
            Assert.Equal(["RS256", "ES256"], corp.Algorithms);
            Assert.Equal((TimeSpan.FromSeconds(30), "preferred_username", "roles"), (corp.ClockSkew, corp.IdentityClaim, corp.GroupsClaim));
            Assert.True(config.IdentityProviders.Providers[0].MayUse("demo"));
            Assert.False(config.IdentityProviders.Providers[0].MayUse("other"));

            var cloud = config.IdentityProviders.Providers[1].Options;
            Assert.True(cloud.Discovery);
            Assert.Null(cloud.Keys);
            Assert.Equal("https://login.example.org/tenant/.well-known/openid-configuration", cloud.DiscoveryAddress);
            Assert.Equal(TimeSpan.FromMinutes(30), cloud.JwksRefresh);
            Assert.Equal(JwtProviderOptions.DefaultAlgorithms, cloud.Algorithms);
            Assert.Equal((TimeSpan.FromSeconds(60), "sub", "groups"), (cloud.ClockSkew, cloud.IdentityClaim, cloud.GroupsClaim));
            Assert.True(config.IdentityProviders.Providers[1].MayUse("anything"));
            Assert.Empty(config.Warnings);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>Each case: what is broken, the edit, the message, and the text of the line the error must point at.</summary>
    public static TheoryData<string, string, string, string, string> BrokenProviders => new()
    {
        { "alg none", "algorithms: [RS256, ES256]", "algorithms: [RS256, none]", "'none' is never accepted", "algorithms: [RS256, none]" },
        { "HS256", "algorithms: [RS256, ES256]", "algorithms: [HS256]", "key confusion", "algorithms: [HS256]" },
        { "an unknown algorithm", "algorithms: [RS256, ES256]", "algorithms: [RS257]", "unknown algorithm 'RS257'", "algorithms: [RS257]" },
        { "no algorithm", "algorithms: [RS256, ES256]", "algorithms: []", "at least one algorithm", "algorithms: []" },
        { "both key sources", "jwks_file: jwks.json", "jwks_file: jwks.json\n    discovery: true", "not both", "    discovery: true" },
        { "no key source", "    jwks_file: jwks.json\n", "", "needs its signing keys", "- name: corp" },
        { "no issuer", $"    issuer: {Issuer}\n", "", "needs 'issuer'", "- name: corp" },
        { "no audience", "    audience: gatehouse\n", "", "needs 'audience'", "- name: corp" },
        { "a skew over 5 minutes", "clock_skew: 30s", "clock_skew: 6m", "at most 5m", "clock_skew: 6m" },
        { "a refresh under 5 minutes", "jwks_refresh: 30m", "jwks_refresh: 1m", "from 5m to 1d", "jwks_refresh: 1m" },
        { "a refresh without discovery", "clock_skew: 30s", "clock_skew: 30s\n    jwks_refresh: 1h", "only applies with discovery", "jwks_refresh: 1h" },
        { "discovery over plain http", "issuer: https://login.example.org/tenant", "issuer: http://login.example.org/tenant", "must use https", "issuer: http://login" },
        { "discovery of a non-address", "issuer: https://login.example.org/tenant", "issuer: login.example.org", "https address", "issuer: login.example.org" },
        { "an undefined connection", "connections: [demo]\n  - name: cloud", "connections: [dmeo]\n  - name: cloud", "'dmeo', which is not defined", "connections: [dmeo]" },
        { "a missing JWKS file", "jwks_file: jwks.json", "jwks_file: nope.json", "cannot read the JWKS file", "jwks_file: nope.json" },
        { "a JWKS with a symmetric key", "jwks_file: jwks.json", "jwks_file: oct.json", "never symmetric", "jwks_file: oct.json" },
        { "a JWKS with a private key", "jwks_file: jwks.json", "jwks_file: private.json", "holds a private key", "jwks_file: private.json" },
        { "a typo in a key", "groups_claim: roles", "group_claim: roles", "unknown key 'group_claim'", "group_claim: roles" },
        { "a name used twice", "name: cloud", "name: corp", "defined twice", "- name: corp\n    issuer: https://login.example.org/tenant" },
    };

    [Theory]
    [MemberData(nameof(BrokenProviders))]
    public void A_broken_identity_provider_is_refused_with_the_position_of_the_problem(string name, string find, string replace, string message, string lineOf)
    {
        var directory = Directory.CreateTempSubdirectory("gatehouse-jwks-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(directory, "jwks.json"), _idp.Jwks);
            File.WriteAllText(Path.Combine(directory, "oct.json"), """{"keys":[{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}]}""");
            File.WriteAllText(Path.Combine(directory, "private.json"),
                TestKey.Jwks(_idp.RsaKey).Replace("\"use\":\"sig\"", "\"use\":\"sig\",\"d\":\"AQAB\"", StringComparison.Ordinal));
            var valid = ConfigYaml("jwks.json");
            var text = valid.Replace(find, replace, StringComparison.Ordinal);
            Assert.NotEqual(valid, text);

            var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Load(text, "gatehouse.yaml", directory));

            var error = ex.Errors.FirstOrDefault(e => e.Message.Contains(message, StringComparison.Ordinal));
            Assert.True(error is not null, $"{name}: no error with '{message}' in: {ex.Message}");
            int at = text.IndexOf(lineOf, StringComparison.Ordinal);
            Assert.True(at >= 0, $"{name}: '{lineOf}' is not in the config");
            int expectedLine = text[..at].Count(c => c == '\n') + 1 + (lineOf.StartsWith('\n') ? 1 : 0);
            Assert.True(expectedLine == error.Line, $"{name}: expected line {expectedLine}, got {error}");
            Assert.True(error.Column > 0);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void Identity_providers_without_a_cleartext_listener_are_a_warning()
    {
        var directory = Directory.CreateTempSubdirectory("gatehouse-jwks-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(directory, "jwks.json"), _idp.Jwks);
            var text = ConfigYaml("jwks.json").Replace("password_method: cleartext", "password_method: scram", StringComparison.Ordinal);

            var config = ConfigLoader.Load(text, "gatehouse.yaml", directory);

            Assert.Contains(config.Warnings, w => w.Message.Contains("no listener has password_method: cleartext", StringComparison.Ordinal));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    // ---- Helpers --------------------------------------------------------------------------------------------------

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    private sealed class ManualTime(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;

        public override DateTimeOffset GetUtcNow() => Now;
    }

    /// <summary>An OIDC issuer on loopback: the discovery document and a JWKS that a test can rotate, with request counts.</summary>
    private sealed class DiscoveryServer : IAsyncDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly Task _loop;
        private int _documentRequests;
        private int _jwksRequests;

        public DiscoveryServer()
        {
            int port = FreePort();
            Issuer = $"http://127.0.0.1:{port}";
            DocumentIssuer = Issuer;
            _listener.Prefixes.Add($"{Issuer}/");
            _listener.Start();
            _loop = ServeAsync();
        }

        public string Issuer { get; }

        public string DocumentIssuer { get; set; }

        public volatile string Jwks = """{"keys":[]}""";

        public int DocumentRequests => Volatile.Read(ref _documentRequests);

        public int JwksRequests => Volatile.Read(ref _jwksRequests);

        private async Task ServeAsync()
        {
            while (true)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync();
                }
                catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                {
                    return;
                }

                string body;
                switch (context.Request.Url!.AbsolutePath)
                {
                    case "/.well-known/openid-configuration":
                        Interlocked.Increment(ref _documentRequests);
                        body = JsonSerializer.Serialize(new Dictionary<string, string> { ["issuer"] = DocumentIssuer, ["jwks_uri"] = $"{Issuer}/jwks" });
                        break;
                    case "/jwks":
                        Interlocked.Increment(ref _jwksRequests);
                        body = Jwks;
                        break;
                    default:
                        context.Response.StatusCode = 404;
                        body = "{}";
                        break;
                }

                var bytes = Encoding.UTF8.GetBytes(body);
                context.Response.ContentType = "application/json";
                context.Response.ContentLength64 = bytes.Length;
                await context.Response.OutputStream.WriteAsync(bytes);
                context.Response.Close();
            }
        }

        public async ValueTask DisposeAsync()
        {
            _listener.Stop();
            _listener.Close();
            await _loop;
        }
    }
}
