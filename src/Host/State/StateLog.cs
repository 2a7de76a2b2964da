using Microsoft.Extensions.Logging;

namespace Gatehouse.Host.State;

/// <summary>
/// Log lines of the state store, grants, approvals and the admin API, source-generated, with stable event ids
/// (5xxx). Statement texts are never logged (an approver reads them through the admin API or the webhook), and no
/// token ever is.
/// </summary>
internal static partial class StateLog
{
    [LoggerMessage(5000, LogLevel.Information, "State store {Path} open (schema version {Version})")]
    public static partial void Opened(ILogger logger, string path, int version);

    [LoggerMessage(5001, LogLevel.Warning, "Audit queue full: {Dropped} event(s) dropped so far")]
    public static partial void AuditDropped(ILogger logger, long dropped);

    [LoggerMessage(5002, LogLevel.Error, "Writing {Count} audit record(s) to the state store failed")]
    public static partial void AuditWriteFailed(ILogger logger, int count, Exception exception);

    [LoggerMessage(5003, LogLevel.Error, "Appending {Count} audit event(s) to the audit log file {Path} failed")]
    public static partial void AuditFileWriteFailed(ILogger logger, int count, string path, Exception exception);

    [LoggerMessage(5010, LogLevel.Information, "Access request {Id}: {Identity} asks for role {Role} on {Connection} for {Duration}; approve with `gatehouse access approve {Id}`")]
    public static partial void AccessRequested(ILogger logger, string id, string identity, string role, string connection, string duration);

    [LoggerMessage(5011, LogLevel.Information, "Access request {Id} approved by {Approver}: grant {GrantId} gives {Identity} role {Role} on {Connection} until {End:u}")]
    public static partial void AccessApproved(ILogger logger, string id, string approver, string grantId, string identity, string role, string connection,
        DateTimeOffset end);

    [LoggerMessage(5012, LogLevel.Information, "Access request {Id} denied by {Approver}")]
    public static partial void AccessDenied(ILogger logger, string id, string approver);

    [LoggerMessage(5013, LogLevel.Information, "Access request {Id} expired without a decision")]
    public static partial void AccessExpired(ILogger logger, string id);

    [LoggerMessage(5014, LogLevel.Information, "Grant {GrantId} ({Identity}, role {Role} on {Connection}) revoked by {By}; {Sessions} live session(s) ended")]
    public static partial void GrantRevoked(ILogger logger, string grantId, string identity, string role, string connection, string by, int sessions);

    [LoggerMessage(5015, LogLevel.Information, "Grant {GrantId} ({Identity}, role {Role} on {Connection}) expired; {Sessions} live session(s) ended")]
    public static partial void GrantExpired(ILogger logger, string grantId, string identity, string role, string connection, int sessions);

    [LoggerMessage(5016, LogLevel.Error, "Grant and request upkeep failed; retrying in a second")]
    public static partial void SweepFailed(ILogger logger, Exception exception);

    [LoggerMessage(5020, LogLevel.Information, "Approval request {Id}: session {SessionId} of {Identity} on {Connection} holds a statement (policy rule {Rule}); see `gatehouse approvals list`")]
    public static partial void ApprovalRequested(ILogger logger, string id, long sessionId, string identity, string connection, string rule);

    [LoggerMessage(5021, LogLevel.Information, "Approval request {Id} {State} (by {By})")]
    public static partial void ApprovalCompleted(ILogger logger, string id, string state, string by);

    [LoggerMessage(5022, LogLevel.Information, "{Count} approval request(s) left pending by the previous run withdrawn")]
    public static partial void ApprovalsWithdrawnAtStart(ILogger logger, int count);

    [LoggerMessage(5023, LogLevel.Error, "Storing approval request {Id} failed")]
    public static partial void ApprovalStoreFailed(ILogger logger, string id, Exception exception);

    [LoggerMessage(5030, LogLevel.Warning, "Webhook for {Kind} {Id} failed after {Attempts} attempt(s): {Error}")]
    public static partial void WebhookFailed(ILogger logger, string kind, string id, int attempts, string error);

    [LoggerMessage(5031, LogLevel.Debug, "Webhook for {Kind} {Id} delivered")]
    public static partial void WebhookDelivered(ILogger logger, string kind, string id);

    [LoggerMessage(5032, LogLevel.Warning, "Webhook queue full: announcement of {Kind} {Id} dropped")]
    public static partial void WebhookDropped(ILogger logger, string kind, string id);

    [LoggerMessage(5040, LogLevel.Information, "Admin API listening on {Url}")]
    public static partial void AdminListening(ILogger logger, string url);

    [LoggerMessage(5041, LogLevel.Warning, "Admin API: {Method} {Path} from {Remote} refused: {Why}")]
    public static partial void AdminUnauthorized(ILogger logger, string method, string path, string? remote, string why);

    [LoggerMessage(5042, LogLevel.Error, "Admin API: {Method} {Path} failed")]
    public static partial void AdminFailed(ILogger logger, string method, string path, Exception exception);
}
