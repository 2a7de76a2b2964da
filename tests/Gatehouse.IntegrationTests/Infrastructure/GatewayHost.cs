using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Gatehouse.Host;
using Gatehouse.Host.Config;
using Gatehouse.Policy.Identity;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Gatehouse.IntegrationTests.Infrastructure;

/// <summary>One listener of a test gateway. <paramref name="Tls"/> is the YAML value of the listener's tls key.</summary>
public sealed record ListenerSpec(
    string Name,
    string Tls = "{ mode: optional, self_signed: true }",
    string? PasswordMethod = null,
    bool AllowCleartextOnLoopback = false);

/// <summary>An extra upstream the gateway may reach (a fake server); alice may use it.</summary>
public sealed record ExtraConnection(string Name, int Port);

/// <summary>How a test gateway is configured; the defaults suit most tests.</summary>
public sealed record GatewaySettings
{
    public IReadOnlyList<ListenerSpec> Listeners { get; init; } = [new("pg")];

    /// <summary>The YAML value of the limits key.</summary>
    public string Limits { get; init; } = "{ max_server_message: 4MiB, preauth_timeout: 2s, drain_timeout: 5s }";

    public IReadOnlyList<ExtraConnection> ExtraConnections { get; init; } = [];

    /// <summary>
    /// The policy file's YAML, or null for <c>policy: unrestricted</c>. The default allows every statement class
    /// through a real compiled policy, so every test also runs the policy gate's request tracking.
    /// </summary>
    public string? Policy { get; init; } = AllowAllPolicy;

    /// <summary>
    /// The entries of the config's <c>identity_providers</c> list as YAML (each starting with <c>  - name:</c>), or null
    /// for none. Tokens are accepted on listeners with <c>password_method: cleartext</c>.
    /// </summary>
    public string? IdentityProviders { get; init; }

    /// <summary>
    /// The YAML value of the config's <c>state</c> key, or null for a fresh database in the temp folder (deleted when
    /// an in-process gateway is disposed).
    /// </summary>
    public string? State { get; init; }

    /// <summary>The YAML value of the config's <c>admin</c> key, or null for no admin API.</summary>
    public string? Admin { get; init; }

    /// <summary>The YAML value of the config's <c>approvals</c> key, or null for the defaults.</summary>
    public string? Approvals { get; init; }

    /// <summary>
    /// The YAML value of the config's <c>recording</c> key, or null for a fresh recordings folder in the temp folder
    /// (deleted when an in-process gateway is disposed), signed with the generated key.
    /// </summary>
    public string? Recording { get; init; }

    public const string AllowAllPolicy = """
        roles:
          everything:
            allow: all
        bindings:
          - identities: ["*"]
            connections: ["*"]
            role: everything
        """;
}

/// <summary>
/// A Gatehouse started in-process through <see cref="GatehouseServer"/>, as the command line starts it, in front of
/// the shared <see cref="PostgresServer"/>. Connection "app" leads to the server's database app as its superuser.
/// Identity alice may use "app" (and every extra connection); bob may use nothing.
/// </summary>
public sealed class GatewayHost : IAsyncDisposable
{
    public const string Alice = "alice";
    public const string Bob = "bob";
    public const string AppConnection = "app";
    public const string Localhost = "127.0.0.1";

    private int _disposed;
    private bool _ownsState;
    private bool _ownsRecordings;

    private GatewayHost(GatehouseServer server, LogCapture logs, ILoggerFactory loggerFactory, string aliceSecret, string bobSecret, string yaml)
    {
        Server = server;
        Logs = logs;
        LoggerFactory = loggerFactory;
        AliceSecret = aliceSecret;
        BobSecret = bobSecret;
        Yaml = yaml;
    }

    public GatehouseServer Server { get; }

    public LogCapture Logs { get; }

    private ILoggerFactory LoggerFactory { get; }

    public string AliceSecret { get; }

    public string BobSecret { get; }

    /// <summary>The config the gateway was started with (it holds no plain secret of a client).</summary>
    public string Yaml { get; }

    /// <summary>The policy file the gateway watches (null with <c>policy: unrestricted</c>).</summary>
    public string? PolicyFile => Yaml.Split('\n').FirstOrDefault(l => l.StartsWith("policy: /", StringComparison.Ordinal))?["policy: ".Length..].Trim();

    /// <summary>The port of the first listener.</summary>
    public int Port => Server.Gateway.BoundEndPoints[0].Port;

    public int PortOf(string listener)
    {
        var index = Server.Config.Listeners.ToList().FindIndex(l => l.Name == listener);
        if (index < 0)
        {
            throw new ArgumentException($"no listener named {listener}", nameof(listener));
        }

        return Server.Gateway.BoundEndPoints[index].Port;
    }

    public static GatewayHost Start(PostgresServer postgres, GatewaySettings? settings = null)
    {
        settings ??= new GatewaySettings();
        var (text, aliceSecret, bobSecret) = BuildConfig(postgres, settings);
        var config = ConfigLoader.Load(text, "test.yaml", Path.GetTempPath());
        var logs = new LogCapture();
        var loggerFactory = Microsoft.Extensions.Logging.LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(logs));
        var server = new GatehouseServer(config, loggerFactory);
        try
        {
            server.Start();
        }
        catch
        {
            loggerFactory.Dispose();
            throw;
        }

        return new GatewayHost(server, logs, loggerFactory, aliceSecret, bobSecret, text)
        {
            _ownsState = settings.State is null,
            _ownsRecordings = settings.Recording is null,
        };
    }

    /// <summary>The YAML config for a test gateway, with fresh random secrets for alice and bob.</summary>
    public static (string Yaml, string AliceSecret, string BobSecret) BuildConfig(PostgresServer postgres, GatewaySettings settings, string? extraYaml = null)
    {
        var aliceSecret = "alice-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        var bobSecret = "bob-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        var yaml = new StringBuilder();
        yaml.AppendLine("listeners:");
        foreach (var l in settings.Listeners)
        {
            yaml.AppendLine(CultureInfo.InvariantCulture, $"  - name: {l.Name}");
            yaml.AppendLine(CultureInfo.InvariantCulture, $"    address: {Localhost}:0");
            yaml.AppendLine(CultureInfo.InvariantCulture, $"    tls: {l.Tls}");
            if (l.PasswordMethod is not null)
            {
                yaml.AppendLine(CultureInfo.InvariantCulture, $"    password_method: {l.PasswordMethod}");
            }

            if (l.AllowCleartextOnLoopback)
            {
                yaml.AppendLine("    allow_cleartext_on_loopback: true");
            }
        }

        yaml.AppendLine("connections:");
        yaml.AppendLine(CultureInfo.InvariantCulture, $$"""
              - name: {{AppConnection}}
                host: {{postgres.Host}}
                port: {{postgres.Port}}
                database: app
                user: {{postgres.AdminUser}}
                password: { value: "{{postgres.AdminPassword}}" }
            """);
        foreach (var extra in settings.ExtraConnections)
        {
            yaml.AppendLine(CultureInfo.InvariantCulture, $"""
                  - name: {extra.Name}
                    host: {Localhost}
                    port: {extra.Port}
                    database: fake
                    user: fake
                """);
        }

        var aliceConnections = string.Join(", ", new[] { AppConnection }.Concat(settings.ExtraConnections.Select(c => c.Name)));
        yaml.AppendLine(CultureInfo.InvariantCulture, $"""
            identities:
              - name: {Alice}
                secret: "{ScramVerifier.Create(aliceSecret)}"
                connections: [{aliceConnections}]
              - name: {Bob}
                secret: "{ScramVerifier.Create(bobSecret)}"
                connections: []
            limits: {settings.Limits}
            """);

        if (settings.Policy is null)
        {
            yaml.AppendLine("policy: unrestricted");
        }
        else
        {
            var policyFile = Path.Combine(Path.GetTempPath(), $"gatehouse-policy-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}.yaml");
            File.WriteAllText(policyFile, settings.Policy);
            yaml.AppendLine(CultureInfo.InvariantCulture, $"policy: {policyFile}");
        }

        if (settings.IdentityProviders is not null)
        {
            yaml.AppendLine("identity_providers:");
            yaml.AppendLine(settings.IdentityProviders);
        }

        yaml.AppendLine(CultureInfo.InvariantCulture,
            $"state: {settings.State ?? $"{{ path: {Path.Combine(Path.GetTempPath(), $"gatehouse-state-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}.db")} }}"}");
        if (settings.Admin is not null)
        {
            yaml.AppendLine(CultureInfo.InvariantCulture, $"admin: {settings.Admin}");
        }

        if (settings.Approvals is not null)
        {
            yaml.AppendLine(CultureInfo.InvariantCulture, $"approvals: {settings.Approvals}");
        }

        yaml.AppendLine(CultureInfo.InvariantCulture,
            $"recording: {settings.Recording ?? $"{{ directory: {Path.Combine(Path.GetTempPath(), $"gatehouse-recordings-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}")} }}"}");

        if (extraYaml is not null)
        {
            yaml.AppendLine(extraYaml);
        }

        return (yaml.ToString(), aliceSecret, bobSecret);
    }

    /// <summary>An Npgsql connection string to this gateway; no pooling unless the caller turns it on.</summary>
    public string ConnectionString(
        string user = Alice,
        string? password = null,
        string database = AppConnection,
        SslMode sslMode = SslMode.Disable,
        int? port = null,
        Action<NpgsqlConnectionStringBuilder>? configure = null)
    {
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = Localhost,
            Port = port ?? Port,
            Username = user,
            Password = password ?? (user == Bob ? BobSecret : AliceSecret),
            Database = database,
            SslMode = sslMode,
            Pooling = false,
            Timeout = 15,
            CommandTimeout = 60,
        };
        configure?.Invoke(builder);
        return builder.ConnectionString;
    }

    public NpgsqlDataSource CreateDataSource(Action<NpgsqlConnectionStringBuilder>? configure = null, SslMode sslMode = SslMode.Disable) =>
        NpgsqlDataSource.Create(ConnectionString(sslMode: sslMode, configure: configure));

    public async Task<NpgsqlConnection> OpenAsync(SslMode sslMode = SslMode.Disable, Action<NpgsqlConnectionStringBuilder>? configure = null)
    {
        var connection = new NpgsqlConnection(ConnectionString(sslMode: sslMode, configure: configure));
        try
        {
            await connection.OpenAsync();
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }

        return connection;
    }

    /// <summary>The recordings folder.</summary>
    public string RecordingDirectory => Server.Config.Recording.Directory;

    /// <summary>Waits for the log line of a session's end with the given reason (the gateway writes it after closing).</summary>
    public Task<CapturedLog?> WaitForSessionEndAsync(string reason, TimeSpan? timeout = null) =>
        Logs.WaitForAsync(l => l.EventId == 1011 && l.Message.Contains($"ended: {reason} ", StringComparison.Ordinal), timeout);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await Server.DisposeAsync();
        LoggerFactory.Dispose();
        if (_ownsState)
        {
            foreach (var suffix in new[] { "", "-wal", "-shm" })
            {
                File.Delete(Server.Config.State.Path + suffix);
            }

            if (Server.Config.State.AuditLog is { } auditLog)
            {
                File.Delete(auditLog);
            }
        }

        if (_ownsRecordings && Directory.Exists(Server.Config.Recording.Directory))
        {
            Directory.Delete(Server.Config.Recording.Directory, recursive: true);
        }
    }
}
