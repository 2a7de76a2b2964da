using Gatehouse.Engine.Secrets;
using Gatehouse.Host.Config;
using Gatehouse.Policy.Identity;
using Gatehouse.Protocols.Postgres;

namespace Gatehouse.Tests.Config;

public sealed class ConfigLoaderTests
{
    private static readonly string Verifier = ScramVerifier.Create("s3cret").ToString();

    private static string Valid => $$"""
        listeners:
          - name: pg
            protocol: postgres
            address: 127.0.0.1:6432
            tls: { mode: required, self_signed: true }
            password_method: cleartext
            allow_cleartext_on_loopback: true
        connections:
          - name: demo
            host: db.internal
            port: 5433
            database: app
            user: gatehouse
            password: { env: DEMO_PASSWORD }
            tls: verify-full
        identities:
          - name: alice
            secret: "{{Verifier}}"
            connections: [demo]
        limits:
          max_connections: 10
          preauth_timeout: 5s
          idle_timeout: 30m
          max_client_message: 1MiB
          max_server_message: 512MiB
        logging: { level: debug, format: json }
        policy: unrestricted
        """;

    [Fact]
    public void A_valid_config_loads_every_value()
    {
        var config = ConfigLoader.Load(Valid, "gatehouse.yaml", ".");
        var listener = Assert.Single(config.Listeners);
        Assert.Equal("127.0.0.1:6432", listener.EndPoint.ToString());
        Assert.Equal(ClientTlsMode.Required, listener.Postgres.TlsMode);
        Assert.NotNull(listener.Postgres.Certificate);
        Assert.Equal(PasswordMethod.Cleartext, listener.Postgres.PasswordMethod);
        Assert.True(listener.Postgres.AllowCleartextOnLoopback);

        var connection = config.Postgres.Connections["demo"];
        Assert.Equal(("db.internal", 5433, "app", "gatehouse", UpstreamTlsMode.VerifyFull),
            (connection.Host, connection.Port, connection.Database, connection.User, connection.Tls));
        Assert.Equal(SecretSourceKind.Environment, connection.Password!.Kind);
        Assert.Equal("DEMO_PASSWORD", connection.Password.Name);

        Assert.True(config.Postgres.Identities.TryGet("alice", out var alice));
        Assert.True(alice!.Secret.VerifyPassword("s3cret"));
        Assert.True(IdentityDirectory.MayUse(alice, "demo"));

        Assert.Equal(10, config.Limits.MaxConnections);
        Assert.Equal(TimeSpan.FromSeconds(5), config.Limits.PreAuthTimeout);
        Assert.Equal(TimeSpan.FromMinutes(30), config.Limits.IdleTimeout);
        Assert.Equal(1 << 20, config.Limits.MaxClientMessageSize);
        Assert.Equal(512 << 20, config.Limits.MaxServerMessageSize);
        Assert.True(config.Logging.Json);
    }

    /// <summary>Each broken config names the problem and where it is (line of the offending node).</summary>
    public static TheoryData<string, string, string, int> Broken => new()
    {
        { "a typo in a key", "address: 127.0.0.1:6432", "adress: 127.0.0.1:6432", 4 },
        { "an address without port", "address: 127.0.0.1:6432", "address: 127.0.0.1", 4 },
        { "an unknown TLS mode", "mode: required", "mode: sometimes", 5 },
        { "the secret itself instead of a verifier", $"secret: \"{Verifier}\"", "secret: hunter2", 18 },
        { "an identity naming an undefined connection", "connections: [demo]", "connections: [dmeo]", 19 },
        { "a size over the maximum", "max_server_message: 512MiB", "max_server_message: 3GiB", 25 },
        { "a bad duration", "idle_timeout: 30m", "idle_timeout: soon", 23 },
        { "a port out of range", "port: 5433", "port: 70000", 11 },
        { "an unsupported protocol", "    protocol: postgres\n", "    protocol: mongodb\n", 3 },
        { "a password as plain text", "password: { env: DEMO_PASSWORD }", "password: hunter2", 14 },
        { "ca_file without verify-full", "tls: verify-full", "tls: require\n    ca_file: ca.pem", 16 },
    };

    [Theory]
    [MemberData(nameof(Broken))]
    public void A_broken_config_is_refused_with_the_position_of_the_problem(string name, string find, string replace, int line)
    {
        var text = Valid.Replace(find, replace);
        Assert.NotEqual(Valid, text);
        var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Load(text, "gatehouse.yaml", "."));
        Assert.True(ex.Errors.Any(e => e.Line == line), $"{name}: expected an error on line {line}, got: {ex.Message}");
        Assert.All(ex.Errors, e => Assert.Equal("gatehouse.yaml", e.File));
    }

    [Fact]
    public void A_certificate_and_key_from_pem_files_load_with_the_private_key_relative_to_the_config()
    {
        var directory = Directory.CreateTempSubdirectory("gatehouse-pem-").FullName;
        try
        {
            using var key = System.Security.Cryptography.ECDsa.Create();
            var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=gw.test", key, System.Security.Cryptography.HashAlgorithmName.SHA256);
            using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddDays(1));
            File.WriteAllText(Path.Combine(directory, "server.crt"), certificate.ExportCertificatePem());
            File.WriteAllText(Path.Combine(directory, "server.key"), key.ExportPkcs8PrivateKeyPem());

            var text = Valid.Replace("tls: { mode: required, self_signed: true }", "tls: { mode: required, certificate: server.crt, key: server.key }");
            var listener = Assert.Single(ConfigLoader.Load(text, "gatehouse.yaml", directory).Listeners);
            Assert.NotNull(listener.Postgres.Certificate);
            Assert.True(listener.Postgres.Certificate!.HasPrivateKey);
            Assert.Equal("CN=gw.test", listener.Postgres.Certificate.Subject);

            var missing = Valid.Replace("tls: { mode: required, self_signed: true }", "tls: { mode: required, certificate: nope.crt, key: nope.key }");
            var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Load(missing, "gatehouse.yaml", directory));
            Assert.Contains(ex.Errors, e => e.Line == 5 && e.Message.Contains("cannot load the certificate", StringComparison.Ordinal));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void Every_error_is_reported_not_just_the_first()
    {
        var text = Valid.Replace("adress", "x").Replace("address: 127.0.0.1:6432", "address: nowhere").Replace("port: 5433", "port: -1");
        var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Load(text, "g.yaml", "."));
        Assert.True(ex.Errors.Count >= 2, ex.Message);
    }

    [Fact]
    public void A_yaml_syntax_error_is_reported_with_its_position()
    {
        var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Load("listeners:\n  - name: [unclosed\n", "g.yaml", "."));
        var error = Assert.Single(ex.Errors);
        Assert.Contains("YAML syntax", error.Message);
        Assert.True(error.Line >= 2);
    }

    [Fact]
    public void A_config_without_listeners_is_refused()
    {
        var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Load("connections: []\npolicy: unrestricted\n", "g.yaml", "."));
        Assert.Contains("at least one listener", ex.Message);
    }

    [Fact]
    public void Error_messages_never_echo_a_secret_value()
    {
        var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Load(Valid.Replace($"\"{Verifier}\"", "hunter2-very-secret"), "g.yaml", "."));
        Assert.DoesNotContain("hunter2-very-secret", ex.Message);
    }

    [Theory]
    [InlineData("10000", 10000L)]
    [InlineData("64KiB", 65536L)]
    [InlineData("16MiB", 16777216L)]
    [InlineData("1GiB", 1073741824L)]
    [InlineData("2 MB", 2097152L)]
    public void Sizes_are_read_in_bytes(string text, long expected)
    {
        Assert.True(YamlReader.TryParseSize(text, out long value));
        Assert.Equal(expected, value);
    }

    [Theory]
    [InlineData("500ms", 500)]
    [InlineData("15s", 15_000)]
    [InlineData("10m", 600_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("0", 0)]
    public void Durations_are_read(string text, int milliseconds)
    {
        Assert.True(YamlReader.TryParseDuration(text, out var value));
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), value);
    }
}
