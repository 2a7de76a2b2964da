namespace Gatehouse.Policy.Access;

/// <summary>Where a request for a just-in-time grant stands. Only <see cref="Pending"/> can change.</summary>
public enum AccessRequestState : byte
{
    Pending,

    /// <summary>Approved by a person or by the binding's <c>auto_approve</c>; the request has a grant.</summary>
    Approved,

    Denied,

    /// <summary>Nobody decided before the request's deadline (<c>approvals.request_timeout</c>).</summary>
    Expired,
}

/// <summary>
/// A request for a just-in-time grant: <paramref name="Identity"/> asks for <paramref name="Role"/> on
/// <paramref name="Connection"/> for <paramref name="Duration"/>, saying why.
/// </summary>
/// <param name="Id">Unique, short, typeable: <c>ar_</c> and 10 characters (<see cref="StateIds"/>).</param>
/// <param name="ExpiresAt">A request still pending then expires.</param>
/// <param name="GrantId">The grant its approval created; null unless approved.</param>
public sealed record AccessRequestRecord(
    string Id,
    string Identity,
    string Connection,
    string Role,
    TimeSpan Duration,
    string Reason,
    DateTimeOffset RequestedAt,
    DateTimeOffset ExpiresAt,
    AccessRequestState State = AccessRequestState.Pending,
    string? DecidedBy = null,
    DateTimeOffset? DecidedAt = null,
    string? DecisionReason = null,
    string? GrantId = null);

/// <summary>
/// A just-in-time grant: <paramref name="Identity"/> holds <paramref name="Role"/> on <paramref name="Connection"/>
/// from <paramref name="Start"/> until <paramref name="End"/>, unless revoked first.
/// </summary>
/// <param name="Id">Unique, short, typeable: <c>gr_</c> and 10 characters.</param>
/// <param name="RequestId">The access request it answers.</param>
/// <param name="Approver">Who approved it (<c>auto_approve</c> for the policy's automatic approval).</param>
/// <param name="Reason">The requester's reason.</param>
public sealed record GrantRecord(
    string Id,
    string? RequestId,
    string Identity,
    string Connection,
    string Role,
    DateTimeOffset Start,
    DateTimeOffset End,
    string Approver,
    string Reason,
    DateTimeOffset? RevokedAt = null,
    string? RevokedBy = null,
    string? RevokeReason = null)
{
    /// <summary>Whether the grant gives access at <paramref name="now"/>: started, not ended, not revoked.</summary>
    public bool IsLive(DateTimeOffset now) => RevokedAt is null && Start <= now && now < End;

    /// <summary>live, revoked, expired (or future, for a grant that starts later).</summary>
    public string StatusAt(DateTimeOffset now) =>
        RevokedAt is not null ? "revoked" : now >= End ? "expired" : now < Start ? "future" : "live";
}

/// <summary>One session through the gateway, as the store keeps it (audit; live sessions come from the engine).</summary>
/// <param name="Instance">The gateway process run that served it: session ids restart with every run.</param>
public sealed record SessionRecord(
    string Instance,
    long SessionId,
    string? Identity,
    string? Connection,
    string Listener,
    string? Remote,
    DateTimeOffset StartedAt,
    DateTimeOffset? EndedAt = null,
    string? EndReason = null,
    string? EndSide = null,
    string? EndDetail = null,
    long BytesFromClient = 0,
    long BytesFromServer = 0);
