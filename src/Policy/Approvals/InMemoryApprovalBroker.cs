using System.Collections.Concurrent;

namespace Gatehouse.Policy.Approvals;

/// <summary>
/// Approvals held in memory: for tests and for gateways without a state store. Requests expire at their deadline
/// (checked by a timer), a request is decided once, and the identity that sent a statement cannot approve it
/// unless <paramref name="allowSelfApproval"/>.
/// </summary>
public sealed class InMemoryApprovalBroker : IApprovalBroker, IDisposable
{
    private readonly ConcurrentDictionary<string, ApprovalTicket> _tickets = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private readonly bool _allowSelfApproval;
    private readonly ITimer _expiry;

    public InMemoryApprovalBroker(TimeProvider? time = null, bool allowSelfApproval = false)
    {
        _time = time ?? TimeProvider.System;
        _allowSelfApproval = allowSelfApproval;
        _expiry = _time.CreateTimer(_ => ExpireDue(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    /// <summary>Raised after a request is submitted (the host announces it: log, webhook).</summary>
    public event Action<ApprovalRequest>? Submitted;

    public ApprovalTicket Submit(ApprovalRequest request)
    {
        var ticket = new ApprovalTicket(request);
        if (!_tickets.TryAdd(request.Id, ticket))
        {
            throw new InvalidOperationException($"approval request {request.Id} exists already");
        }

        Submitted?.Invoke(request);
        return ticket;
    }

    public IReadOnlyList<ApprovalRecord> List(bool all = false) =>
        [.. _tickets.Values
            .Where(t => all || t.State == ApprovalState.Pending)
            .OrderByDescending(t => t.Request.RequestedAt)
            .Select(Record)];

    public ApprovalRecord? Find(string id) => _tickets.TryGetValue(id, out var ticket) ? Record(ticket) : null;

    public ApprovalDecisionResult Decide(string id, string approver, bool approve, string? reason = null)
    {
        if (!_tickets.TryGetValue(id, out var ticket))
        {
            return ApprovalDecisionResult.NotFound;
        }

        if (!_allowSelfApproval && string.Equals(approver, ticket.Request.Identity, StringComparison.Ordinal))
        {
            return ApprovalDecisionResult.SelfApprovalRefused;
        }

        return ticket.TryComplete(approve ? ApprovalState.Approved : ApprovalState.Denied, approver, reason)
            ? ApprovalDecisionResult.Done
            : ApprovalDecisionResult.NotPending;
    }

    /// <summary>Expires every pending request whose deadline has passed.</summary>
    public void ExpireDue()
    {
        var now = _time.GetUtcNow();
        foreach (var ticket in _tickets.Values)
        {
            if (ticket.State == ApprovalState.Pending && ticket.Request.ExpiresAt <= now)
            {
                ticket.TryComplete(ApprovalState.Expired, null, "no decision before the deadline");
            }
        }
    }

    public void Dispose() => _expiry.Dispose();

    private static ApprovalRecord Record(ApprovalTicket t) =>
        new(t.Request, t.State, t.DecidedBy, t.State == ApprovalState.Pending ? null : t.DecidedAt, t.Reason);
}
