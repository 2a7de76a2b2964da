using System.Security.Cryptography;
using Gatehouse.Host;
using Gatehouse.Host.Config;
using Gatehouse.IntegrationTests.Infrastructure;
using Gatehouse.Policy.Identity;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Gatehouse.IntegrationTests;

/// <summary>
/// The gateway logs into the real server with each method the server may ask for (SCRAM-SHA-256, md5,
/// cleartext), with the password from the config, an environment variable or a file; and a wrong upstream
/// password surfaces as 08004 without the upstream's text.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class UpstreamAuthTests(PostgresFixture fixture) : IAsyncLifetime
{
    // xunit makes an instance per test: each gets its own roles.
    private readonly string _suffix = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
    private readonly string _password = "up-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
    private string _hbaBackup = null!;
    private string _directory = null!;

    private PostgresServer Server => fixture.Server;

    private string ScramRole => "gh_up_scram_" + _suffix;

    private string Md5Role => "gh_up_md5_" + _suffix;

    private string CleartextRole => "gh_up_clear_" + _suffix;

    private string Role(string method) => method switch
    {
        "scram" => ScramRole,
        "md5" => Md5Role,
        _ => CleartextRole,
    };

    private string HbaFile => Path.Combine(Server.DataDirectory, "pg_hba.conf");

    public async Task InitializeAsync()
    {
        _directory = Directory.CreateTempSubdirectory("gatehouse-upstream-auth-").FullName;
        await Server.PsqlAsync($"""
            SET password_encryption = 'scram-sha-256'; CREATE ROLE {ScramRole} LOGIN PASSWORD '{_password}';
            SET password_encryption = 'md5'; CREATE ROLE {Md5Role} LOGIN PASSWORD '{_password}';
            CREATE ROLE {CleartextRole} LOGIN PASSWORD '{_password}';
            GRANT CONNECT ON DATABASE app TO {ScramRole}, {Md5Role}, {CleartextRole};
            """, "postgres");

        // Rules are matched top down: these roles get their method before the general scram-sha-256 line.
        _hbaBackup = await File.ReadAllTextAsync(HbaFile);
        await File.WriteAllTextAsync(HbaFile, $"""
            host all {Md5Role} 127.0.0.1/32 md5
            host all {CleartextRole} 127.0.0.1/32 password
            {_hbaBackup}
            """);
        await Server.PsqlAsync("SELECT pg_reload_conf()", "postgres");
    }

    public async Task DisposeAsync()
    {
        await File.WriteAllTextAsync(HbaFile, _hbaBackup);
        await Server.PsqlAsync("SELECT pg_reload_conf()", "postgres");
        await Server.PsqlAsync($"REVOKE CONNECT ON DATABASE app FROM {ScramRole}, {Md5Role}, {CleartextRole}; DROP ROLE {ScramRole}; DROP ROLE {Md5Role}; DROP ROLE {CleartextRole};", "postgres");
        Directory.Delete(_directory, recursive: true);
    }

    public static TheoryData<string, string> Methods => new()
    {
        { "scram", "value" },
        { "md5", "value" },
        { "cleartext", "value" },
        { "scram", "env" },
        { "md5", "file" },
    };

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task The_gateway_logs_in_upstream_with_the_method_the_server_asks_for(string method, string source)
    {
        string role = Role(method);
        string secretYaml = source switch
        {
            "env" => "{ env: GATEHOUSE_TEST_UPSTREAM_PASSWORD }",
            "file" => $"{{ file: {Path.Combine(_directory, "password")} }}",
            _ => $"{{ value: \"{_password}\" }}",
        };
        Environment.SetEnvironmentVariable("GATEHOUSE_TEST_UPSTREAM_PASSWORD", _password);
        await File.WriteAllTextAsync(Path.Combine(_directory, "password"), _password + "\n");

        await using var gateway = Start(role, secretYaml, out var connectionString);
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT current_user", connection);
        Assert.Equal(role, (string)(await command.ExecuteScalarAsync())!);
    }

    [Theory]
    [InlineData("scram")]
    [InlineData("md5")]
    [InlineData("cleartext")]
    public async Task A_wrong_upstream_password_is_reported_as_08004_without_the_servers_text(string method)
    {
        string role = Role(method);
        await using var gateway = Start(role, "{ value: \"not-the-password\" }", out var connectionString);
        await using var connection = new NpgsqlConnection(connectionString);
        var error = await Assert.ThrowsAsync<PostgresException>(() => connection.OpenAsync());
        Assert.Equal("08004", error.SqlState);
        Assert.Contains("28P01", error.MessageText);
        Assert.DoesNotContain(role, error.MessageText);
    }

    private GatehouseServer Start(string role, string passwordYaml, out string connectionString)
    {
        var secret = "agent-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        var yaml = $$"""
            policy: unrestricted
            listeners:
              - name: pg
                address: 127.0.0.1:0
            connections:
              - name: app
                host: 127.0.0.1
                port: {{Server.Port}}
                database: app
                user: {{role}}
                password: {{passwordYaml}}
            identities:
              - name: agent
                secret: "{{ScramVerifier.Create(secret)}}"
                connections: [app]
            """;
        var server = new GatehouseServer(ConfigLoader.Load(yaml, "auth.yaml", _directory), NullLoggerFactory.Instance);
        server.Start();
        connectionString = $"Host=127.0.0.1;Port={server.Gateway.BoundEndPoints[0].Port};Username=agent;Password={secret};Database=app;SSL Mode=Disable;Pooling=false";
        return server;
    }
}
