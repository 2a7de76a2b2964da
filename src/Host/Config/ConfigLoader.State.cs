using System.Net;
using System.Security.Cryptography;
using Gatehouse.Host.Tls;
using YamlDotNet.RepresentationModel;

namespace Gatehouse.Host.Config;

/// <summary>The <c>state</c>, <c>admin</c> and <c>approvals</c> sections (docs/configuration.md).</summary>
public static partial class ConfigLoader
{
    /// <summary>The admin endpoint when <c>admin.address</c> is not given.</summary>
    public static readonly IPEndPoint DefaultAdminEndPoint = new(IPAddress.Loopback, 7070);

    /// <summary>
    /// <c>state: { path: gatehouse.db, audit_log: audit.jsonl }</c>; paths are relative to the config's folder, and
    /// <c>audit_log: none</c> turns the JSON-lines file off (the trail stays in the state store).
    /// </summary>
    private static StateConfig ReadState(YamlReader yaml, YamlMappingNode root, string baseDirectory)
    {
        var map = yaml.Mapping(root, "state", "the config");
        string path = StateConfig.DefaultFile;
        string? auditLog = null;
        Uri? webhook = null;
        if (map is not null)
        {
            yaml.CheckKeys(map, "state", "path", "audit_log", "audit_webhook");
            path = yaml.String(map, "path", "state") ?? path;
            auditLog = yaml.String(map, "audit_log", "state");
            if (yaml.String(map, "audit_webhook", "state") is { } url
                && (!Uri.TryCreate(url, UriKind.Absolute, out webhook) || webhook.Scheme is not ("http" or "https")))
            {
                yaml.Error(yaml.Get(map, "audit_webhook"), "'audit_webhook' in state must be an http:// or https:// URL");
                webhook = null;
            }
        }

        path = Path.GetFullPath(Path.Combine(baseDirectory, path));
        return new StateConfig(path)
        {
            AuditWebhook = webhook,
            // By default next to the database, named after it: gatehouse.db -> gatehouse.audit.jsonl.
            AuditLog = auditLog == "none" ? null
                : auditLog is null ? Path.ChangeExtension(path, StateConfig.DefaultAuditLogExtension)
                : Path.GetFullPath(Path.Combine(baseDirectory, auditLog)),
        };
    }

    /// <summary>
    /// <c>recording: { directory, key, on_backpressure, retention: { max_age, max_size }, flush_to_disk }</c>, or
    /// <c>recording: off</c>. Absent: on, into <c>recordings/</c> next to the config, signed with a key generated next to
    /// the state database.
    /// </summary>
    private static RecordingConfig ReadRecording(YamlReader yaml, YamlMappingNode root, string baseDirectory, StateConfig state)
    {
        string defaultKeyFile = Path.Combine(Path.GetDirectoryName(state.Path)!, RecordingConfig.DefaultKeyFile);
        var defaults = new RecordingConfig(Path.GetFullPath(Path.Combine(baseDirectory, RecordingConfig.DefaultDirectory))) { GeneratedKeyFile = defaultKeyFile };
        var node = yaml.Get(root, "recording");
        if (node is YamlScalarNode { Value: "off" })
        {
            return defaults with { Enabled = false, GeneratedKeyFile = null };
        }

        var map = node is null ? null : yaml.Mapping(root, "recording", "the config");
        if (map is null)
        {
            if (node is not null and not YamlMappingNode)
            {
                yaml.Error(node, "'recording' must be a mapping (directory, key, on_backpressure, retention, flush_to_disk) or off");
            }

            return defaults;
        }

        const string where = "recording";
        yaml.CheckKeys(map, where, "directory", "key", "on_backpressure", "retention", "flush_to_disk");
        string directory = yaml.String(map, "directory", where) ?? RecordingConfig.DefaultDirectory;
        var key = ReadSecret(yaml, map, "key", where);
        if (key is { Kind: Engine.Secrets.SecretSourceKind.Value } && key.Resolve().Trim().Length < Engine.Recording.RecordingKey.MinimumLength)
        {
            yaml.Error(yaml.Get(map, "key"), $"the recording key must be at least {Engine.Recording.RecordingKey.MinimumLength} bytes (openssl rand -hex 32)");
        }

        var backpressure = yaml.Enum(map, "on_backpressure", where, ("pause", Engine.Recording.RecordingBackpressure.Pause),
            ("end_session", Engine.Recording.RecordingBackpressure.EndSession)) ?? Engine.Recording.RecordingBackpressure.Pause;
        TimeSpan? maxAge = null;
        long? maxBytes = null;
        if (yaml.Mapping(map, "retention", where) is { } retention)
        {
            yaml.CheckKeys(retention, "recording.retention", "max_age", "max_size");
            maxAge = yaml.Duration(retention, "max_age", "recording.retention");
            if (maxAge is { } age && age <= TimeSpan.Zero)
            {
                yaml.Error(yaml.Get(retention, "max_age"), "'max_age' in recording.retention must be longer than 0 (leave it out to keep recordings)");
            }

            if (yaml.Get(retention, "max_size") is { } sizeNode)
            {
                if (sizeNode is YamlScalarNode { Value: { } text } && YamlReader.TryParseSize(text, out long bytes) && bytes >= 1L << 20)
                {
                    maxBytes = bytes;
                }
                else
                {
                    yaml.Error(sizeNode, "'max_size' in recording.retention must be a size of at least 1MiB, such as 500MiB or 20GiB");
                }
            }
        }

        return new RecordingConfig(Path.GetFullPath(Path.Combine(baseDirectory, directory)))
        {
            Key = key,
            GeneratedKeyFile = key is null ? defaultKeyFile : null,
            OnBackpressure = backpressure,
            MaxAge = maxAge,
            MaxTotalBytes = maxBytes,
            FlushToDisk = yaml.Bool(map, "flush_to_disk", where) ?? false,
        };
    }

    /// <summary>
    /// <c>admin: { address, token, tls }</c>. Absent: no admin endpoint. A non-loopback address needs TLS: the API
    /// carries its bearer token and decides approvals.
    /// </summary>
    private static AdminConfig? ReadAdmin(YamlReader yaml, YamlMappingNode root, string baseDirectory)
    {
        var map = yaml.Mapping(root, "admin", "the config");
        if (map is null)
        {
            return null;
        }

        const string where = "admin";
        yaml.CheckKeys(map, where, "address", "token", "tls", "identities", "groups");
        var endPoint = DefaultAdminEndPoint;
        if (yaml.String(map, "address", where) is { } addressText)
        {
            if (!IPEndPoint.TryParse(addressText, out var parsed) || (parsed.Port == 0 && !addressText.EndsWith(":0", StringComparison.Ordinal)))
            {
                yaml.Error(yaml.Get(map, "address"), "'address' in admin must be IP:port, such as 127.0.0.1:7070 or [::1]:7070");
            }
            else
            {
                endPoint = parsed;
            }
        }

        var token = ReadSecret(yaml, map, "token", where);
        if (yaml.Get(map, "token") is null)
        {
            yaml.Error(map, "admin needs 'token': { env: GATEHOUSE_ADMIN_TOKEN } (or { file: PATH }); every request must present it");
        }
        else if (token is { Kind: Engine.Secrets.SecretSourceKind.Value } && token.Resolve().Length < MinAdminTokenLength)
        {
            yaml.Error(yaml.Get(map, "token"), $"the admin token must be at least {MinAdminTokenLength} characters");
        }

        System.Security.Cryptography.X509Certificates.X509Certificate2? certificate = null;
        string? certificateFile = null;
        if (yaml.Mapping(map, "tls", where) is { } tls)
        {
            yaml.CheckKeys(tls, "admin.tls", "certificate", "key");
            var certificateName = yaml.String(tls, "certificate", "admin.tls", required: true);
            var keyName = yaml.String(tls, "key", "admin.tls", required: true);
            if (certificateName is not null && keyName is not null)
            {
                certificateFile = Path.GetFullPath(Path.Combine(baseDirectory, certificateName));
                try
                {
                    certificate = CertificateLoader.FromPemFiles(certificateFile, Path.Combine(baseDirectory, keyName));
                }
                catch (Exception ex) when (ex is IOException or CryptographicException or UnauthorizedAccessException or ArgumentException)
                {
                    yaml.Error(yaml.Get(tls, "certificate"), $"cannot load the admin certificate and key: {ex.Message}");
                }
            }
        }
        else if (!IPAddress.IsLoopback(endPoint.Address) && yaml.Get(map, "address") is { } addressNode)
        {
            yaml.Error(addressNode, $"admin address {endPoint} is not a loopback address: the admin API carries its token and decides approvals, "
                                    + "so off this machine it needs tls: {{ certificate: FILE, key: FILE }}");
        }

        // People may also use their own access tokens: then they act as themselves (approver, revoker, requester).
        var identities = yaml.StringList(map, "identities", where);
        var groups = yaml.StringList(map, "groups", where);
        return token is null ? null : new AdminConfig(endPoint, token, certificate, certificateFile, identities, groups);
    }

    /// <summary>The shortest admin token accepted: 16 characters (a token is meant to be random, e.g. openssl rand -hex 32).</summary>
    public const int MinAdminTokenLength = 16;

    /// <summary><c>approvals: { webhook, timeout, request_timeout, allow_self_approval }</c>.</summary>
    private static ApprovalsConfig ReadApprovals(YamlReader yaml, YamlMappingNode root)
    {
        var map = yaml.Mapping(root, "approvals", "the config");
        if (map is null)
        {
            return new ApprovalsConfig();
        }

        const string where = "approvals";
        yaml.CheckKeys(map, where, "webhook", "timeout", "request_timeout", "allow_self_approval");
        Uri? webhook = null;
        if (yaml.String(map, "webhook", where) is { } url)
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out webhook) || webhook.Scheme is not ("http" or "https"))
            {
                yaml.Error(yaml.Get(map, "webhook"), "'webhook' in approvals must be an http:// or https:// URL");
                webhook = null;
            }
        }

        var timeout = yaml.Duration(map, "timeout", where);
        var requestTimeout = yaml.Duration(map, "request_timeout", where);
        foreach (var (key, value) in new[] { ("timeout", timeout), ("request_timeout", requestTimeout) })
        {
            if (value is { } v && v <= TimeSpan.Zero)
            {
                yaml.Error(yaml.Get(map, key), $"'{key}' in approvals must be longer than 0");
            }
        }

        return new ApprovalsConfig(webhook, timeout, requestTimeout, yaml.Bool(map, "allow_self_approval", where) ?? false);
    }
}
