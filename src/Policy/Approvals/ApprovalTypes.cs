namespace Gatehouse.Policy.Approvals;

/// <summary>Where a held statement's approval request stands. Only <see cref="Pending"/> can change.</summary>
public enum ApprovalState : byte
{
    Pending,
    Approved,
    Denied,

    /// <summary>Nobody decided before the request's deadline: treated as a denial.</summary>
    Expired,

    /// <summary>The client disconnected or cancelled while it waited.</summary>
    Withdrawn,
}

/// <summary>
/// A statement held until a person approves it: exactly what would run, who sent it, where, and why it is held.
/// </summary>
/// <param name="Id">Unique, short, typeable (e.g. <c>ap_7k2m9q</c>).</param>
/// <param name="Statement">The exact statement text; for a Bind, the prepared text and its parameter values.</param>
/// <param name="Rule">The policy rule that requires approval.</param>
public sealed record ApprovalRequest(
    string Id,
    string Identity,
    string Connection,
    long SessionId,
    string Role,
    string Rule,
    string Statement,
    DateTimeOffset RequestedAt,
    DateTimeOffset ExpiresAt);

/// <summary>A request and where it stands.</summary>
public sealed record ApprovalRecord(ApprovalRequest Request, ApprovalState State, string? DecidedBy, DateTimeOffset? DecidedAt, string? Reason);

/// <summary>What an attempt to decide a request came to.</summary>
public enum ApprovalDecisionResult : byte
{
    Done,
    NotFound,

    /// <summary>It was already decided, expired or withdrawn: a request is decided once.</summary>
    NotPending,

    /// <summary>The approver is the identity that sent the statement, and policy does not allow self-approval.</summary>
    SelfApprovalRefused,
}

/// <summary>
/// Where held statements wait for a person. The relay submits and waits on the ticket; the admin API and the
/// command line list and decide. Implementations persist and announce (log, webhook).
/// </summary>
public interface IApprovalBroker
{
    /// <summary>Stores and announces a request; the ticket completes when it is decided, expires or is withdrawn.</summary>
    ApprovalTicket Submit(ApprovalRequest request);

    /// <summary>Requests, newest first; only pending ones unless <paramref name="all"/>.</summary>
    IReadOnlyList<ApprovalRecord> List(bool all = false);

    ApprovalRecord? Find(string id);

    /// <summary>Approves or denies a pending request as <paramref name="approver"/>.</summary>
    ApprovalDecisionResult Decide(string id, string approver, bool approve, string? reason = null);
}

/// <summary>
/// The relay's handle on one held statement. <see cref="Decided"/> runs once, on any thread, when the state leaves
/// Pending (the relay wakes its client direction from it); <see cref="Withdraw"/> is the client giving up.
/// </summary>
public sealed class ApprovalTicket(ApprovalRequest request)
{
    private readonly Lock _gate = new();
    private int _state; // ApprovalState
    private Action? _decided;

    public ApprovalRequest Request { get; } = request;

    public ApprovalState State => (ApprovalState)Volatile.Read(ref _state);

    public string? DecidedBy { get; private set; }

    public string? Reason { get; private set; }

    /// <summary>When the ticket left Pending.</summary>
    public DateTimeOffset? DecidedAt { get; private set; }

    /// <summary>Registers the callback; if the ticket is already decided it runs at once.</summary>
    public void OnDecided(Action callback)
    {
        Volatile.Write(ref _decided, callback);
        if (State != ApprovalState.Pending)
        {
            Interlocked.Exchange(ref _decided, null)?.Invoke();
        }
    }

    /// <summary>Moves a pending ticket to a final state; false if it was not pending (decided once).</summary>
    public bool TryComplete(ApprovalState state, string? decidedBy, string? reason)
    {
        if (state == ApprovalState.Pending)
        {
            throw new ArgumentOutOfRangeException(nameof(state), "a ticket completes to a final state");
        }

        lock (_gate)
        {
            if (State != ApprovalState.Pending)
            {
                return false;
            }

            DecidedBy = decidedBy;
            Reason = reason;
            DecidedAt = DateTimeOffset.UtcNow;
            Volatile.Write(ref _state, (int)state);
        }

        Interlocked.Exchange(ref _decided, null)?.Invoke();
        return true;
    }

    /// <summary>The client disconnected or cancelled.</summary>
    public bool Withdraw() => TryComplete(ApprovalState.Withdrawn, null, "withdrawn by the client");
}
