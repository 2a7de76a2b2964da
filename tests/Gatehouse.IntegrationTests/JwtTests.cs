using System.Globalization;
using Gatehouse.IntegrationTests.Infrastructure;
using Gatehouse.TestSupport;
using Npgsql;

namespace Gatehouse.IntegrationTests;

/// <summary>
/// OIDC/JWT access tokens as the PostgreSQL password, end to end: real tokens signed with keys made here, presented
/// by psql and Npgsql as their password to a cleartext listener, checked by the gateway against a JWKS file, and the
/// policy binding chosen by the token's identity or groups. A token that expires mid-session ends the session.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class JwtTests(PostgresFixture fixture) : IAsyncLifetime, IDisposable
{
    private const string Issuer = "https://idp.gatehouse.test/";
    private const string TokenListener = "jwt";

    /// <summary>carol (and static alice) by name get everything; members of analysts read.</summary>
    private const string GroupPolicy = """
        roles:
          reader:
            allow: [read, transaction, session]
          everything:
            allow: all
        bindings:
          - identities: [alice, carol]
            connections: ["*"]
            role: everything
          - groups: [analysts]
            connections: ["*"]
            role: reader
        """;

    private readonly TestIssuer _idp = new(Issuer);
    private GatewayHost _gateway = null!;
    private string _jwksFile = null!;

    private PostgresServer Server => fixture.Server;

    private int TokenPort => _gateway.PortOf(TokenListener);

    public async Task InitializeAsync()
    {
        _jwksFile = Path.Combine(Path.GetTempPath(), $"gatehouse-jwks-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(_jwksFile, _idp.Jwks);

        // No clock skew, so a token's expiry is the session's end to the second (the default is 60 s).
        _gateway = GatewayHost.Start(Server, new GatewaySettings
        {
            Listeners = [new("pg"), new(TokenListener, PasswordMethod: "cleartext", AllowCleartextOnLoopback: true)],
            Policy = GroupPolicy,
            IdentityProviders = $"""
                  - name: test-idp
                    issuer: {Issuer}
                    audience: {_idp.Audience}
                    jwks_file: {_jwksFile}
                    clock_skew: 0s
                """,
        });
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        File.Delete(_jwksFile);
    }

    public void Dispose() => _idp.Dispose();

    private Task<ProcessResult> PsqlAsync(string token, string user, string script) =>
        Clients.PsqlAsync(TokenPort, token, script, user: user);

    /// <summary>No log line may quote a token, or even its signature.</summary>
    private void AssertNoTokenInLogs(params string[] tokens)
    {
        var log = _gateway.Logs.Dump();
        foreach (var token in tokens)
        {
            Assert.DoesNotContain(token, log, StringComparison.Ordinal);
            foreach (var part in token.Split('.').Where(p => p.Length > 8))
            {
                Assert.DoesNotContain(part, log, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task Psql_with_a_valid_token_as_its_password_connects_and_queries()
    {
        var token = _idp.Mint("carol");

        var result = await PsqlAsync(token, "carol", "SELECT 'in as ' || 'carol';");

        result.EnsureSuccess("psql");
        Assert.Equal("in as carol\n", result.Stdout);
        Assert.NotNull(await _gateway.Logs.WaitForAsync(l => l.EventId == 2021 && l.Message.Contains("carol authenticated by an access token from test-idp", StringComparison.Ordinal)));
        AssertNoTokenInLogs(token);
    }

    [Fact]
    public async Task Npgsql_with_an_es256_token_connects_and_the_server_sees_the_gateways_role()
    {
        var token = _idp.Mint("carol", credentials: _idp.EcKey.Credentials);
        await using var connection = new NpgsqlConnection(_gateway.ConnectionString(user: "carol", password: token, port: TokenPort));

        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT current_user", connection);

        Assert.Equal(Server.AdminUser, await command.ExecuteScalarAsync());
    }

    public enum BadToken
    {
        Expired,
        WrongAudience,
        WrongIssuer,
        AlgNone,
        KeyConfusion,
        UnknownKey,
    }

    private string Mint(BadToken bad)
    {
        var now = DateTime.UtcNow;
        switch (bad)
        {
            case BadToken.Expired:
                return _idp.Mint("carol", d => (d.NotBefore, d.Expires) = (now.AddMinutes(-10), now.AddMinutes(-1)));
            case BadToken.WrongAudience:
                return _idp.Mint("carol", d => d.Audience = "some-other-api");
            case BadToken.WrongIssuer:
                return _idp.Mint("carol", d => d.Issuer = "https://evil.gatehouse.test/");
            case BadToken.AlgNone:
                return _idp.MintUnsigned("carol");
            case BadToken.KeyConfusion:
                return _idp.MintKeyConfusion("carol");
            default:
            {
                using var rogue = TestKey.Rsa(_idp.RsaKey.Kid + "-rogue");
                return _idp.Mint("carol", credentials: rogue.Credentials);
            }
        }
    }

    [Theory]
    [InlineData(BadToken.Expired, "Expired")]
    [InlineData(BadToken.WrongAudience, "WrongAudience")]
    [InlineData(BadToken.WrongIssuer, "UnknownIssuer")]
    [InlineData(BadToken.AlgNone, "AlgorithmNotAllowed")]
    [InlineData(BadToken.KeyConfusion, "AlgorithmNotAllowed")]
    [InlineData(BadToken.UnknownKey, "UnknownKey")]
    public async Task Psql_with_a_bad_token_is_refused_as_a_failed_password_and_the_log_says_why(BadToken bad, string failure)
    {
        var token = Mint(bad);

        var result = await PsqlAsync(token, "carol", "SELECT 'must not run';");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("FATAL:  password authentication failed for user \"carol\"", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("must not run", result.Stdout, StringComparison.Ordinal);
        var line = await _gateway.Logs.WaitForAsync(l => l.EventId == 2020 && l.Message.Contains($", {failure})", StringComparison.Ordinal));
        Assert.True(line is not null, _gateway.Logs.Dump());
        Assert.NotNull(await _gateway.WaitForSessionEndAsync("AuthenticationFailed"));
        AssertNoTokenInLogs(token);
    }

    [Fact]
    public async Task Npgsql_with_a_bad_token_gets_28P01_like_any_wrong_password()
    {
        await using var connection = new NpgsqlConnection(_gateway.ConnectionString(user: "carol", password: Mint(BadToken.Expired), port: TokenPort));

        var error = await Assert.ThrowsAsync<PostgresException>(() => connection.OpenAsync());

        Assert.Equal(("28P01", "FATAL", "password authentication failed for user \"carol\""), (error.SqlState, error.InvariantSeverity, error.MessageText));
    }

    [Fact]
    public async Task A_token_for_another_identity_is_refused()
    {
        var token = _idp.Mint("carol");

        var result = await PsqlAsync(token, "dave", "SELECT 'must not run';");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("FATAL:  password authentication failed for user \"dave\"", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("the token is for another identity", result.Stderr, StringComparison.Ordinal);
        Assert.NotNull(await _gateway.Logs.WaitForAsync(l => l.EventId == 2020 && l.Message.Contains("the token is for another identity", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task The_tokens_groups_select_the_policy_binding()
    {
        var table = Direct.UniqueName("jwt");
        await Direct.ExecuteAsync(Server, $"CREATE TABLE {table} (id int); INSERT INTO {table} VALUES (1), (2);");
        try
        {
            // dave is bound by no name, only through the analysts group: the reader role.
            var analyst = _idp.Mint("dave", d => d.Claims!["groups"] = new[] { "analysts", "staff" });
            await using var connection = new NpgsqlConnection(_gateway.ConnectionString(user: "dave", password: analyst, port: TokenPort));
            await connection.OpenAsync();

            await using (var read = new NpgsqlCommand($"SELECT count(*) FROM {table}", connection))
            {
                Assert.Equal(2L, await read.ExecuteScalarAsync());
            }

            await using var write = new NpgsqlCommand($"DELETE FROM {table} WHERE id = 1", connection);
            var refused = await Assert.ThrowsAsync<PostgresException>(() => write.ExecuteNonQueryAsync());
            Assert.Equal("42501", refused.SqlState);
            Assert.Contains("role:reader", refused.MessageText, StringComparison.Ordinal);
            Assert.Equal(2L, await Direct.ScalarAsync<long>(Server, $"SELECT count(*) FROM {table}"));

            // The same name without the group has no binding at all.
            var outsider = _idp.Mint("dave", d => d.Claims!["groups"] = "staff contractors");
            await using var denied = new NpgsqlConnection(_gateway.ConnectionString(user: "dave", password: outsider, port: TokenPort));
            var error = await Assert.ThrowsAsync<PostgresException>(() => denied.OpenAsync());
            Assert.Equal("42501", error.SqlState);
            Assert.Equal("no policy binding gives identity \"dave\" a role on connection \"app\"", error.MessageText);
        }
        finally
        {
            await Direct.ExecuteAsync(Server, $"DROP TABLE IF EXISTS {table}");
        }
    }

    [Fact]
    public async Task Static_secrets_keep_working_next_to_tokens_and_a_scram_listener_takes_no_token()
    {
        var cleartext = await Clients.PsqlAsync(TokenPort, _gateway.AliceSecret, "SELECT 'static';");
        cleartext.EnsureSuccess("psql with alice's secret on the token listener");
        Assert.Equal("static\n", cleartext.Stdout);

        var scram = await Clients.PsqlAsync(_gateway.PortOf("pg"), _idp.Mint("carol"), "SELECT 'must not run';", user: "carol");
        Assert.Equal(2, scram.ExitCode);
        Assert.Contains("FATAL:  password authentication failed for user \"carol\"", scram.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_session_whose_token_expires_is_ended_by_the_gateway_and_psql_is_told_why()
    {
        var expires = DateTime.UtcNow.AddSeconds(4);
        var token = _idp.Mint("carol", d => d.Expires = expires);
        var expected = ExpiryText(expires);

        var result = await PsqlAsync(token, "carol", "SELECT 'before';\nSELECT pg_sleep(30);\nSELECT 'after';\n");

        Assert.Contains("before", result.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("after", result.Stdout, StringComparison.Ordinal);
        Assert.Contains($"FATAL:  the access token expired at {expected}; reconnect with a fresh token", result.Stderr, StringComparison.Ordinal);
        var end = await _gateway.WaitForSessionEndAsync("CredentialExpired");
        Assert.True(end is not null, _gateway.Logs.Dump());
        Assert.Contains($"the access token expired at {expected}", end.Message, StringComparison.Ordinal);
        Assert.Contains("identity=carol", end.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_session_whose_token_expires_is_ended_while_npgsql_waits_for_a_result_with_28000()
    {
        var expires = DateTime.UtcNow.AddSeconds(3);
        var token = _idp.Mint("carol", d => d.Expires = expires);
        await using var connection = new NpgsqlConnection(_gateway.ConnectionString(user: "carol", password: token, port: TokenPort));
        await connection.OpenAsync();
        var started = DateTime.UtcNow;

        await using var command = new NpgsqlCommand("SELECT pg_sleep(30)", connection);
        var error = await Assert.ThrowsAsync<PostgresException>(() => command.ExecuteNonQueryAsync());

        Assert.Equal(("28000", "FATAL"), (error.SqlState, error.InvariantSeverity));
        Assert.Equal($"the access token expired at {ExpiryText(expires)}; reconnect with a fresh token", error.MessageText);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(15), "the session outlived its token by far");
        Assert.Equal(System.Data.ConnectionState.Closed, connection.State);
        Assert.NotNull(await _gateway.WaitForSessionEndAsync("CredentialExpired"));
    }

    /// <summary>The expiry as the gateway words it: the token's exp, whole seconds, UTC.</summary>
    private static string ExpiryText(DateTime expires) =>
        DateTimeOffset.FromUnixTimeSeconds(new DateTimeOffset(expires).ToUnixTimeSeconds()).UtcDateTime
            .ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
