using Gatehouse.IntegrationTests.Infrastructure;
using Npgsql;

namespace Gatehouse.IntegrationTests;

/// <summary>
/// Authentication (the identity's secret), authorization (the identity's connections) and the startup parameters
/// the gateway refuses, seen from real clients.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class AuthTests(PostgresFixture fixture) : IAsyncLifetime
{
    private GatewayHost _gateway = null!;

    public Task InitializeAsync()
    {
        _gateway = GatewayHost.Start(fixture.Server, new GatewaySettings
        {
            Listeners =
            [
                new("pg"),
                new("clear", PasswordMethod: "cleartext"),
                new("clear_loopback", PasswordMethod: "cleartext", AllowCleartextOnLoopback: true),
            ],
        });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    public enum Attempt
    {
        WrongSecret,
        UnknownIdentity,
        IdentityWithoutTheConnection,
        UnknownConnection,
        OptionsWithARole,
    }

    private async Task<PostgresException> RefusedAsync(Attempt attempt, SslMode sslMode = SslMode.Disable)
    {
        var connectionString = attempt switch
        {
            Attempt.WrongSecret => _gateway.ConnectionString(password: "not-the-secret", sslMode: sslMode),
            Attempt.UnknownIdentity => _gateway.ConnectionString(user: "mallory", password: "not-the-secret", sslMode: sslMode),
            Attempt.IdentityWithoutTheConnection => _gateway.ConnectionString(user: GatewayHost.Bob, sslMode: sslMode),
            Attempt.UnknownConnection => _gateway.ConnectionString(database: "nope", sslMode: sslMode),
            _ => _gateway.ConnectionString(sslMode: sslMode, configure: b => b.Options = "-c role=x"),
        };
        await using var connection = new NpgsqlConnection(connectionString);
        return await Assert.ThrowsAsync<PostgresException>(() => connection.OpenAsync());
    }

    [Theory]
    [InlineData(Attempt.WrongSecret, "28P01", "password authentication failed for user \"alice\"")]
    [InlineData(Attempt.UnknownIdentity, "28P01", "password authentication failed for user \"mallory\"")]
    [InlineData(Attempt.IdentityWithoutTheConnection, "28000", "identity \"bob\" may not use connection \"app\"")]
    [InlineData(Attempt.UnknownConnection, "3D000", "connection \"nope\" is not configured on this gateway")]
    [InlineData(Attempt.OptionsWithARole, "42501", "the startup parameter \"options\" is not allowed through the gateway")]
    public async Task Npgsql_login_is_refused_with_the_expected_sqlstate(Attempt attempt, string sqlState, string message)
    {
        var error = await RefusedAsync(attempt);

        Assert.Equal(sqlState, error.SqlState);
        Assert.Equal(message, error.MessageText);
        Assert.Equal("FATAL", error.InvariantSeverity);
    }

    [Theory]
    [InlineData(SslMode.Disable)]
    [InlineData(SslMode.Require)]
    public async Task An_unknown_identity_gets_the_same_error_as_a_wrong_secret(SslMode sslMode)
    {
        var wrongSecret = await RefusedAsync(Attempt.WrongSecret, sslMode);
        var unknown = await RefusedAsync(Attempt.UnknownIdentity, sslMode);

        Assert.Equal(
            (wrongSecret.SqlState, wrongSecret.InvariantSeverity, wrongSecret.MessageText.Replace("alice", "mallory", StringComparison.Ordinal), wrongSecret.Detail, wrongSecret.Hint),
            (unknown.SqlState, unknown.InvariantSeverity, unknown.MessageText, unknown.Detail, unknown.Hint));
    }

    [Theory]
    [InlineData("pg", "alice")]
    [InlineData("pg", "mallory")]
    [InlineData("clear_loopback", "alice")]
    [InlineData("clear_loopback", "mallory")]
    public async Task Psql_login_with_a_bad_secret_or_unknown_identity_is_refused_as_a_failed_password(string listener, string user)
    {
        var result = await Clients.PsqlAsync(_gateway.PortOf(listener), "not-the-secret", "SELECT 'must not run';", user: user);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains($"FATAL:  password authentication failed for user \"{user}\"", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Psql_login_of_an_identity_without_the_connection_is_refused()
    {
        var result = await Clients.PsqlAsync(_gateway.Port, _gateway.BobSecret, "SELECT 'must not run';", user: GatewayHost.Bob);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("FATAL:  identity \"bob\" may not use connection \"app\"", result.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("options", "-c role=x")]
    [InlineData("role", "x")]
    [InlineData("session_authorization", "x")]
    [InlineData("replication", "database")]
    [InlineData("default_transaction_read_only", "off")]
    public async Task A_forbidden_startup_parameter_is_refused_with_42501(string name, string value)
    {
        await using var raw = await RawPgConnection.ConnectAsync(_gateway.Port);

        await raw.SendAsync(PgFrames.Startup(("user", GatewayHost.Alice), ("database", GatewayHost.AppConnection), (name, value)));

        var messages = await raw.ReadUntilClosedAsync();
        var error = Assert.Single(messages);
        Assert.Equal('E', error.Type);
        Assert.Equal("42501", error.SqlState);

        // A refused setting is an authorization decision, and is logged as one.
        Assert.NotNull(await _gateway.WaitForSessionEndAsync("AuthorizationFailed"));
    }

    [Theory]
    [InlineData("clear", "require")]
    [InlineData("clear_loopback", "disable")]
    [InlineData("clear_loopback", "require")]
    public async Task A_cleartext_listener_accepts_the_secret_over_tls_or_from_loopback_when_allowed(string listener, string sslMode)
    {
        var result = await Clients.PsqlAsync(_gateway.PortOf(listener), _gateway.AliceSecret, "SELECT 'in';", sslMode: sslMode);

        result.EnsureSuccess("psql");
        Assert.Equal("in\n", result.Stdout);
    }

    [Fact]
    public async Task A_cleartext_listener_refuses_a_plaintext_loopback_client_unless_allowed()
    {
        var result = await Clients.PsqlAsync(_gateway.PortOf("clear"), _gateway.AliceSecret, "SELECT 'must not run';", sslMode: "disable");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("FATAL:  this gateway accepts secrets only over TLS", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_cleartext_listener_refuses_a_wrong_secret_with_28P01()
    {
        await using var connection = new NpgsqlConnection(_gateway.ConnectionString(password: "not-the-secret", port: _gateway.PortOf("clear_loopback")));

        var error = await Assert.ThrowsAsync<PostgresException>(() => connection.OpenAsync());

        Assert.Equal(PostgresErrorCodes.InvalidPassword, error.SqlState);
    }
}
