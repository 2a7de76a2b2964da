namespace Gatehouse.Policy.Access;

/// <summary>
/// Something that happened that an auditor must be able to find later: a grant, a request, an approval, a
/// denial, a session's start or end, a statement refused or held. Never a secret; a statement's text only where
/// it is the subject (a held statement), never its parameter values in a log.
/// </summary>
/// <param name="At">When it happened.</param>
/// <param name="Kind">What happened: one of <see cref="AuditKinds"/> (dotted, lower case).</param>
/// <param name="Identity">The identity it concerns (the requester, the session's identity).</param>
/// <param name="Connection">The connection it concerns.</param>
/// <param name="SessionId">The gateway session, when one is involved.</param>
/// <param name="Subject">The id of the thing it is about: an access request, grant or approval id, a rule name.</param>
/// <param name="Actor">Who did it, when not the identity itself: an approver, a revoker, <c>gateway</c>.</param>
/// <param name="Detail">A short, secret-free explanation.</param>
public sealed record AuditEvent(
    DateTimeOffset At,
    string Kind,
    string? Identity = null,
    string? Connection = null,
    long? SessionId = null,
    string? Subject = null,
    string? Actor = null,
    string? Detail = null);

/// <summary>The audit event kinds. Relay-side code records the statement and login kinds; the host the rest.</summary>
public static class AuditKinds
{
    public const string AccessRequested = "access.requested";
    public const string AccessApproved = "access.approved";
    public const string AccessDenied = "access.denied";
    public const string AccessExpired = "access.expired";
    public const string GrantStarted = "grant.started";
    public const string GrantRevoked = "grant.revoked";
    public const string GrantExpired = "grant.expired";
    public const string ApprovalRequested = "approval.requested";
    public const string ApprovalApproved = "approval.approved";
    public const string ApprovalDenied = "approval.denied";
    public const string ApprovalExpired = "approval.expired";
    public const string ApprovalWithdrawn = "approval.withdrawn";
    public const string SessionStarted = "session.started";
    public const string SessionEnded = "session.ended";

    /// <summary>A session ended by the gateway because its grant was revoked or expired.</summary>
    public const string SessionKilled = "session.killed";

    /// <summary>A statement refused by policy (Subject: the rule).</summary>
    public const string StatementDenied = "statement.denied";

    /// <summary>A statement held for approval (Subject: the approval id).</summary>
    public const string StatementHeld = "statement.held";

    /// <summary>A login refused after authentication: no binding, no live grant (Subject: the role needed, if any).</summary>
    public const string LoginRefused = "login.refused";
}

/// <summary>
/// Where audit events go. <see cref="Record"/> never blocks and never throws: it queues the event for a
/// background writer (the relay calls it). When the queue is full, events are dropped and the drop is counted
/// and logged, so a stalled disk can slow nothing on the relay path.
/// </summary>
public interface IAuditSink
{
    void Record(AuditEvent auditEvent);
}

/// <summary>An audit sink that keeps nothing (tests, tools).</summary>
public sealed class NullAuditSink : IAuditSink
{
    public static NullAuditSink Instance { get; } = new();

    public void Record(AuditEvent auditEvent)
    {
    }
}
