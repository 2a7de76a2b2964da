namespace Gatehouse.Host.Review;

/// <summary>
/// The access review (docs/review.md): who had access to what, approved by whom, for how long, and what they ran
/// and saw, per identity, over a time window. Built by <see cref="ReviewBuilder"/>; written as a table, CSV, JSON or
/// HTML by the writers in this folder. Every list is in time order.
/// </summary>
public sealed record ReviewReport
{
    /// <summary>When the report was made; statuses (live, expired) are as of then.</summary>
    public required DateTimeOffset GeneratedAt { get; init; }

    /// <summary>The window's start (inclusive).</summary>
    public required DateTimeOffset Since { get; init; }

    /// <summary>The window's end (exclusive).</summary>
    public required DateTimeOffset Until { get; init; }

    /// <summary>The identities the report was limited to (<c>--identity</c>); empty: all.</summary>
    public IReadOnlyList<string> IdentityFilter { get; init; } = [];

    /// <summary>The connections the report was limited to (<c>--connection</c>); empty: all.</summary>
    public IReadOnlyList<string> ConnectionFilter { get; init; } = [];

    /// <summary>The counts over the whole report.</summary>
    public required ReviewSummary Summary { get; init; }

    /// <summary>Per identity, by name (ordinal).</summary>
    public required IReadOnlyList<IdentityReview> Identities { get; init; }

    /// <summary>
    /// What makes the report less than complete or its evidence less than trustworthy, in words: damaged
    /// recordings first, then sessions without a recording, then notes from the session source.
    /// </summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
}

/// <summary>The counts of a report.</summary>
public sealed record ReviewSummary
{
    /// <summary>Identities with anything in the report.</summary>
    public int Identities { get; init; }

    /// <summary>Grants whose lifetime overlaps the window.</summary>
    public int Grants { get; init; }

    /// <summary>Of <see cref="Grants"/>, those revoked.</summary>
    public int RevokedGrants { get; init; }

    /// <summary>Access requests in the window that were denied.</summary>
    public int DeniedRequests { get; init; }

    /// <summary>Access requests in the window that nobody decided in time.</summary>
    public int ExpiredRequests { get; init; }

    /// <summary>Sessions overlapping the window, recorded or known only from the state store.</summary>
    public int Sessions { get; init; }

    /// <summary>Statements the recorded sessions sent.</summary>
    public int Statements { get; init; }

    /// <summary>Statements refused (by policy or by an approver).</summary>
    public int Denied { get; init; }

    /// <summary>Statements held for approval.</summary>
    public int Held { get; init; }

    /// <summary>Values masked in results.</summary>
    public long Masked { get; init; }

    /// <summary>Held-statement approval requests in the window (from the state store).</summary>
    public int Approvals { get; init; }

    /// <summary>Grants with no session under them.</summary>
    public int UnusedGrants { get; init; }

    /// <summary>Standing access (by policy binding) with no session in the window.</summary>
    public int UnusedStanding { get; init; }

    /// <summary>Sessions whose recording is damaged: their evidence is not trustworthy.</summary>
    public int DamagedRecordings { get; init; }

    /// <summary>Sessions the state store knows of that have no recording.</summary>
    public int UnrecordedSessions { get; init; }

    /// <summary>Every count under its name in the CSV and JSON (docs/review.md), in the documented order.</summary>
    internal (string Name, long Value)[] Counters =>
    [
        ("identities", Identities), ("grants", Grants), ("revoked_grants", RevokedGrants), ("denied_requests", DeniedRequests),
        ("expired_requests", ExpiredRequests), ("sessions", Sessions), ("statements", Statements), ("denied", Denied), ("held", Held),
        ("masked", Masked), ("approvals", Approvals), ("unused_grants", UnusedGrants), ("unused_standing", UnusedStanding),
        ("damaged_recordings", DamagedRecordings), ("unrecorded_sessions", UnrecordedSessions),
    ];
}

/// <summary>Everything the report says about one identity.</summary>
public sealed record IdentityReview
{
    /// <summary>The identity's name; <c>(unknown)</c> for a recording without one.</summary>
    public required string Identity { get; init; }

    /// <summary>Grants whose lifetime overlaps the window, by start.</summary>
    public IReadOnlyList<GrantReview> Grants { get; init; } = [];

    /// <summary>Access requests that did not become a grant (denied, expired, pending), by request time.</summary>
    public IReadOnlyList<RequestReview> Requests { get; init; } = [];

    /// <summary>Sessions overlapping the window, by start.</summary>
    public IReadOnlyList<SessionReview> Sessions { get; init; } = [];

    /// <summary>Held statements' approval requests in the window, by request time.</summary>
    public IReadOnlyList<ApprovalReview> Approvals { get; init; } = [];

    /// <summary>Standing access the current policy gives (static identities only), by connection.</summary>
    public IReadOnlyList<StandingAccess> Standing { get; init; } = [];

    /// <summary>Access that no session used: unused grants, then unused standing access.</summary>
    public IReadOnlyList<UnusedAccess> Unused { get; init; } = [];

    /// <summary>Whether standing access is among <see cref="Unused"/>.</summary>
    internal bool IsUnused(StandingAccess access) =>
        Unused.Any(u => u.Kind == ReviewBuilder.AccessStanding && u.Connection == access.Connection && u.Role == access.Role);
}

/// <summary>One just-in-time grant, with the request that led to it.</summary>
public sealed record GrantReview
{
    /// <summary>The grant's id (<c>gr_...</c>).</summary>
    public required string Id { get; init; }

    /// <summary>The identity it is for.</summary>
    public required string Identity { get; init; }

    /// <summary>The connection it gives access to.</summary>
    public required string Connection { get; init; }

    /// <summary>The policy role it gives.</summary>
    public required string Role { get; init; }

    /// <summary>The access request it answers; null when the store has none.</summary>
    public string? RequestId { get; init; }

    /// <summary>When the identity asked.</summary>
    public DateTimeOffset? RequestedAt { get; init; }

    /// <summary>The requester's reason.</summary>
    public required string Reason { get; init; }

    /// <summary>Who approved it (<c>auto_approve</c> for the policy's automatic approval).</summary>
    public required string ApprovedBy { get; init; }

    /// <summary>When it was approved.</summary>
    public DateTimeOffset? ApprovedAt { get; init; }

    /// <summary>The approver's reason, or the automatic approval's explanation.</summary>
    public string? ApprovalReason { get; init; }

    /// <summary>Granted from.</summary>
    public required DateTimeOffset Start { get; init; }

    /// <summary>Granted until (as approved; see <see cref="RevokedAt"/>).</summary>
    public required DateTimeOffset End { get; init; }

    /// <summary>The duration approved.</summary>
    public TimeSpan Duration => End - Start;

    /// <summary>When it was revoked; null when it was not.</summary>
    public DateTimeOffset? RevokedAt { get; init; }

    /// <summary>Who revoked it.</summary>
    public string? RevokedBy { get; init; }

    /// <summary>Why it was revoked.</summary>
    public string? RevokeReason { get; init; }

    /// <summary>When access actually ended: the revocation, or the end.</summary>
    public DateTimeOffset EffectiveEnd => EffectiveEndOf(End, RevokedAt);

    /// <summary>live, revoked, expired or future, at <see cref="ReviewReport.GeneratedAt"/>.</summary>
    public required string Status { get; init; }

    /// <summary>Every session known to have run under it, in or out of the window (ids as in <see cref="SessionReview.Id"/>).</summary>
    public IReadOnlyList<string> SessionIds { get; init; } = [];

    /// <summary>Whether any session ran under it.</summary>
    public bool Used => SessionIds.Count > 0;

    /// <summary>When a grant's access ended: its revocation when that came first, else its end.</summary>
    internal static DateTimeOffset EffectiveEndOf(DateTimeOffset end, DateTimeOffset? revokedAt) =>
        revokedAt is { } revoked && revoked < end ? revoked : end;
}

/// <summary>An access request that did not become a grant.</summary>
public sealed record RequestReview
{
    /// <summary>The request's id (<c>ar_...</c>).</summary>
    public required string Id { get; init; }

    /// <summary>The connection asked for.</summary>
    public required string Connection { get; init; }

    /// <summary>The role asked for.</summary>
    public required string Role { get; init; }

    /// <summary>The duration asked for.</summary>
    public required TimeSpan Duration { get; init; }

    /// <summary>The requester's reason.</summary>
    public required string Reason { get; init; }

    /// <summary>When it was asked.</summary>
    public required DateTimeOffset RequestedAt { get; init; }

    /// <summary>denied, expired or pending (a pending request past its deadline reads expired).</summary>
    public required string State { get; init; }

    /// <summary>Who denied it.</summary>
    public string? DecidedBy { get; init; }

    /// <summary>When it was denied or expired.</summary>
    public DateTimeOffset? DecidedAt { get; init; }

    /// <summary>Why.</summary>
    public string? DecisionReason { get; init; }
}

/// <summary>One session: from its recording, or from the state store alone when it has no recording.</summary>
public sealed record SessionReview
{
    /// <summary>
    /// The session's id: the recording's session id, or <c>INSTANCE/N</c> for a session the state store knows of
    /// that has no recording.
    /// </summary>
    public required string Id { get; init; }

    /// <summary>The identity; null when the recording names none.</summary>
    public string? Identity { get; init; }

    /// <summary>The recording file; null without a recording.</summary>
    public string? RecordingPath { get; init; }

    /// <summary>The connection.</summary>
    public string? Connection { get; init; }

    /// <summary>The policy role the session ran under; null when unknown (no recording).</summary>
    public string? Role { get; init; }

    /// <summary>The client's address.</summary>
    public string? ClientAddress { get; init; }

    /// <summary>When it started.</summary>
    public required DateTimeOffset Start { get; init; }

    /// <summary>When it ended (the last event recorded); null for a session still open in the state store.</summary>
    public DateTimeOffset? End { get; init; }

    /// <summary>How long it lasted (to <see cref="ReviewReport.GeneratedAt"/> when still open).</summary>
    public required TimeSpan Duration { get; init; }

    /// <summary>What gave it access: <c>grant</c>, <c>standing</c> or <c>unexplained</c> (no grant, no standing binding).</summary>
    public required string Access { get; init; }

    /// <summary>The grant it ran under; null unless <see cref="Access"/> is <c>grant</c>.</summary>
    public string? GrantId { get; init; }

    /// <summary>Statements per class.</summary>
    public IReadOnlyDictionary<string, int> StatementsByClass { get; init; } = new SortedDictionary<string, int>(StringComparer.Ordinal);

    /// <summary>Statements sent.</summary>
    public int StatementCount => Statements.Count;

    /// <summary>Statements refused.</summary>
    public int Denied => Statements.Count(t => t.Decision == ReviewBuilder.DecisionDenied);

    /// <summary>Statements held for approval.</summary>
    public int Held => Statements.Count(t => t.Held);

    /// <summary>Values masked in results.</summary>
    public long MaskedValues { get; init; }

    /// <summary>Tables and views named, sorted.</summary>
    public IReadOnlyList<string> Tables { get; init; } = [];

    /// <summary>How it ended (<c>ClientTerminated</c>, <c>Killed</c>, ...); null when not recorded.</summary>
    public string? EndReason { get; init; }

    /// <summary>The end's detail (who killed it, the error).</summary>
    public string? EndDetail { get; init; }

    /// <summary><c>intact</c>, <c>recovered</c>, <c>unsealed</c>, <c>damaged</c>, or <c>missing</c> (no recording).</summary>
    public required string Integrity { get; init; }

    /// <summary>What verification found wrong; for <c>missing</c>, why there is no evidence.</summary>
    public IReadOnlyList<string> Problems { get; init; } = [];

    /// <summary>Whether the recording is damaged: what it says may have been altered.</summary>
    public bool Damaged => Integrity == ReviewBuilder.IntegrityDamaged;

    /// <summary>The statements, in order (empty without a recording).</summary>
    public IReadOnlyList<StatementReview> Statements { get; init; } = [];
}

/// <summary>One statement of a recorded session, as decided.</summary>
public sealed record StatementReview
{
    /// <summary>When it was sent.</summary>
    public required DateTimeOffset At { get; init; }

    /// <summary>The protocol message: Q (query), B (bind), F (function call).</summary>
    public required char Message { get; init; }

    /// <summary>The statement text, exactly as recorded (attacker-controlled: every writer escapes it).</summary>
    public required string Text { get; init; }

    /// <summary>Bind parameters as text.</summary>
    public IReadOnlyList<string> Parameters { get; init; } = [];

    /// <summary>The class the policy read.</summary>
    public required string Class { get; init; }

    /// <summary><c>allowed</c> or <c>denied</c>.</summary>
    public required string Decision { get; init; }

    /// <summary>The rule that denied or held it.</summary>
    public string? Rule { get; init; }

    /// <summary>Whether it waited for approval.</summary>
    public bool Held { get; init; }

    /// <summary>Who approved or rejected it.</summary>
    public string? Approver { get; init; }

    /// <summary>The approval request's id.</summary>
    public string? Ticket { get; init; }

    /// <summary>Its command tag or error.</summary>
    public string? Result { get; init; }

    /// <summary>Values masked in its results.</summary>
    public long MaskedValues { get; init; }
}

/// <summary>A held statement's approval request, as the state store keeps it.</summary>
public sealed record ApprovalReview
{
    /// <summary>The approval request's id (<c>ap_...</c>).</summary>
    public required string Id { get; init; }

    /// <summary>The connection.</summary>
    public required string Connection { get; init; }

    /// <summary>The session's role.</summary>
    public required string Role { get; init; }

    /// <summary>The rule that held it.</summary>
    public required string Rule { get; init; }

    /// <summary>The statement, exactly (attacker-controlled).</summary>
    public required string Statement { get; init; }

    /// <summary>When it was held.</summary>
    public required DateTimeOffset RequestedAt { get; init; }

    /// <summary>approved, denied, expired, withdrawn or pending.</summary>
    public required string State { get; init; }

    /// <summary>Who approved or denied it.</summary>
    public string? DecidedBy { get; init; }

    /// <summary>When.</summary>
    public DateTimeOffset? DecidedAt { get; init; }

    /// <summary>The decision's reason.</summary>
    public string? Reason { get; init; }

    /// <summary>The recorded session whose statement carries this request as its ticket; null when none in the report.</summary>
    public string? SessionId { get; init; }
}

/// <summary>Access a standing policy binding gives a static identity on a connection (as the current policy reads).</summary>
/// <param name="Identity">The identity.</param>
/// <param name="Connection">The connection, one the identity may open.</param>
/// <param name="Role">The role the first matching standing binding gives.</param>
public sealed record StandingAccess(string Identity, string Connection, string Role);

/// <summary>Access that no session used.</summary>
public sealed record UnusedAccess
{
    /// <summary><c>grant</c> or <c>standing</c>.</summary>
    public required string Kind { get; init; }

    /// <summary>The connection.</summary>
    public required string Connection { get; init; }

    /// <summary>The role.</summary>
    public required string Role { get; init; }

    /// <summary>The unused grant; null for standing access.</summary>
    public string? GrantId { get; init; }

    /// <summary>The grant's start; null for standing access.</summary>
    public DateTimeOffset? From { get; init; }

    /// <summary>When the grant's access ended (revocation or end); null for standing access.</summary>
    public DateTimeOffset? Until { get; init; }
}
