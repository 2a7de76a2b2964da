using System.Net;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.Engine.Secrets;

namespace Gatehouse.Host.Config;

/// <summary>The <c>state</c> section: where the embedded state store keeps its file.</summary>
/// <param name="Path">The SQLite file's full path.</param>
public sealed record StateConfig(string Path)
{
    /// <summary>The file name used when the config does not say (next to the config file).</summary>
    public const string DefaultFile = "gatehouse.db";

    /// <summary>The audit trail's JSON-lines file when the config does not say: the database's path with this extension.</summary>
    public const string DefaultAuditLogExtension = ".audit.jsonl";

    /// <summary>The append-only JSON-lines copy of the audit trail (<c>state.audit_log</c>); null when turned off (<c>none</c>).</summary>
    public string? AuditLog { get; init; }

    /// <summary>Where every audit event is also POSTed as JSON, with retries (<c>state.audit_webhook</c>); null: nowhere.</summary>
    public Uri? AuditWebhook { get; init; }
}

/// <summary>The <c>admin</c> section: the admin HTTP endpoint.</summary>
/// <param name="EndPoint">Where it listens; loopback unless TLS is configured.</param>
/// <param name="Token">The bearer token every request but GET /health must present.</param>
/// <param name="Certificate">The TLS certificate (with its key); null: plain HTTP, loopback only.</param>
/// <param name="CertificateFile">The certificate's PEM file, so the command line can trust exactly it.</param>
/// <param name="Identities">Identities that may use the admin API with their own access token (identity_providers).</param>
/// <param name="Groups">Groups whose members may use the admin API with their own access token.</param>
public sealed record AdminConfig(IPEndPoint EndPoint, SecretReference Token, X509Certificate2? Certificate = null, string? CertificateFile = null,
    IReadOnlyList<string>? Identities = null, IReadOnlyList<string>? Groups = null)
{
    /// <summary>Whether people may also authenticate with their own access tokens.</summary>
    public bool AcceptsTokens => Identities is { Count: > 0 } || Groups is { Count: > 0 };

    /// <summary>The admin API's base URL as a client on this machine reaches it.</summary>
    public Uri BaseUrl(IPEndPoint? bound = null)
    {
        var endPoint = bound ?? EndPoint;
        var address = endPoint.Address;
        if (address.Equals(IPAddress.Any))
        {
            address = IPAddress.Loopback;
        }
        else if (address.Equals(IPAddress.IPv6Any))
        {
            address = IPAddress.IPv6Loopback;
        }

        return new Uri($"{(Certificate is null ? "http" : "https")}://{new IPEndPoint(address, endPoint.Port)}/");
    }
}

/// <summary>The <c>approvals</c> section: deciding held statements and access requests.</summary>
/// <param name="Webhook">Where new requests are announced by a JSON POST; null: log lines only.</param>
/// <param name="Timeout">How long a held statement waits for a decision before it expires (refused).</param>
/// <param name="RequestTimeout">How long an access request waits for a decision before it expires.</param>
/// <param name="AllowSelfApproval">Whether an identity may approve its own statement or access request.</param>
public sealed record ApprovalsConfig(Uri? Webhook = null, TimeSpan? Timeout = null, TimeSpan? RequestTimeout = null, bool AllowSelfApproval = false)
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(15);

    public static readonly TimeSpan DefaultRequestTimeout = TimeSpan.FromHours(24);

    public TimeSpan StatementTimeout => Timeout ?? DefaultTimeout;

    public TimeSpan AccessRequestTimeout => RequestTimeout ?? DefaultRequestTimeout;
}
