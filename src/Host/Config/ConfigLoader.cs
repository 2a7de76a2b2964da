using System.Collections.Frozen;
using System.Net;
using System.Security.Cryptography;
using Gatehouse.Engine;
using Gatehouse.Engine.Secrets;
using Gatehouse.Host.Tls;
using Gatehouse.Policy.Identity;
using Gatehouse.Policy.Rules;
using Gatehouse.Protocols.Postgres;
using Microsoft.Extensions.Logging;
using YamlDotNet.RepresentationModel;

namespace Gatehouse.Host.Config;

/// <summary>
/// Reads a gatehouse.yaml into a validated <see cref="GatehouseConfig"/>. Every problem is reported with its
/// position; a config with any error is refused whole (a bad first load stops start-up).
/// The format is documented in docs/configuration.md.
/// </summary>
public static partial class ConfigLoader
{
    public static GatehouseConfig LoadFile(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException([new ConfigError(path, 0, 0, $"cannot read the file: {ex.Message}")]);
        }

        return Load(text, path, Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".");
    }

    /// <param name="text">The YAML text.</param>
    /// <param name="file">The name used in error messages.</param>
    /// <param name="baseDirectory">Relative file paths in the config are resolved against it.</param>
    public static GatehouseConfig Load(string text, string file, string baseDirectory)
    {
        var yaml = new YamlReader(file);
        var root = yaml.Load(text);
        if (root is null)
        {
            throw new ConfigException(yaml.Errors);
        }

        yaml.CheckKeys(root, "the config", "listeners", "connections", "identities", "limits", "logging", "policy", "identity_providers", "state", "admin", "approvals", "recording");
        var limits = ReadLimits(yaml, root);
        var logging = ReadLogging(yaml, root);
        var connections = ReadConnections(yaml, root);
        var identities = ReadIdentities(yaml, root, connections);
        var listeners = ReadListeners(yaml, root, baseDirectory);
        var state = ReadState(yaml, root, baseDirectory);
        var recording = ReadRecording(yaml, root, baseDirectory, state);
        var admin = ReadAdmin(yaml, root, baseDirectory);
        var approvals = ReadApprovals(yaml, root);
        var providers = new IdentityProviderSet(IdentityProviderReader.Read(yaml, root, baseDirectory, connections.ContainsKey));
        var directory = new IdentityDirectory(identities);
        var warnings = new List<ConfigError>();
        var (policy, policyFile, stamp) = ReadPolicy(yaml, root, baseDirectory, GatehouseConfig.CompileContext(directory, providers, connections.ContainsKey),
            warnings);
        if (providers.Count > 0 && !listeners.Any(l => l.Postgres.PasswordMethod == PasswordMethod.Cleartext))
        {
            var node = yaml.Get(root, "identity_providers");
            warnings.Add(new ConfigError(yaml.File, node?.Start.Line ?? 0, node?.Start.Column ?? 0,
                "identity providers are configured, but no listener has password_method: cleartext, the only way to present a token"));
        }

        if (admin is { AcceptsTokens: true } && providers.Count == 0)
        {
            yaml.Error(yaml.Get(yaml.Mapping(root, "admin", "the config")!, "identities") ?? yaml.Get(root, "admin"),
                "admin.identities and admin.groups let people in with their own access tokens, which needs identity_providers");
        }

        if (listeners.Count == 0 && yaml.Errors.Count == 0)
        {
            yaml.Error(root, "the config needs at least one listener under 'listeners'");
        }

        if (yaml.Errors.Count > 0)
        {
            throw new ConfigException(yaml.Errors);
        }

        var snapshot = new PgConfigSnapshot(connections.Values.Select(c => c.Target), directory) { IdentityProviders = providers };
        return new GatehouseConfig(listeners, snapshot, limits, logging, policy!, policyFile) { PolicyStamp = stamp, Warnings = warnings, State = state, Admin = admin, Approvals = approvals, Recording = recording };
    }

    /// <summary>
    /// The required <c>policy</c> key: a policy file (relative to the config's folder), or <c>unrestricted</c> as an
    /// explicit opt-out. Without it the config is refused: no policy must never mean no checks.
    /// </summary>
    private static (PolicySnapshot? Policy, string? File, PolicyFileStamp? Stamp) ReadPolicy(YamlReader yaml, YamlMappingNode root,
        string baseDirectory, PolicyCompileContext context, List<ConfigError> warnings)
    {
        var node = yaml.Get(root, "policy");
        if (node is null)
        {
            yaml.Error(root, "a policy is required: `policy: FILE`, or `policy: unrestricted` to relay every statement unchecked");
            return (null, null, null);
        }

        if (node is not YamlScalarNode { Value: { Length: > 0 } value })
        {
            yaml.Error(node, "'policy' must be the path of a policy file (see docs/policy.md), or unrestricted");
            return (null, null, null);
        }

        if (value == "unrestricted")
        {
            return (PolicySnapshot.Unrestricted, null, null);
        }

        string path = Path.GetFullPath(Path.Combine(baseDirectory, value));
        var result = PolicyLoader.LoadFile(path, context);
        if (result.Text is null)
        {
            // Not readable: the config's own line is where to look.
            yaml.Error(node, result.Errors[0].Message);
        }
        else
        {
            yaml.Errors.AddRange(result.Errors);
        }

        warnings.AddRange(result.Warnings);
        return (result.Snapshot, path, result.Stamp);
    }

    private static GatewayLimits ReadLimits(YamlReader yaml, YamlMappingNode root)
    {
        var defaults = new GatewayLimits();
        var map = yaml.Mapping(root, "limits", "the config");
        if (map is null)
        {
            return defaults;
        }

        const string where = "limits";
        yaml.CheckKeys(map, where, "max_connections", "preauth_timeout", "idle_timeout", "max_client_message", "max_server_message",
            "max_preauth_message", "drain_timeout", "upstream_connect_timeout");
        return new GatewayLimits
        {
            MaxConnections = yaml.Int(map, "max_connections", where, 1, 1_000_000) ?? defaults.MaxConnections,
            PreAuthTimeout = yaml.Duration(map, "preauth_timeout", where) ?? defaults.PreAuthTimeout,
            IdleTimeout = yaml.Duration(map, "idle_timeout", where) ?? defaults.IdleTimeout,
            MaxClientMessageSize = yaml.Size(map, "max_client_message", where, 1024, 1L << 30) ?? defaults.MaxClientMessageSize,
            MaxServerMessageSize = yaml.Size(map, "max_server_message", where, 1024, 1L << 30) ?? defaults.MaxServerMessageSize,
            MaxPreAuthMessageSize = yaml.Size(map, "max_preauth_message", where, 1024, 1L << 20) ?? defaults.MaxPreAuthMessageSize,
            DrainTimeout = yaml.Duration(map, "drain_timeout", where) ?? defaults.DrainTimeout,
            UpstreamConnectTimeout = yaml.Duration(map, "upstream_connect_timeout", where) ?? defaults.UpstreamConnectTimeout,
        };
    }

    private static LoggingConfig ReadLogging(YamlReader yaml, YamlMappingNode root)
    {
        var map = yaml.Mapping(root, "logging", "the config");
        if (map is null)
        {
            return new LoggingConfig(LogLevel.Information, Json: false);
        }

        yaml.CheckKeys(map, "logging", "level", "format");
        var level = yaml.Enum(map, "level", "logging", ("trace", LogLevel.Trace), ("debug", LogLevel.Debug), ("information", LogLevel.Information),
            ("info", LogLevel.Information), ("warning", LogLevel.Warning), ("error", LogLevel.Error)) ?? LogLevel.Information;
        bool json = yaml.Enum(map, "format", "logging", ("text", false), ("json", true)) ?? false;
        return new LoggingConfig(level, json);
    }

    private sealed record ConnectionEntry(PgConnectionTarget Target, YamlNode Node);

    private static Dictionary<string, ConnectionEntry> ReadConnections(YamlReader yaml, YamlMappingNode root)
    {
        var result = new Dictionary<string, ConnectionEntry>(StringComparer.Ordinal);
        int index = 0;
        foreach (var map in yaml.Sequence(root, "connections", "the config"))
        {
            string where = $"connections[{index++}]";
            yaml.CheckKeys(map, where, "name", "protocol", "host", "port", "database", "user", "password", "tls", "ca_file");
            var name = yaml.String(map, "name", where, required: true);
            var protocol = yaml.String(map, "protocol", where) ?? "postgres";
            if (protocol != "postgres")
            {
                yaml.Error(yaml.Get(map, "protocol"), $"protocol '{protocol}' is not supported yet; supported: postgres");
            }

            var host = yaml.String(map, "host", where, required: true);
            var port = yaml.Int(map, "port", where, 1, 65535) ?? 5432;
            var database = yaml.String(map, "database", where, required: true);
            var user = yaml.String(map, "user", where, required: true);
            var password = ReadSecret(yaml, map, "password", where);
            var tls = yaml.Enum(map, "tls", where, ("disable", UpstreamTlsMode.Disable), ("require", UpstreamTlsMode.Require),
                ("verify-full", UpstreamTlsMode.VerifyFull)) ?? UpstreamTlsMode.Disable;
            var caFile = yaml.String(map, "ca_file", where);
            if (caFile is not null && tls != UpstreamTlsMode.VerifyFull)
            {
                yaml.Error(yaml.Get(map, "ca_file"), "'ca_file' only applies with tls: verify-full");
            }

            if (name is null || host is null || database is null || user is null)
            {
                continue;
            }

            if (result.ContainsKey(name))
            {
                yaml.Error(map, $"connection '{name}' is defined twice");
                continue;
            }

            result[name] = new ConnectionEntry(new PgConnectionTarget
            {
                Name = name,
                Host = host,
                Port = port,
                Database = database,
                User = user,
                Password = password,
                Tls = tls,
                CaFile = caFile,
            }, map);
        }

        return result;
    }

    /// <summary>A secret: { env: NAME }, { file: PATH } or { value: TEXT }.</summary>
    private static SecretReference? ReadSecret(YamlReader yaml, YamlMappingNode map, string key, string where)
    {
        var node = yaml.Get(map, key);
        if (node is null)
        {
            return null;
        }

        if (node is not YamlMappingNode secret || secret.Children.Count != 1)
        {
            yaml.Error(node, $"'{key}' in {where} must be one of {{ env: NAME }}, {{ file: PATH }} or {{ value: TEXT }}");
            return null;
        }

        yaml.CheckKeys(secret, $"{where}.{key}", "env", "file", "value");
        if (yaml.String(secret, "env", where) is { } env)
        {
            return SecretReference.FromEnvironment(env);
        }

        if (yaml.String(secret, "file", where) is { } path)
        {
            return SecretReference.FromFile(path);
        }

        return yaml.String(secret, "value", where) is { } value ? SecretReference.FromValue(value) : null;
    }

    private static List<AgentIdentity> ReadIdentities(YamlReader yaml, YamlMappingNode root, Dictionary<string, ConnectionEntry> connections)
    {
        var result = new List<AgentIdentity>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        int index = 0;
        foreach (var map in yaml.Sequence(root, "identities", "the config"))
        {
            string where = $"identities[{index++}]";
            yaml.CheckKeys(map, where, "name", "secret", "connections");
            var name = yaml.String(map, "name", where, required: true);
            var secretText = yaml.String(map, "secret", where, required: true);
            ScramVerifier? verifier = null;
            if (secretText is not null && !ScramVerifier.TryParse(secretText, out verifier, out var error))
            {
                yaml.Error(yaml.Get(map, "secret"),
                    $"'secret' must be a SCRAM-SHA-256 verifier made by `gatehouse secret hash` ({error}); never the secret itself");
            }

            var allowed = yaml.StringList(map, "connections", where);
            var listNode = yaml.Get(map, "connections");
            foreach (var connection in allowed.Where(c => !connections.ContainsKey(c)))
            {
                yaml.Error(listNode, $"identity '{name}' names connection '{connection}', which is not defined under 'connections'");
            }

            if (name is not null && !names.Add(name))
            {
                yaml.Error(map, $"identity '{name}' is defined twice");
            }

            if (name is not null && verifier is not null)
            {
                result.Add(new AgentIdentity(name, verifier, allowed.ToFrozenSet(StringComparer.Ordinal)));
            }
        }

        return result;
    }

    private static List<ListenerConfig> ReadListeners(YamlReader yaml, YamlMappingNode root, string baseDirectory)
    {
        var result = new List<ListenerConfig>();
        int index = 0;
        foreach (var map in yaml.Sequence(root, "listeners", "the config"))
        {
            string where = $"listeners[{index++}]";
            yaml.CheckKeys(map, where, "name", "protocol", "address", "tls", "password_method", "allow_cleartext_on_loopback");
            var name = yaml.String(map, "name", where) ?? $"listener{index}";
            var protocol = yaml.String(map, "protocol", where) ?? "postgres";
            if (protocol != "postgres")
            {
                yaml.Error(yaml.Get(map, "protocol"), $"protocol '{protocol}' is not supported yet; supported: postgres");
            }

            var addressText = yaml.String(map, "address", where, required: true);
            IPEndPoint? endPoint = null;
            if (addressText is not null && !IPEndPoint.TryParse(addressText, out endPoint))
            {
                yaml.Error(yaml.Get(map, "address"), $"'address' must be IP:port, such as 127.0.0.1:6432 or [::1]:6432");
            }
            else if (endPoint is not null && endPoint.Port == 0 && !addressText!.EndsWith(":0", StringComparison.Ordinal))
            {
                yaml.Error(yaml.Get(map, "address"), "'address' needs a port, such as 127.0.0.1:6432");
            }

            var (tlsMode, certificate) = ReadClientTls(yaml, map, where, baseDirectory);
            var method = yaml.Enum(map, "password_method", where, ("scram", PasswordMethod.Scram), ("cleartext", PasswordMethod.Cleartext))
                         ?? PasswordMethod.Scram;
            bool allowLoopback = yaml.Bool(map, "allow_cleartext_on_loopback", where) ?? false;
            if (endPoint is not null)
            {
                result.Add(new ListenerConfig(name, protocol, endPoint, new PgListenerOptions
                {
                    Name = name,
                    TlsMode = tlsMode,
                    Certificate = certificate,
                    PasswordMethod = method,
                    AllowCleartextOnLoopback = allowLoopback,
                }));
            }
        }

        return result;
    }

    private static (ClientTlsMode, System.Security.Cryptography.X509Certificates.X509Certificate2?) ReadClientTls(
        YamlReader yaml, YamlMappingNode listener, string where, string baseDirectory)
    {
        var map = yaml.Mapping(listener, "tls", where);
        if (map is null)
        {
            return (ClientTlsMode.Disabled, null);
        }

        string tlsWhere = $"{where}.tls";
        yaml.CheckKeys(map, tlsWhere, "mode", "certificate", "key", "self_signed");
        var mode = yaml.Enum(map, "mode", tlsWhere, ("disabled", ClientTlsMode.Disabled), ("optional", ClientTlsMode.Optional),
            ("required", ClientTlsMode.Required)) ?? ClientTlsMode.Optional;
        if (mode == ClientTlsMode.Disabled)
        {
            return (mode, null);
        }

        bool selfSigned = yaml.Bool(map, "self_signed", tlsWhere) ?? false;
        var certificateFile = yaml.String(map, "certificate", tlsWhere);
        var keyFile = yaml.String(map, "key", tlsWhere);
        if (selfSigned)
        {
            if (certificateFile is not null || keyFile is not null)
            {
                yaml.Error(map, $"{tlsWhere}: use either self_signed: true or certificate + key, not both");
            }

            return (mode, CertificateLoader.CreateSelfSigned());
        }

        if (certificateFile is null || keyFile is null)
        {
            yaml.Error(map, $"{tlsWhere} needs 'certificate' and 'key' (PEM files), or self_signed: true");
            return (mode, null);
        }

        try
        {
            return (mode, CertificateLoader.FromPemFiles(Path.Combine(baseDirectory, certificateFile), Path.Combine(baseDirectory, keyFile)));
        }
        catch (Exception ex) when (ex is IOException or CryptographicException or UnauthorizedAccessException or ArgumentException)
        {
            yaml.Error(yaml.Get(map, "certificate"), $"cannot load the certificate and key: {ex.Message}");
            return (mode, null);
        }
    }
}
