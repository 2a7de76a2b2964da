using Gatehouse.Policy.Approvals;

namespace Gatehouse.Policy.Access;

/// <summary>
/// The gateway's durable state: access requests, grants, approvals of held statements, sessions and audit
/// events. The embedded implementation is SQLite (src/Host/State); a PostgreSQL one, for several gateways sharing
/// state, satisfies the same contract. Every decision is a compare-and-set on the stored state (a pending row
/// moves once), so two gateways or two approvers can race safely.
/// </summary>
/// <remarks>Times are stored with millisecond precision. Lists are newest first.</remarks>
public interface IStateStore : IAsyncDisposable
{
    // ---- Access requests and grants --------------------------------------------------------------------------

    /// <summary>Stores a new request; with <paramref name="grant"/> (auto-approved), the grant too, atomically.</summary>
    Task AddAccessRequestAsync(AccessRequestRecord request, GrantRecord? grant, CancellationToken cancellationToken = default);

    Task<AccessRequestRecord?> GetAccessRequestAsync(string id, CancellationToken cancellationToken = default);

    /// <summary>Pending requests, or every request when <paramref name="all"/>; newest first, at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<AccessRequestRecord>> ListAccessRequestsAsync(bool all, int limit, CancellationToken cancellationToken = default);

    /// <summary>
    /// Moves a pending request to <paramref name="state"/>; with <paramref name="grant"/> (approved) the grant is
    /// stored in the same transaction. False when the request is not pending (decided once) or does not exist.
    /// </summary>
    Task<bool> DecideAccessRequestAsync(string id, AccessRequestState state, string? decidedBy, DateTimeOffset decidedAt, string? reason,
        GrantRecord? grant, CancellationToken cancellationToken = default);

    /// <summary>Moves every request still pending at <paramref name="now"/> past its deadline to Expired; returns them.</summary>
    Task<IReadOnlyList<AccessRequestRecord>> ExpireAccessRequestsAsync(DateTimeOffset now, CancellationToken cancellationToken = default);

    Task<GrantRecord?> GetGrantAsync(string id, CancellationToken cancellationToken = default);

    /// <summary>Grants not revoked and not ended at <paramref name="now"/> (or every grant when <paramref name="all"/>), newest first.</summary>
    Task<IReadOnlyList<GrantRecord>> ListGrantsAsync(bool all, DateTimeOffset now, int limit, CancellationToken cancellationToken = default);

    /// <summary>Revokes a grant that is neither revoked nor ended; false otherwise.</summary>
    Task<bool> RevokeGrantAsync(string id, string revokedBy, DateTimeOffset revokedAt, string? reason, CancellationToken cancellationToken = default);

    // ---- Approvals of held statements ------------------------------------------------------------------------

    Task AddApprovalAsync(ApprovalRequest request, CancellationToken cancellationToken = default);

    /// <summary>Moves a pending approval to a final state; false when it is not pending or does not exist.</summary>
    Task<bool> CompleteApprovalAsync(string id, ApprovalState state, string? decidedBy, DateTimeOffset decidedAt, string? reason,
        CancellationToken cancellationToken = default);

    Task<ApprovalRecord?> GetApprovalAsync(string id, CancellationToken cancellationToken = default);

    /// <summary>Pending approvals, or every one when <paramref name="all"/>; newest first, at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<ApprovalRecord>> ListApprovalsAsync(bool all, int limit, CancellationToken cancellationToken = default);

    /// <summary>
    /// Withdraws every pending approval (a gateway starting: the sessions that waited on them are gone); returns how
    /// many. With several gateways sharing a store, an implementation limits this to the starting gateway's own.
    /// </summary>
    Task<int> WithdrawPendingApprovalsAsync(DateTimeOffset at, string reason, CancellationToken cancellationToken = default);

    // ---- Sessions and audit ----------------------------------------------------------------------------------

    /// <summary>Inserts or completes session rows (a start, then an end with its reason and byte counts).</summary>
    Task RecordSessionsAsync(IReadOnlyList<SessionRecord> sessions, CancellationToken cancellationToken = default);

    /// <summary>The most recent sessions, newest first.</summary>
    Task<IReadOnlyList<SessionRecord>> ListSessionsAsync(int limit, CancellationToken cancellationToken = default);

    /// <summary>Appends events, in order, in one transaction.</summary>
    Task AppendAuditAsync(IReadOnlyList<AuditEvent> events, CancellationToken cancellationToken = default);

    /// <summary>Events at or after <paramref name="since"/> (all when null), newest first, at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<AuditEvent>> ListAuditAsync(DateTimeOffset? since, int limit, CancellationToken cancellationToken = default);
}
