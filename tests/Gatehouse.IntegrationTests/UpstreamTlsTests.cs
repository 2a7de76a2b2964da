using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.Host;
using Gatehouse.Host.Config;
using Gatehouse.IntegrationTests.Infrastructure;
using Gatehouse.Policy.Identity;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Gatehouse.IntegrationTests;

/// <summary>
/// TLS from the gateway to the real server, in each mode: disable, require, verify-full against the right CA,
/// and verify-full against a CA that did not sign the server's certificate (refused, nothing relayed).
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class UpstreamTlsTests(PostgresFixture fixture) : IAsyncLifetime
{
    private string _directory = null!;
    private string _serverCaFile = null!;
    private string _otherCaFile = null!;

    private PostgresServer Server => fixture.Server;

    public async Task InitializeAsync()
    {
        _directory = Directory.CreateTempSubdirectory("gatehouse-upstream-tls-").FullName;

        // The server's certificate (self-signed, so it is its own CA) names 127.0.0.1, as verify-full checks.
        using var serverKey = RSA.Create(2048);
        var serverCertificate = SelfSigned("CN=127.0.0.1", serverKey);
        await File.WriteAllTextAsync(Path.Combine(Server.DataDirectory, "server.crt"), serverCertificate.ExportCertificatePem());
        var keyFile = Path.Combine(Server.DataDirectory, "server.key");
        await File.WriteAllTextAsync(keyFile, serverKey.ExportPkcs8PrivateKeyPem());
        if (!OperatingSystem.IsWindows())
        {
            // PostgreSQL refuses a private key that others can read.
            File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        if (Environment.IsPrivilegedProcess)
        {
            (await ProcessRunner.RunAsync("chown", ["postgres:", Path.Combine(Server.DataDirectory, "server.crt"), keyFile])).EnsureSuccess("chown");
        }

        await Server.PsqlAsync("ALTER SYSTEM SET ssl = on", "postgres");
        await Server.PsqlAsync("SELECT pg_reload_conf()", "postgres");

        _serverCaFile = Path.Combine(_directory, "server-ca.pem");
        await File.WriteAllTextAsync(_serverCaFile, serverCertificate.ExportCertificatePem());

        using var otherKey = RSA.Create(2048);
        _otherCaFile = Path.Combine(_directory, "other-ca.pem");
        await File.WriteAllTextAsync(_otherCaFile, SelfSigned("CN=127.0.0.1", otherKey).ExportCertificatePem());
    }

    public async Task DisposeAsync()
    {
        await Server.PsqlAsync("ALTER SYSTEM RESET ssl", "postgres");
        await Server.PsqlAsync("SELECT pg_reload_conf()", "postgres");
        Directory.Delete(_directory, recursive: true);
    }

    public static TheoryData<string, bool> WorkingModes => new()
    {
        { "disable", false },
        { "require", true },
        { "verify-full-right-ca", true },
    };

    [Theory]
    [MemberData(nameof(WorkingModes))]
    public async Task The_upstream_session_is_encrypted_exactly_when_the_connection_asks_for_it(string mode, bool encrypted)
    {
        await using var gateway = await StartAsync(mode);
        await using var connection = new NpgsqlConnection(gateway.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", connection);
        Assert.Equal(encrypted, (bool)(await command.ExecuteScalarAsync())!);
    }

    [Fact]
    public async Task Verify_full_refuses_a_server_whose_certificate_the_configured_ca_did_not_sign()
    {
        await using var gateway = await StartAsync("verify-full-wrong-ca");
        await using var connection = new NpgsqlConnection(gateway.ConnectionString);
        var error = await Assert.ThrowsAsync<PostgresException>(() => connection.OpenAsync());
        Assert.Equal("08006", error.SqlState);
        Assert.Contains("TLS with the upstream server failed", error.MessageText);
    }

    private Task<Gateway> StartAsync(string mode)
    {
        var secret = "agent-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        var (tls, ca) = mode switch
        {
            "disable" => ("disable", null),
            "require" => ("require", null),
            "verify-full-right-ca" => ("verify-full", _serverCaFile),
            _ => ("verify-full", _otherCaFile),
        };
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
                user: {{Server.AdminUser}}
                password: { value: "{{Server.AdminPassword}}" }
                tls: {{tls}}
            {{(ca is null ? "" : $"    ca_file: {ca}")}}
            identities:
              - name: agent
                secret: "{{ScramVerifier.Create(secret)}}"
                connections: [app]
            """;
        var server = new GatehouseServer(ConfigLoader.Load(yaml, "tls.yaml", _directory), NullLoggerFactory.Instance);
        server.Start();
        var port = server.Gateway.BoundEndPoints[0].Port;
        return Task.FromResult(new Gateway(server, $"Host=127.0.0.1;Port={port};Username=agent;Password={secret};Database=app;SSL Mode=Disable;Pooling=false"));
    }

    private static X509Certificate2 SelfSigned(string subject, RSA key)
    {
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, false, 0, critical: true));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
    }

    private sealed class Gateway(GatehouseServer server, string connectionString) : IAsyncDisposable
    {
        public string ConnectionString { get; } = connectionString;

        public ValueTask DisposeAsync() => server.DisposeAsync();
    }
}
