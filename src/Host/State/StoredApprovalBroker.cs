using System.Collections.Concurrent;
using System.Threading.Channels;
using Gatehouse.Host.Admin;
using Gatehouse.Policy.Access;
using Gatehouse.Policy.Approvals;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Host.State;

/// <summary>
/// Held statements' approval requests, kept in the state store. The relay's side is in memory and never waits:
/// <see cref="Submit"/> creates the ticket, queues the insert, logs the request (id, identity, connection, rule,
/// never the statement) and queues the webhook (which carries the statement: the approver must read it). Decisions
/// go through <see cref="Decide"/> (admin API, command line): decided once, never by the identity that sent the
/// statement unless <c>approvals.allow_self_approval</c>. A once-a-second sweep expires requests at their
/// deadline and stores whatever left Pending by other routes (a client that disconnected withdraws its request).
/// </summary>
public sealed class StoredApprovalBroker : IApprovalBroker, IAsyncDisposable
{
    /// <summary>How long a decided request stays in memory (Find and List answer from memory; older ones come from the store).</summary>
    private static readonly TimeSpan KeepDecided = TimeSpan.FromHours(1);

    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly Channel<Func<Task>> _writes = Channel.CreateUnbounded<Func<Task>>(new UnboundedChannelOptions { SingleReader = true });
    private readonly IStateStore _store;
    private readonly IAuditSink _audit;
    private readonly ILogger _logger;
    private readonly WebhookAnnouncer? _announcer;
    private readonly TimeProvider _time;
    private ITimer? _timer;
    private Task _writer = Task.CompletedTask;

    /// <param name="timeout">The longest a statement waits (<c>approvals.timeout</c>): a request's deadline is capped to it.</param>
    /// <param name="allowSelfApproval">Whether the identity that sent a statement may approve it.</param>
    public StoredApprovalBroker(IStateStore store, IAuditSink audit, ILogger logger, TimeSpan timeout, bool allowSelfApproval = false,
        WebhookAnnouncer? announcer = null, TimeProvider? time = null)
    {
        _store = store;
        _audit = audit;
        _logger = logger;
        Timeout = timeout;
        AllowSelfApproval = allowSelfApproval;
        _announcer = announcer;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The longest a held statement waits for a decision (<c>approvals.timeout</c>).</summary>
    public TimeSpan Timeout { get; }

    public bool AllowSelfApproval { get; }

    /// <summary>
    /// Withdraws requests a previous run left pending (their sessions are gone), then starts the store writer and
    /// the expiry sweep.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        int withdrawn = await _store.WithdrawPendingApprovalsAsync(_time.GetUtcNow(), "the gateway restarted; the session that waited is gone",
            cancellationToken).ConfigureAwait(false);
        if (withdrawn > 0)
        {
            StateLog.ApprovalsWithdrawnAtStart(_logger, withdrawn);
        }

        _writer = Task.Run(WriteLoopAsync, CancellationToken.None);
        _timer = _time.CreateTimer(static state => ((StoredApprovalBroker)state!).Sweep(), this, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    public ApprovalTicket Submit(ApprovalRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var cap = request.RequestedAt + Timeout;
        if (request.ExpiresAt > cap)
        {
            request = request with { ExpiresAt = cap };
        }

        var entry = new Entry(new ApprovalTicket(request));
        if (!_entries.TryAdd(request.Id, entry))
        {
            throw new InvalidOperationException($"approval request {request.Id} exists already");
        }

        Enqueue(request.Id, () => _store.AddApprovalAsync(request));
        _audit.Record(new AuditEvent(request.RequestedAt, AuditKinds.ApprovalRequested, request.Identity, request.Connection, request.SessionId,
            request.Id, Detail: $"policy rule {request.Rule}, role {request.Role}"));
        StateLog.ApprovalRequested(_logger, request.Id, request.SessionId, request.Identity, request.Connection, request.Rule);
        _announcer?.Announce("approval request", request.Id, new
        {
            type = AuditKinds.ApprovalRequested,
            text = $"Gatehouse: {request.Identity} on {request.Connection} waits for approval (policy rule {request.Rule}) of:\n"
                   + $"{Shorten(request.Statement, 1000)}\nApprove with `gatehouse approvals approve {request.Id}`, deny with `gatehouse approvals deny {request.Id}`.",
            approval = ApprovalView.From(new ApprovalRecord(request, ApprovalState.Pending, null, null, null)),
            approve_command = $"gatehouse approvals approve {request.Id}",
            deny_command = $"gatehouse approvals deny {request.Id}",
        });
        return entry.Ticket;
    }

    /// <summary>This run's requests from memory: pending ones, or with <paramref name="all"/> the decided ones of the last hour too.</summary>
    public IReadOnlyList<ApprovalRecord> List(bool all = false) =>
        [.. _entries.Values
            .Select(e => Record(e.Ticket))
            .Where(r => all || r.State == ApprovalState.Pending)
            .OrderByDescending(r => r.Request.RequestedAt)];

    /// <summary>
    /// Pending requests, or with <paramref name="all"/> the history from the store too (newest first, at most
    /// <paramref name="limit"/>); what memory holds is the most current.
    /// </summary>
    public async Task<IReadOnlyList<ApprovalRecord>> ListAsync(bool all, int limit = 500, CancellationToken cancellationToken = default)
    {
        var current = List(all);
        if (!all)
        {
            return current;
        }

        var stored = await _store.ListApprovalsAsync(all: true, limit, cancellationToken).ConfigureAwait(false);
        var byId = current.ToDictionary(r => r.Request.Id, StringComparer.Ordinal);
        foreach (var record in stored)
        {
            byId.TryAdd(record.Request.Id, record);
        }

        return [.. byId.Values.OrderByDescending(r => r.Request.RequestedAt).Take(limit)];
    }

    public ApprovalRecord? Find(string id) =>
        _entries.TryGetValue(id, out var entry) ? Record(entry.Ticket) : Task.Run(() => _store.GetApprovalAsync(id)).GetAwaiter().GetResult();

    public async Task<ApprovalRecord?> FindAsync(string id, CancellationToken cancellationToken = default) =>
        _entries.TryGetValue(id, out var entry) ? Record(entry.Ticket) : await _store.GetApprovalAsync(id, cancellationToken).ConfigureAwait(false);

    public ApprovalDecisionResult Decide(string id, string approver, bool approve, string? reason = null) =>
        DecideInMemory(id, approver, approve, reason)
        ?? (Task.Run(() => _store.GetApprovalAsync(id)).GetAwaiter().GetResult() is null ? ApprovalDecisionResult.NotFound : ApprovalDecisionResult.NotPending);

    /// <summary><see cref="Decide"/> without blocking on the store for requests of earlier runs.</summary>
    public async Task<ApprovalDecisionResult> DecideAsync(string id, string approver, bool approve, string? reason = null,
        CancellationToken cancellationToken = default) =>
        DecideInMemory(id, approver, approve, reason)
        ?? (await _store.GetApprovalAsync(id, cancellationToken).ConfigureAwait(false) is null ? ApprovalDecisionResult.NotFound : ApprovalDecisionResult.NotPending);

    /// <summary>Completes when every store write queued before the call is done (tests).</summary>
    public Task FlushAsync()
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_writes.Writer.TryWrite(() =>
            {
                done.TrySetResult();
                return Task.CompletedTask;
            }))
        {
            done.TrySetResult();
        }

        return done.Task;
    }

    /// <summary>Null when the request is not in memory (an earlier run's, or long decided): the caller asks the store.</summary>
    private ApprovalDecisionResult? DecideInMemory(string id, string approver, bool approve, string? reason)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(approver);
        if (!_entries.TryGetValue(id, out var entry))
        {
            return null;
        }

        var ticket = entry.Ticket;
        if (ticket.State != ApprovalState.Pending)
        {
            return ApprovalDecisionResult.NotPending;
        }

        // Denying one's own statement is harmless (it is withdrawing it); approving it is what four eyes prevent.
        if (approve && !AllowSelfApproval && string.Equals(approver, ticket.Request.Identity, StringComparison.Ordinal))
        {
            return ApprovalDecisionResult.SelfApprovalRefused;
        }

        if (!ticket.TryComplete(approve ? ApprovalState.Approved : ApprovalState.Denied, approver, reason))
        {
            return ApprovalDecisionResult.NotPending;
        }

        Finished(entry);
        return ApprovalDecisionResult.Done;
    }

    /// <summary>Expires requests past their deadline and stores every request that left Pending. Internal: tests drive it.</summary>
    internal void Sweep()
    {
        var now = _time.GetUtcNow();
        foreach (var (id, entry) in _entries)
        {
            var ticket = entry.Ticket;
            if (ticket.State == ApprovalState.Pending && ticket.Request.ExpiresAt <= now)
            {
                ticket.TryComplete(ApprovalState.Expired, null, "no decision before the deadline");
            }

            if (ticket.State != ApprovalState.Pending)
            {
                Finished(entry);
                if (now - entry.FinishedAt > KeepDecided)
                {
                    _entries.TryRemove(id, out _);
                }
            }
        }
    }

    /// <summary>Stores, audits and logs a request's final state, once.</summary>
    private void Finished(Entry entry)
    {
        if (Interlocked.Exchange(ref entry.Stored, 1) != 0)
        {
            return;
        }

        var now = _time.GetUtcNow();
        entry.FinishedAt = now;
        var ticket = entry.Ticket;
        var request = ticket.Request;
        var state = ticket.State;
        var at = ticket.DecidedAt ?? now;
        Enqueue(request.Id, () => _store.CompleteApprovalAsync(request.Id, state, ticket.DecidedBy, at, ticket.Reason));
        string kind = state switch
        {
            ApprovalState.Approved => AuditKinds.ApprovalApproved,
            ApprovalState.Denied => AuditKinds.ApprovalDenied,
            ApprovalState.Expired => AuditKinds.ApprovalExpired,
            _ => AuditKinds.ApprovalWithdrawn,
        };
        _audit.Record(new AuditEvent(at, kind, request.Identity, request.Connection, request.SessionId, request.Id, ticket.DecidedBy, ticket.Reason));
        StateLog.ApprovalCompleted(_logger, request.Id, SqliteStateStore.Name(state), ticket.DecidedBy ?? (state == ApprovalState.Expired ? "deadline" : "client"));
    }

    private void Enqueue(string id, Func<Task> write)
    {
        _writes.Writer.TryWrite(async () =>
        {
            try
            {
                await write().ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                StateLog.ApprovalStoreFailed(_logger, id, ex);
            }
        });
    }

    private async Task WriteLoopAsync()
    {
        await foreach (var write in _writes.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            await write().ConfigureAwait(false);
        }
    }

    private static ApprovalRecord Record(ApprovalTicket t) =>
        new(t.Request, t.State, t.DecidedBy, t.State == ApprovalState.Pending ? null : t.DecidedAt, t.Reason);

    private static string Shorten(string text, int max) => text.Length <= max ? text : string.Concat(text.AsSpan(0, max), " ...");

    /// <summary>Stops the sweep and lets queued store writes finish (up to 5 s).</summary>
    public async ValueTask DisposeAsync()
    {
        if (_timer is not null)
        {
            await _timer.DisposeAsync().ConfigureAwait(false);
        }

        // Requests still pending now belong to sessions that are gone: store what left Pending, then stop the writer.
        Sweep();
        _writes.Writer.TryComplete();
        await _writer.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private sealed class Entry(ApprovalTicket ticket)
    {
        public ApprovalTicket Ticket { get; } = ticket;

        /// <summary>1 once the final state was queued for the store.</summary>
        public int Stored;

        public DateTimeOffset FinishedAt { get; set; } = DateTimeOffset.MaxValue;
    }
}
