using System.Collections.Frozen;
using Gatehouse.Engine.Sessions;
using Gatehouse.Host.Admin;
using Gatehouse.Policy.Access;
using Gatehouse.Policy.Rules;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Host.State;

/// <summary>How just-in-time grants are decided (the <c>approvals</c> config section).</summary>
/// <param name="AllowSelfApproval">Whether an identity may approve its own request (<c>approvals.allow_self_approval</c>).</param>
/// <param name="RequestTimeout">How long an access request waits for a decision (<c>approvals.request_timeout</c>).</param>
public sealed record AccessOptions(bool AllowSelfApproval = false, TimeSpan? RequestTimeout = null)
{
    public TimeSpan PendingTimeout => RequestTimeout ?? TimeSpan.FromHours(24);
}

/// <summary>What an access operation came to: errors are data, with a sentence for the person who asked.</summary>
public enum AccessOutcome : byte
{
    Done,
    NotFound,

    /// <summary>Already decided, expired, revoked or ended: a request is decided once, a grant revoked once.</summary>
    NotPending,

    /// <summary>The approver is the requester, and <c>approvals.allow_self_approval</c> is off.</summary>
    SelfApprovalRefused,

    /// <summary>The request breaks the policy or is incomplete (no grant binding, too long, no reason).</summary>
    Invalid,
}

/// <summary>The outcome of an access operation and the records it touched.</summary>
public sealed record AccessResult(AccessOutcome Outcome, string? Error = null, AccessRequestRecord? Request = null, GrantRecord? Grant = null,
    int SessionsEnded = 0)
{
    public bool Succeeded => Outcome == AccessOutcome.Done;
}

/// <summary>
/// Just-in-time grants: requests (approved by a person, or at once when the binding's <c>auto_approve</c> covers
/// them), decisions, revocation, and the in-memory view of live grants that logins consult
/// (<see cref="HasLiveGrant"/>: synchronous, no I/O). The store holds the truth; the view is rebuilt from it after
/// every change and every 30 seconds (another gateway may share the store). A grant that ends, by revocation or
/// by time, ends the identity's live sessions on that connection.
/// </summary>
public sealed class AccessService : IGrantCheck, IGroupMemory, IAsyncDisposable
{
    /// <summary>The approver recorded for grants the policy approved by itself.</summary>
    public const string AutoApprover = "auto_approve";

    private const int ListLimit = 1000;
    private static readonly TimeSpan RefreshInterval = TimeSpan.FromSeconds(30);

    private readonly IStateStore _store;
    private readonly PolicyStore _policy;
    private readonly SessionRegistry? _sessions;
    private readonly IAuditSink _audit;
    private readonly AccessOptions _options;
    private readonly ILogger _logger;
    private readonly WebhookAnnouncer? _announcer;
    private readonly Func<string, bool> _isKnownConnection;
    private readonly Func<string, IReadOnlyCollection<string>> _groupsOf;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (string[] Groups, DateTimeOffset Until)> _groupsSeen =
        new(StringComparer.Ordinal);
    private GrantCache _cache = GrantCache.Empty;
    private ITimer? _timer;
    private int _sweeping;
    private DateTimeOffset _lastRefresh;

    /// <param name="sessions">The gateway's sessions, ended when their grant ends; null: none to end (tests).</param>
    /// <param name="isKnownConnection">Whether a connection is configured; null accepts any name.</param>
    /// <param name="groupsOf">
    /// The groups of an identity, for bindings that name groups and for <c>auto_approve</c>; null: the groups its
    /// last login reported through <see cref="Remember"/>, while that login's credential is valid (static
    /// identities have none).
    /// </param>
    public AccessService(IStateStore store, PolicyStore policy, SessionRegistry? sessions, IAuditSink audit, AccessOptions options, ILogger logger,
        WebhookAnnouncer? announcer = null, Func<string, bool>? isKnownConnection = null, Func<string, IReadOnlyCollection<string>>? groupsOf = null,
        TimeProvider? time = null)
    {
        _store = store;
        _policy = policy;
        _sessions = sessions;
        _audit = audit;
        _options = options;
        _logger = logger;
        _announcer = announcer;
        _isKnownConnection = isKnownConnection ?? (_ => true);
        _groupsOf = groupsOf ?? RememberedGroups;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Loads the live grants and starts the once-a-second upkeep (expiry of requests and grants).</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        await RefreshAsync(cancellationToken).ConfigureAwait(false);
        _timer = _time.CreateTimer(static state => ((AccessService)state!).OnTimer(), this, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    // ---- The login check -------------------------------------------------------------------------------------

    public bool HasLiveGrant(string identity, string connection, string role, DateTimeOffset now, out DateTimeOffset end)
    {
        end = default;
        if (!Volatile.Read(ref _cache).ByKey.TryGetValue((identity, connection, role), out var grants))
        {
            return false;
        }

        bool live = false;
        foreach (var grant in grants)
        {
            if (grant.IsLive(now))
            {
                live = true;
                if (grant.End > end)
                {
                    end = grant.End;
                }
            }
        }

        return live;
    }

    public void Remember(string identity, IReadOnlyCollection<string> groups, DateTimeOffset until)
    {
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(groups);
        _groupsSeen[identity] = ([.. groups], until);
    }

    private string[] RememberedGroups(string identity) =>
        _groupsSeen.TryGetValue(identity, out var seen) && seen.Until > _time.GetUtcNow() ? seen.Groups : [];

    // ---- Requests ----------------------------------------------------------------------------------------------

    /// <summary>
    /// Asks for <paramref name="role"/> (null: the role of the first grant binding that matches) on
    /// <paramref name="connection"/> for <paramref name="duration"/>. The request is pending, or approved at once
    /// with its grant when the binding's <c>auto_approve</c> covers the identity's groups and the duration.
    /// </summary>
    public async Task<AccessResult> RequestAsync(string identity, string connection, string? role, TimeSpan duration, string reason,
        CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(identity))
        {
            return Invalid("an access request needs the identity it is for");
        }

        if (string.IsNullOrWhiteSpace(connection))
        {
            return Invalid("an access request needs a connection");
        }

        if (string.IsNullOrWhiteSpace(reason))
        {
            return Invalid("an access request needs a reason (it is shown to the approver and kept in the audit log)");
        }

        if (duration <= TimeSpan.Zero)
        {
            return Invalid("an access request needs a positive duration, such as 30m or 1h");
        }

        if (!_isKnownConnection(connection))
        {
            return Invalid($"connection \"{connection}\" is not configured on this gateway");
        }

        role = string.IsNullOrWhiteSpace(role) ? null : role;
        var groups = _groupsOf(identity);
        var terms = _policy.Current.FindGrantTerms(identity, groups, connection, role);
        if (terms is null)
        {
            return Invalid(role is null
                ? $"no policy binding with access: grant lets \"{identity}\" request a role on connection \"{connection}\""
                : $"no policy binding with access: grant gives \"{identity}\" role \"{role}\" on connection \"{connection}\"");
        }

        if (duration > terms.MaxDuration)
        {
            return Invalid($"{DurationText.Format(duration)} is longer than the policy allows for role \"{terms.Role}\" on \"{connection}\" "
                           + $"(max_duration {DurationText.Format(terms.MaxDuration)})");
        }

        var now = _time.GetUtcNow();
        var request = new AccessRequestRecord(StateIds.New(StateIds.AccessRequest), identity, connection, terms.Role, duration, reason.Trim(), now,
            now + _options.PendingTimeout);
        GrantRecord? grant = null;
        if (terms.AutoApproves(groups, duration))
        {
            string group = groups.First(g => terms.AutoApproveGroups!.Contains(g));
            grant = new GrantRecord(StateIds.New(StateIds.Grant), request.Id, identity, connection, terms.Role, now, now + duration, AutoApprover,
                request.Reason);
            request = request with
            {
                State = AccessRequestState.Approved,
                DecidedBy = AutoApprover,
                DecidedAt = now,
                DecisionReason = $"auto_approve: member of group {group}, at most {DurationText.Format(terms.AutoApproveMaxDuration)}",
                GrantId = grant.Id,
            };
        }

        await _store.AddAccessRequestAsync(request, grant, cancellationToken).ConfigureAwait(false);
        _audit.Record(new AuditEvent(now, AuditKinds.AccessRequested, identity, connection, Subject: request.Id,
            Detail: $"role {request.Role} for {DurationText.Format(duration)}: {request.Reason}"));
        StateLog.AccessRequested(_logger, request.Id, identity, request.Role, connection, DurationText.Format(duration));
        if (grant is not null)
        {
            await GrantedAsync(request, grant, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            _announcer?.Announce("access request", request.Id, new
            {
                type = AuditKinds.AccessRequested,
                text = $"Gatehouse: {identity} asks for role {request.Role} on {connection} for {DurationText.Format(duration)}: "
                       + $"{request.Reason}. Approve with `gatehouse access approve {request.Id}`, deny with `gatehouse access deny {request.Id}`.",
                request = AccessRequestView.From(request),
                approve_command = $"gatehouse access approve {request.Id}",
                deny_command = $"gatehouse access deny {request.Id}",
            });
        }

        return new AccessResult(AccessOutcome.Done, Request: request, Grant: grant);
    }

    /// <summary>
    /// Approves or denies a pending request as <paramref name="approver"/>. Approval checks the policy again (it may
    /// have changed since the request) and starts the grant now, for the requested duration.
    /// </summary>
    public async Task<AccessResult> DecideAsync(string id, string approver, bool approve, string? reason = null, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(approver))
        {
            return Invalid("a decision needs the approver's name");
        }

        var request = await _store.GetAccessRequestAsync(id, cancellationToken).ConfigureAwait(false);
        if (request is null)
        {
            return new AccessResult(AccessOutcome.NotFound, $"no access request {id}");
        }

        var now = _time.GetUtcNow();
        if (request.State != AccessRequestState.Pending || request.ExpiresAt <= now)
        {
            return new AccessResult(AccessOutcome.NotPending,
                $"access request {id} is {(request.State == AccessRequestState.Pending ? "expired" : SqliteStateStore.Name(request.State))}; a request is decided once",
                request);
        }

        if (approve && !_options.AllowSelfApproval && string.Equals(approver, request.Identity, StringComparison.Ordinal))
        {
            return new AccessResult(AccessOutcome.SelfApprovalRefused,
                $"{approver} cannot approve their own request; someone else must (or set approvals.allow_self_approval)", request);
        }

        GrantRecord? grant = null;
        if (approve)
        {
            var terms = _policy.Current.FindGrantTerms(request.Identity, _groupsOf(request.Identity), request.Connection, request.Role);
            if (terms is null)
            {
                return new AccessResult(AccessOutcome.Invalid,
                    $"the policy no longer has a binding with access: grant that gives \"{request.Identity}\" role \"{request.Role}\" on \"{request.Connection}\"; deny the request",
                    request);
            }

            if (request.Duration > terms.MaxDuration)
            {
                return new AccessResult(AccessOutcome.Invalid,
                    $"the policy now allows at most {DurationText.Format(terms.MaxDuration)} for role \"{request.Role}\" on \"{request.Connection}\"; deny the request",
                    request);
            }

            grant = new GrantRecord(StateIds.New(StateIds.Grant), request.Id, request.Identity, request.Connection, request.Role, now, now + request.Duration,
                approver, request.Reason);
        }

        var state = approve ? AccessRequestState.Approved : AccessRequestState.Denied;
        if (!await _store.DecideAccessRequestAsync(id, state, approver, now, reason, grant, cancellationToken).ConfigureAwait(false))
        {
            var current = await _store.GetAccessRequestAsync(id, cancellationToken).ConfigureAwait(false);
            return new AccessResult(AccessOutcome.NotPending, $"access request {id} was decided meanwhile; a request is decided once", current);
        }

        var decided = request with { State = state, DecidedBy = approver, DecidedAt = now, DecisionReason = reason, GrantId = grant?.Id };
        if (grant is not null)
        {
            await GrantedAsync(decided, grant, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            _audit.Record(new AuditEvent(now, AuditKinds.AccessDenied, request.Identity, request.Connection, Subject: id, Actor: approver, Detail: reason));
            StateLog.AccessDenied(_logger, id, approver);
        }

        return new AccessResult(AccessOutcome.Done, Request: decided, Grant: grant);
    }

    private async Task GrantedAsync(AccessRequestRecord request, GrantRecord grant, CancellationToken cancellationToken)
    {
        _audit.Record(new AuditEvent(grant.Start, AuditKinds.AccessApproved, request.Identity, request.Connection, Subject: request.Id, Actor: grant.Approver,
            Detail: request.DecisionReason));
        _audit.Record(new AuditEvent(grant.Start, AuditKinds.GrantStarted, grant.Identity, grant.Connection, Subject: grant.Id, Actor: grant.Approver,
            Detail: $"role {grant.Role} until {grant.End:u}"));
        StateLog.AccessApproved(_logger, request.Id, grant.Approver, grant.Id, grant.Identity, grant.Role, grant.Connection, grant.End);
        await RefreshAsync(cancellationToken).ConfigureAwait(false);
    }

    // ---- Grants --------------------------------------------------------------------------------------------------

    /// <summary>
    /// Revokes a grant now and ends the identity's live sessions on the grant's connection at once (they may
    /// reconnect under whatever access remains).
    /// </summary>
    public async Task<AccessResult> RevokeAsync(string grantId, string revokedBy, string? reason = null, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(revokedBy))
        {
            return Invalid("a revocation needs the name of who revokes");
        }

        var grant = await _store.GetGrantAsync(grantId, cancellationToken).ConfigureAwait(false);
        if (grant is null)
        {
            return new AccessResult(AccessOutcome.NotFound, $"no grant {grantId}");
        }

        var now = _time.GetUtcNow();
        if (!await _store.RevokeGrantAsync(grantId, revokedBy, now, reason, cancellationToken).ConfigureAwait(false))
        {
            return new AccessResult(AccessOutcome.NotPending, $"grant {grantId} is {grant.StatusAt(now)} already", Grant: grant);
        }

        var revoked = grant with { RevokedAt = now, RevokedBy = revokedBy, RevokeReason = reason };
        // The view first, so a reconnect that races the kill already finds no grant.
        await RefreshAsync(cancellationToken).ConfigureAwait(false);
        string why = $"grant {grantId} revoked by {revokedBy}{(string.IsNullOrWhiteSpace(reason) ? "" : ": " + reason)}";
        int ended = EndSessions(grant.Identity, grant.Connection, why, now);
        _audit.Record(new AuditEvent(now, AuditKinds.GrantRevoked, grant.Identity, grant.Connection, Subject: grantId, Actor: revokedBy,
            Detail: $"{reason}; {ended} session(s) ended"));
        StateLog.GrantRevoked(_logger, grantId, grant.Identity, grant.Role, grant.Connection, revokedBy, ended);
        return new AccessResult(AccessOutcome.Done, Grant: revoked, SessionsEnded: ended);
    }

    public Task<AccessRequestRecord?> GetRequestAsync(string id, CancellationToken cancellationToken = default) =>
        _store.GetAccessRequestAsync(id, cancellationToken);

    public Task<IReadOnlyList<AccessRequestRecord>> ListRequestsAsync(bool all, CancellationToken cancellationToken = default) =>
        _store.ListAccessRequestsAsync(all, ListLimit, cancellationToken);

    public Task<GrantRecord?> GetGrantAsync(string id, CancellationToken cancellationToken = default) => _store.GetGrantAsync(id, cancellationToken);

    /// <summary>Live grants, or every grant when <paramref name="all"/> (newest first).</summary>
    public Task<IReadOnlyList<GrantRecord>> ListGrantsAsync(bool all, CancellationToken cancellationToken = default) =>
        _store.ListGrantsAsync(all, _time.GetUtcNow(), ListLimit, cancellationToken);

    /// <summary>The clock grants are measured against.</summary>
    public DateTimeOffset Now => _time.GetUtcNow();

    // ---- Upkeep ----------------------------------------------------------------------------------------------------

    private void OnTimer()
    {
        if (Interlocked.Exchange(ref _sweeping, 1) == 0)
        {
            _ = SweepGuardedAsync();
        }
    }

    private async Task SweepGuardedAsync()
    {
        try
        {
            await SweepAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            StateLog.SweepFailed(_logger, ex);
        }
        finally
        {
            Volatile.Write(ref _sweeping, 0);
        }
    }

    /// <summary>
    /// Expires requests past their deadline, ends the sessions of grants that ran out, and refreshes the view of
    /// live grants now and then. Runs every second; internal so tests can drive it with their own clock.
    /// </summary>
    internal async Task SweepAsync(CancellationToken cancellationToken = default)
    {
        var now = _time.GetUtcNow();
        foreach (var expired in await _store.ExpireAccessRequestsAsync(now, cancellationToken).ConfigureAwait(false))
        {
            _audit.Record(new AuditEvent(now, AuditKinds.AccessExpired, expired.Identity, expired.Connection, Subject: expired.Id,
                Detail: "no decision before the deadline"));
            StateLog.AccessExpired(_logger, expired.Id);
        }

        var cache = Volatile.Read(ref _cache);
        if (cache.NextEnd <= now)
        {
            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                cache = Volatile.Read(ref _cache);
                var ended = cache.All.Where(g => g.End <= now).ToList();
                await RefreshLockedAsync(now, cancellationToken).ConfigureAwait(false);
                foreach (var grant in ended)
                {
                    // Another live grant of the same role keeps the sessions; the ended grant is only recorded.
                    int sessions = HasLiveGrant(grant.Identity, grant.Connection, grant.Role, now, out _)
                        ? 0
                        : EndSessions(grant.Identity, grant.Connection, $"grant {grant.Id} expired at {grant.End:u}", now);
                    _audit.Record(new AuditEvent(now, AuditKinds.GrantExpired, grant.Identity, grant.Connection, Subject: grant.Id,
                        Detail: $"role {grant.Role}; {sessions} session(s) ended"));
                    StateLog.GrantExpired(_logger, grant.Id, grant.Identity, grant.Role, grant.Connection, sessions);
                }
            }
            finally
            {
                _gate.Release();
            }
        }
        else if (now - _lastRefresh >= RefreshInterval)
        {
            await RefreshAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Rebuilds the view of live grants from the store.</summary>
    internal async Task RefreshAsync(CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await RefreshLockedAsync(_time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task RefreshLockedAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        var live = await _store.ListGrantsAsync(all: false, now, int.MaxValue, cancellationToken).ConfigureAwait(false);
        Volatile.Write(ref _cache, GrantCache.Build(live));
        _lastRefresh = now;
    }

    /// <summary>Ends the live sessions of <paramref name="identity"/> on <paramref name="connection"/>; returns how many.</summary>
    private int EndSessions(string identity, string connection, string why, DateTimeOffset now)
    {
        if (_sessions is null)
        {
            return 0;
        }

        int ended = 0;
        foreach (var session in _sessions.List())
        {
            if (session.Stage < SessionStage.Ending
                && string.Equals(session.Identity, identity, StringComparison.Ordinal)
                && string.Equals(session.ConnectionName, connection, StringComparison.Ordinal))
            {
                session.Abort(SessionEndReason.Killed, PeerSide.Gateway, why);
                _audit.Record(new AuditEvent(now, AuditKinds.SessionKilled, identity, connection, session.Id, Actor: "gateway", Detail: why));
                ended++;
            }
        }

        return ended;
    }

    private static AccessResult Invalid(string error) => new(AccessOutcome.Invalid, error);

    public async ValueTask DisposeAsync()
    {
        if (_timer is not null)
        {
            await _timer.DisposeAsync().ConfigureAwait(false);
        }

        // Let a running sweep finish before the store goes away.
        var deadline = Environment.TickCount64 + 5000;
        while (Volatile.Read(ref _sweeping) != 0 && Environment.TickCount64 < deadline)
        {
            await Task.Delay(20).ConfigureAwait(false);
        }

        _gate.Dispose();
    }

    /// <summary>The live grants by (identity, connection, role), immutable, swapped whole.</summary>
    private sealed class GrantCache
    {
        public static readonly GrantCache Empty = Build([]);

        private GrantCache(FrozenDictionary<(string, string, string), GrantRecord[]> byKey, GrantRecord[] all, DateTimeOffset nextEnd)
        {
            ByKey = byKey;
            All = all;
            NextEnd = nextEnd;
        }

        public FrozenDictionary<(string Identity, string Connection, string Role), GrantRecord[]> ByKey { get; }

        public GrantRecord[] All { get; }

        /// <summary>The earliest end among the live grants: the sweep has nothing to end before it.</summary>
        public DateTimeOffset NextEnd { get; }

        public static GrantCache Build(IReadOnlyList<GrantRecord> live) => new(
            live.GroupBy(g => (g.Identity, g.Connection, g.Role)).ToFrozenDictionary(g => g.Key, g => g.ToArray()),
            [.. live],
            live.Count == 0 ? DateTimeOffset.MaxValue : live.Min(g => g.End));
    }
}
