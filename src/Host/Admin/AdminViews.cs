using System.Text.Json;
using System.Text.Json.Serialization;
using Gatehouse.Engine.Sessions;
using Gatehouse.Host.State;
using Gatehouse.Policy.Access;
using Gatehouse.Policy.Approvals;
using Gatehouse.Policy.Rules;

namespace Gatehouse.Host.Admin;

/// <summary>The admin API's JSON: snake_case names, times as ISO 8601 in UTC, nulls left out.</summary>
public static class AdminJson
{
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        WriteIndented = false,
    };
}

/// <summary>A held statement's approval request, as the admin API and the webhook show it.</summary>
public sealed record ApprovalView(
    string Id,
    string State,
    string Identity,
    string Connection,
    long SessionId,
    string Role,
    string Rule,
    string Statement,
    DateTimeOffset RequestedAt,
    DateTimeOffset ExpiresAt,
    string? DecidedBy = null,
    DateTimeOffset? DecidedAt = null,
    string? Reason = null)
{
    public static ApprovalView From(ApprovalRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        var r = record.Request;
        return new ApprovalView(r.Id, SqliteStateStore.Name(record.State), r.Identity, r.Connection, r.SessionId, r.Role, r.Rule, r.Statement,
            r.RequestedAt, r.ExpiresAt, record.DecidedBy, record.DecidedAt, record.Reason);
    }
}

/// <summary>An access request, as the admin API shows it (with its grant once approved).</summary>
public sealed record AccessRequestView(
    string Id,
    string State,
    string Identity,
    string Connection,
    string Role,
    string Duration,
    long DurationSeconds,
    string Reason,
    DateTimeOffset RequestedAt,
    DateTimeOffset ExpiresAt,
    string? DecidedBy = null,
    DateTimeOffset? DecidedAt = null,
    string? DecisionReason = null,
    string? GrantId = null,
    GrantView? Grant = null)
{
    public static AccessRequestView From(AccessRequestRecord r, GrantView? grant = null)
    {
        ArgumentNullException.ThrowIfNull(r);
        return new AccessRequestView(r.Id, SqliteStateStore.Name(r.State), r.Identity, r.Connection, r.Role, DurationText.Format(r.Duration),
            (long)r.Duration.TotalSeconds, r.Reason, r.RequestedAt, r.ExpiresAt, r.DecidedBy, r.DecidedAt, r.DecisionReason, r.GrantId, grant);
    }
}

/// <summary>A grant, as the admin API shows it; <see cref="Status"/> is live, expired or revoked at the time of the answer.</summary>
public sealed record GrantView(
    string Id,
    string Status,
    string Identity,
    string Connection,
    string Role,
    DateTimeOffset Start,
    DateTimeOffset End,
    string Approver,
    string Reason,
    string? RequestId = null,
    DateTimeOffset? RevokedAt = null,
    string? RevokedBy = null,
    string? RevokeReason = null,
    int? SessionsEnded = null)
{
    public static GrantView From(GrantRecord g, DateTimeOffset now, int? sessionsEnded = null)
    {
        ArgumentNullException.ThrowIfNull(g);
        return new GrantView(g.Id, g.StatusAt(now), g.Identity, g.Connection, g.Role, g.Start, g.End, g.Approver, g.Reason, g.RequestId,
            g.RevokedAt, g.RevokedBy, g.RevokeReason, sessionsEnded);
    }
}

/// <summary>A live session of the gateway.</summary>
public sealed record SessionView(long Id, string? Identity, string? Connection, string Listener, string? Remote, DateTimeOffset Started, string Stage)
{
    public static SessionView From(Session s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return new SessionView(s.Id, s.Identity, s.ConnectionName, s.ListenerName, s.Client.RemoteEndPoint?.ToString(), s.StartedAt,
            JsonNamingPolicy.SnakeCaseLower.ConvertName(s.Stage.ToString()));
    }
}

/// <summary>An audit event.</summary>
public sealed record AuditView(DateTimeOffset At, string Kind, string? Identity, string? Connection, long? SessionId, string? Subject, string? Actor,
    string? Detail)
{
    public static AuditView From(AuditEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return new AuditView(e.At, e.Kind, e.Identity, e.Connection, e.SessionId, e.Subject, e.Actor, e.Detail);
    }
}

/// <summary>The body of POST /approvals/{id}/approve|deny and POST /access/requests/{id}/approve|deny.</summary>
public sealed record DecisionBody(string? Approver, string? Reason);

/// <summary>The body of POST /grants/{id}/revoke.</summary>
public sealed record RevokeBody(string? By, string? Reason);

/// <summary>The body of POST /access/requests.</summary>
public sealed record AccessRequestBody(string? Identity, string? Connection, string? Role, string? Duration, string? Reason);

/// <summary>Every error answer: a sentence for people, and a code for programs.</summary>
public sealed record ErrorView(string Error, string Code);

/// <summary>GET /health.</summary>
public sealed record HealthView(string Status, int Sessions, long PolicyVersion, int SchemaVersion);
