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
        if (map is not null)
        {
            yaml.CheckKeys(map, "state", "path", "audit_log");
            path = yaml.String(map, "path", "state") ?? path;
            auditLog = yaml.String(map, "audit_log", "state");
        }

        path = Path.GetFullPath(Path.Combine(baseDirectory, path));
        return new StateConfig(path)
        {
            // By default next to the database, named after it: gatehouse.db -> gatehouse.audit.jsonl.
            AuditLog = auditLog == "none" ? null
                : auditLog is null ? Path.ChangeExtension(path, StateConfig.DefaultAuditLogExtension)
                : Path.GetFullPath(Path.Combine(baseDirectory, auditLog)),
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
