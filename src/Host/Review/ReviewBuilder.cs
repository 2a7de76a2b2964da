using System.Globalization;
using Gatehouse.Engine.Recording;
using Gatehouse.Host.Recordings;
using Gatehouse.Host.State;
using Gatehouse.Policy.Access;
using Gatehouse.Policy.Approvals;

namespace Gatehouse.Host.Review;

/// <summary>What a review covers and what it knows besides the state store and the recordings.</summary>
public sealed record ReviewOptions
{
    /// <summary>The window's start (inclusive).</summary>
    public required DateTimeOffset Since { get; init; }

    /// <summary>The window's end (exclusive).</summary>
    public required DateTimeOffset Until { get; init; }

    /// <summary>Now: statuses are as of then. Default: the system clock.</summary>
    public DateTimeOffset? Now { get; init; }

    /// <summary>Only these identities (empty: all).</summary>
    public IReadOnlyList<string> Identities { get; init; } = [];

    /// <summary>Only these connections (empty: all).</summary>
    public IReadOnlyList<string> Connections { get; init; } = [];

    /// <summary>Standing access by policy binding (<see cref="StandingAccessReader"/>); empty: grants only.</summary>
    public IReadOnlyList<StandingAccess> Standing { get; init; } = [];

    /// <summary>
    /// The identities whose standing access <see cref="Standing"/> lists completely (the static identities). A session
    /// of one of them with neither a grant nor a standing binding is flagged <c>unexplained</c>.
    /// </summary>
    public IReadOnlySet<string> StandingKnown { get; init; } = new HashSet<string>(StringComparer.Ordinal);

    /// <summary>Notes for the report's warnings (recording off, reader unavailable).</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];
}

/// <summary>
/// Builds the access review from the state store (grants, access requests, held-statement approvals, sessions)
/// and the recorded sessions (<see cref="IReviewSessionSource"/>). Reads only.
/// </summary>
/// <remarks>
/// A session runs under the grant that matches its identity, connection and role and was live when it started
/// (the one ending last, as the gateway's login check picks). Sessions the state store knows of are matched to
/// recordings by identity, connection and start time; the ones without a recording are reported as such (what
/// they ran is unknown) and still count as use of access. The session source is asked for the window widened to
/// the whole lifetimes of the grants in it, so a grant used only outside the window is not reported unused.
/// </remarks>
public sealed class ReviewBuilder(IStateStore store, IReviewSessionSource sessions)
{
    /// <summary>The integrity of a session without a recording.</summary>
    public const string IntegrityMissing = "missing";

    /// <summary>The integrity of a recording whose evidence is not trustworthy.</summary>
    public const string IntegrityDamaged = "damaged";

    /// <summary>The integrity of a recording without its final seal: possibly cut short.</summary>
    public const string IntegrityUnsealed = "unsealed";

    /// <summary>The decision of a refused statement.</summary>
    public const string DecisionDenied = "denied";

    /// <summary>The identity shown for a recording that names none.</summary>
    public const string UnknownIdentity = "(unknown)";

    /// <summary>How far a recording's start may be from the state store's session start and still be that session's.</summary>
    private static readonly TimeSpan s_matchBefore = TimeSpan.FromSeconds(2);

    private static readonly TimeSpan s_matchAfter = TimeSpan.FromMinutes(2);

    /// <summary>The end reason the state store gives a login refused after authentication.</summary>
    private static readonly string s_refusedAtLogin = SessionAuditor.Reason(Engine.Sessions.SessionEndReason.AuthorizationFailed);

    /// <summary>Reads and assembles the report.</summary>
    public async Task<ReviewReport> BuildAsync(ReviewOptions options, CancellationToken ct = default)
    {
        var now = options.Now ?? DateTimeOffset.UtcNow;
        var (since, until) = (options.Since, options.Until);
        if (since >= until)
        {
            throw new ReviewInputException("the window is empty: since must be before until");
        }

        bool Wanted(string? identity, string? connection) =>
            (options.Identities.Count == 0 || (identity is not null && options.Identities.Contains(identity, StringComparer.Ordinal)))
            && (options.Connections.Count == 0 || (connection is not null && options.Connections.Contains(connection, StringComparer.Ordinal)));

        // ---- The state store ----------------------------------------------------------------------------------
        var requests = await store.ListAccessRequestsAsync(all: true, int.MaxValue, ct).ConfigureAwait(false);
        var requestsById = requests.ToDictionary(r => r.Id, StringComparer.Ordinal);
        var grants = (await store.ListGrantsAsync(all: true, now, int.MaxValue, ct).ConfigureAwait(false))
            .Where(g => Wanted(g.Identity, g.Connection) && g.Start < until && EffectiveEnd(g) > since)
            .OrderBy(g => g.Start).ThenBy(g => g.Id, StringComparer.Ordinal)
            .ToList();
        var approvals = (await store.ListApprovalsAsync(all: true, int.MaxValue, ct).ConfigureAwait(false))
            .Where(a => Wanted(a.Request.Identity, a.Request.Connection) && a.Request.RequestedAt >= since && a.Request.RequestedAt < until)
            .ToList();

        // ---- Sessions: the window widened to whole grants, so use outside the window still counts --------------
        var rangeSince = grants.Count == 0 ? since : Min(since, grants.Min(g => g.Start));
        var rangeUntil = grants.Count == 0 ? until : Max(until, Min(now, grants.Max(EffectiveEnd)));
        var recorded = (await sessions.ListAsync(rangeSince, rangeUntil, ct).ConfigureAwait(false))
            .Where(s => Wanted(s.Identity, s.Connection))
            .OrderBy(s => s.Start).ThenBy(s => s.SessionId, StringComparer.Ordinal)
            .ToList();
        var stored = (await store.ListSessionsAsync(int.MaxValue, ct).ConfigureAwait(false))
            .Where(s => s.Identity is not null && !RefusedAtLogin(s) && Wanted(s.Identity, s.Connection) && s.StartedAt < rangeUntil
                        && (s.EndedAt ?? now) >= rangeSince)
            .OrderBy(s => s.StartedAt).ThenBy(s => s.Instance, StringComparer.Ordinal).ThenBy(s => s.SessionId)
            .ToList();
        var unrecorded = Unrecorded(stored, recorded);

        var standing = options.Standing.Where(a => Wanted(a.Identity, a.Connection)).ToList();
        List<SessionReview> all =
        [
            .. recorded.Select(s => FromRecording(s, grants, standing, options.StandingKnown)),
            .. unrecorded.Select(s => FromStore(s, grants, now)),
        ];

        var sessionsByGrant = all.Where(s => s.GrantId is not null).GroupBy(s => s.GrantId!, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.OrderBy(s => s.Start).Select(s => s.Id).ToList(), StringComparer.Ordinal);
        var inWindow = all.Where(s => s.Start < until && (s.End ?? now) >= since)
            .OrderBy(s => s.Start).ThenBy(s => s.Id, StringComparer.Ordinal)
            .ToList();
        var ticketSessions = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var session in inWindow)
        {
            foreach (var statement in session.Statements)
            {
                if (statement.Ticket is { } ticket)
                {
                    ticketSessions.TryAdd(ticket, session.Id);
                }
            }
        }

        // ---- Per identity -------------------------------------------------------------------------------------
        var grantReviews = grants.Select(g => ToReview(g, requestsById, sessionsByGrant, now)).ToList();
        var requestReviews = requests
            .Where(r => r.State != AccessRequestState.Approved && Wanted(r.Identity, r.Connection))
            .Select(r => (Record: r, Review: ToReview(r, now)))
            .Where(r => r.Record.RequestedAt < until && (r.Review.DecidedAt ?? now) >= since)
            .OrderBy(r => r.Record.RequestedAt).ThenBy(r => r.Record.Id, StringComparer.Ordinal)
            .ToList();
        var approvalReviews = approvals
            .OrderBy(a => a.Request.RequestedAt).ThenBy(a => a.Request.Id, StringComparer.Ordinal)
            .Select(a => (a.Request.Identity, Review: ToReview(a, ticketSessions)))
            .ToList();

        var names = new SortedSet<string>(StringComparer.Ordinal);
        names.UnionWith(grants.Select(g => g.Identity));
        names.UnionWith(requestReviews.Select(r => r.Record.Identity));
        names.UnionWith(inWindow.Select(IdentityOf));
        names.UnionWith(approvalReviews.Select(a => a.Identity));
        names.UnionWith(standing.Select(a => a.Identity));

        var identities = new List<IdentityReview>();
        foreach (var name in names)
        {
            var mine = grantReviews.Where(g => g.Identity == name).ToList();
            var myStanding = standing.Where(a => a.Identity == name).OrderBy(a => a.Connection, StringComparer.Ordinal).ToList();
            var mySessions = inWindow.Where(s => IdentityOf(s) == name).ToList();
            var unused = new List<UnusedAccess>();
            unused.AddRange(mine.Where(g => !g.Used).Select(g => new UnusedAccess
            {
                Kind = AccessGrant, Connection = g.Connection, Role = g.Role, GrantId = g.Id, From = g.Start, Until = g.EffectiveEnd,
            }));
            unused.AddRange(myStanding
                .Where(a => !mySessions.Any(s => s.Access == AccessStanding && s.Connection == a.Connection))
                .Select(a => new UnusedAccess { Kind = AccessStanding, Connection = a.Connection, Role = a.Role }));
            identities.Add(new IdentityReview
            {
                Identity = name,
                Grants = mine,
                Requests = [.. requestReviews.Where(r => r.Record.Identity == name).Select(r => r.Review)],
                Sessions = mySessions,
                Approvals = [.. approvalReviews.Where(a => a.Identity == name).Select(a => a.Review)],
                Standing = myStanding,
                Unused = unused,
            });
        }

        var reviewed = identities.SelectMany(i => i.Sessions).ToList();
        var summary = new ReviewSummary
        {
            Identities = identities.Count,
            Grants = grantReviews.Count,
            RevokedGrants = grantReviews.Count(g => g.RevokedAt is not null),
            DeniedRequests = requestReviews.Count(r => r.Review.State == "denied"),
            ExpiredRequests = requestReviews.Count(r => r.Review.State == "expired"),
            Sessions = reviewed.Count,
            Statements = reviewed.Sum(s => s.StatementCount),
            Denied = reviewed.Sum(s => s.Denied),
            Held = reviewed.Sum(s => s.Held),
            Masked = reviewed.Sum(s => s.MaskedValues),
            Approvals = approvalReviews.Count,
            UnusedGrants = identities.Sum(i => i.Unused.Count(u => u.Kind == AccessGrant)),
            UnusedStanding = identities.Sum(i => i.Unused.Count(u => u.Kind == AccessStanding)),
            DamagedRecordings = reviewed.Count(s => s.Damaged),
            UnrecordedSessions = reviewed.Count(s => s.Integrity == IntegrityMissing),
        };

        return new ReviewReport
        {
            GeneratedAt = now,
            Since = since,
            Until = until,
            IdentityFilter = options.Identities,
            ConnectionFilter = options.Connections,
            Summary = summary,
            Identities = identities,
            Warnings = Warnings(identities, options.Notes),
        };
    }

    /// <summary>What gave a session access: a grant.</summary>
    public const string AccessGrant = "grant";

    /// <summary>What gave a session access: a standing binding.</summary>
    public const string AccessStanding = "standing";

    /// <summary>Neither a grant nor a standing binding the current policy knows explains the session.</summary>
    public const string AccessUnexplained = "unexplained";

    private static string IdentityOf(SessionReview session) => session.Identity ?? UnknownIdentity;

    private static SessionReview FromRecording(RecordedSession s, IReadOnlyList<GrantRecord> grants, IReadOnlyList<StandingAccess> standing,
        IReadOnlySet<string> standingKnown)
    {
        var grant = GrantOf(grants, s.Identity, s.Connection, s.Role, s.Start);
        string access = grant is not null ? AccessGrant
            : s.Identity is not null && standingKnown.Contains(s.Identity)
              && !standing.Any(a => a.Identity == s.Identity && a.Connection == s.Connection && (s.Role is null || a.Role == s.Role))
                ? AccessUnexplained
                : AccessStanding;
        return new SessionReview
        {
            Id = s.SessionId,
            Identity = s.Identity,
            RecordingPath = s.Path,
            Connection = s.Connection,
            Role = s.Role,
            ClientAddress = s.ClientAddress,
            Start = s.Start,
            End = s.End,
            Duration = Between(s.Start, s.End),
            Access = access,
            GrantId = grant?.Id,
            StatementsByClass = new SortedDictionary<string, int>(s.StatementsByClass.ToDictionary(), StringComparer.Ordinal),
            MaskedValues = s.MaskedValues,
            Tables = s.Tables,
            EndReason = s.EndReason,
            EndDetail = s.EndDetail,
            Integrity = Name(s.Integrity),
            Problems = s.Problems,
            Statements = [.. s.Statements.Select(t => new StatementReview
            {
                At = s.Start + t.At,
                Message = t.Message,
                Text = t.Text,
                Parameters = t.Parameters,
                Class = t.Class,
                Decision = Name(t.Outcome),
                Rule = t.Rule,
                Held = t.WasHeld,
                Approver = t.Approver,
                Ticket = t.Ticket,
                Result = t.Result,
                MaskedValues = t.MaskedValues,
            })],
        };
    }

    private static SessionReview FromStore(SessionRecord s, IReadOnlyList<GrantRecord> grants, DateTimeOffset now)
    {
        // The role is not in the state store: any grant of the identity on the connection live at the start.
        var grant = GrantOf(grants, s.Identity, s.Connection, role: null, s.StartedAt);
        return new SessionReview
        {
            Id = $"{s.Instance}/{s.SessionId.ToString(CultureInfo.InvariantCulture)}",
            Identity = s.Identity,
            Connection = s.Connection,
            ClientAddress = s.Remote,
            Start = s.StartedAt,
            End = s.EndedAt,
            Duration = Between(s.StartedAt, s.EndedAt ?? now),
            Access = grant is null ? AccessStanding : AccessGrant,
            GrantId = grant?.Id,
            EndReason = s.EndReason,
            EndDetail = s.EndDetail,
            Integrity = IntegrityMissing,
            Problems = [s.EndedAt is null
                ? "no recording: the state store records this session as started and not ended; what it ran is unknown"
                : "no recording: the state store records this session, but what it ran is unknown"],
        };
    }

    /// <summary>The grant a session started under: identity, connection and role match, live at the start; the one ending last.</summary>
    internal static GrantRecord? GrantOf(IReadOnlyList<GrantRecord> grants, string? identity, string? connection, string? role, DateTimeOffset start) =>
        grants
            .Where(g => g.Identity == identity && g.Connection == connection && (role is null || g.Role == role)
                        && g.Start <= start && start < EffectiveEnd(g))
            .OrderByDescending(g => g.End).ThenByDescending(g => g.Start).ThenBy(g => g.Id, StringComparer.Ordinal)
            .FirstOrDefault();

    /// <summary>
    /// A login the gateway refused after authentication (a connection that does not exist or that the identity may
    /// not use, no binding, no live grant). The state store keeps it, since it reached an identity, but it had no
    /// access, ran nothing and was never recorded (recording starts once a login is authorized): it is no session
    /// of the review, nor use of access. The audit log keeps it.
    /// </summary>
    private static bool RefusedAtLogin(SessionRecord s) => s.EndReason == s_refusedAtLogin;

    /// <summary>
    /// The state store's sessions that have no recording. Each is matched to its recording by id first (the
    /// recording's session id is the store's run id and session number), for every session before any is matched
    /// otherwise, so that no session takes a recording that is another's by id; a session left over is matched to
    /// the recording left over of the same identity and connection that started closest to it, from 2 seconds before
    /// to 2 minutes after (recording starts once the client is authorized).
    /// </summary>
    private static List<SessionRecord> Unrecorded(List<SessionRecord> stored, List<RecordedSession> recorded)
    {
        var taken = new HashSet<RecordedSession>(ReferenceEqualityComparer.Instance);
        var byId = recorded.GroupBy(r => r.SessionId, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var unmatched = new List<SessionRecord>();
        foreach (var s in stored)
        {
            // Recordings are named as the state store keys its sessions: <run id>-<session number>.
            if (!byId.TryGetValue(string.Create(CultureInfo.InvariantCulture, $"{s.Instance}-{s.SessionId}"), out var exact) || !taken.Add(exact))
            {
                unmatched.Add(s);
            }
        }

        var missing = new List<SessionRecord>();
        foreach (var s in unmatched)
        {
            var best = recorded
                .Where(r => !taken.Contains(r) && r.Identity == s.Identity && r.Connection == s.Connection
                            && r.Start >= s.StartedAt - s_matchBefore && r.Start <= s.StartedAt + s_matchAfter
                            && !(s.EndedAt is { } ended && r.Start > ended + s_matchBefore))
                .MinBy(r => (r.Start - s.StartedAt).Duration());
            if (best is null)
            {
                missing.Add(s);
            }
            else
            {
                taken.Add(best);
            }
        }

        return missing;
    }

    private static GrantReview ToReview(GrantRecord g, Dictionary<string, AccessRequestRecord> requests, Dictionary<string, List<string>> sessionsByGrant,
        DateTimeOffset now)
    {
        AccessRequestRecord? request = g.RequestId is not null && requests.TryGetValue(g.RequestId, out var r) ? r : null;
        return new GrantReview
        {
            Id = g.Id,
            Identity = g.Identity,
            Connection = g.Connection,
            Role = g.Role,
            RequestId = g.RequestId,
            RequestedAt = request?.RequestedAt,
            Reason = g.Reason,
            ApprovedBy = g.Approver,
            ApprovedAt = request?.DecidedAt ?? g.Start,
            ApprovalReason = request?.DecisionReason,
            Start = g.Start,
            End = g.End,
            RevokedAt = g.RevokedAt,
            RevokedBy = g.RevokedBy,
            RevokeReason = g.RevokeReason,
            Status = g.StatusAt(now),
            SessionIds = sessionsByGrant.TryGetValue(g.Id, out var ids) ? ids : [],
        };
    }

    private static RequestReview ToReview(AccessRequestRecord r, DateTimeOffset now)
    {
        // A request still pending past its deadline is expired, whether or not a gateway has swept it yet.
        bool lapsed = r.State == AccessRequestState.Pending && r.ExpiresAt <= now;
        return new RequestReview
        {
            Id = r.Id,
            Connection = r.Connection,
            Role = r.Role,
            Duration = r.Duration,
            Reason = r.Reason,
            RequestedAt = r.RequestedAt,
            State = lapsed ? "expired" : SqliteStateStore.Name(r.State),
            DecidedBy = r.DecidedBy,
            DecidedAt = lapsed ? r.ExpiresAt : r.DecidedAt,
            DecisionReason = lapsed ? "no decision before the deadline" : r.DecisionReason,
        };
    }

    private static ApprovalReview ToReview(ApprovalRecord a, Dictionary<string, string> ticketSessions) => new()
    {
        Id = a.Request.Id,
        Connection = a.Request.Connection,
        Role = a.Request.Role,
        Rule = a.Request.Rule,
        Statement = a.Request.Statement,
        RequestedAt = a.Request.RequestedAt,
        State = SqliteStateStore.Name(a.State),
        DecidedBy = a.DecidedBy,
        DecidedAt = a.DecidedAt,
        Reason = a.Reason,
        SessionId = ticketSessions.TryGetValue(a.Request.Id, out var session) ? session : null,
    };

    private static List<string> Warnings(List<IdentityReview> identities, IReadOnlyList<string> notes)
    {
        var warnings = new List<string>();
        var sessions = identities.SelectMany(i => i.Sessions.Select(s => (i.Identity, Session: s))).ToList();
        foreach (var (identity, s) in sessions.Where(x => x.Session.Damaged))
        {
            warnings.Add($"DAMAGED RECORDING: session {s.Id} of {identity} ({s.RecordingPath}): {string.Join("; ", s.Problems)}. "
                         + "Its evidence is not trustworthy: what it says may have been altered or removed.");
        }

        foreach (var (identity, s) in sessions.Where(x => x.Session.Integrity == IntegrityUnsealed))
        {
            warnings.Add($"unsealed recording: session {s.Id} of {identity} ({s.RecordingPath}) has no final seal and may be cut short"
                         + (s.Problems.Count > 0 ? ": " + string.Join("; ", s.Problems) : ""));
        }

        int missing = sessions.Count(x => x.Session.Integrity == IntegrityMissing);
        if (missing > 0)
        {
            warnings.Add($"{missing} session(s) known to the state store have no recording: what they ran is not in this report");
        }

        foreach (var (identity, s) in sessions.Where(x => x.Session.Access == AccessUnexplained))
        {
            warnings.Add($"session {s.Id} of {identity} on {s.Connection} ran as role {s.Role} with no grant in the state store "
                         + "and no standing binding in the current policy (the policy may have changed since)");
        }

        warnings.AddRange(notes);
        return warnings;
    }

    /// <summary>Whether a warning is about a damaged recording (<see cref="Warnings"/> opens those with <c>DAMAGED</c>).</summary>
    internal static bool IsDamagedWarning(string warning) => warning.StartsWith("DAMAGED", StringComparison.Ordinal);

    internal static DateTimeOffset EffectiveEnd(GrantRecord g) => GrantReview.EffectiveEndOf(g.End, g.RevokedAt);

    /// <summary>The time from <paramref name="start"/> to <paramref name="end"/>; zero when the clock went back.</summary>
    private static TimeSpan Between(DateTimeOffset start, DateTimeOffset end) => end < start ? TimeSpan.Zero : end - start;

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;

    internal static string Name(RecordingIntegrity integrity) => integrity switch
    {
        RecordingIntegrity.Intact => "intact",
        RecordingIntegrity.Recovered => "recovered",
        RecordingIntegrity.Unsealed => IntegrityUnsealed,
        _ => IntegrityDamaged,
    };

    internal static string Name(RecordedDecision decision) => decision switch
    {
        RecordedDecision.Allowed => "allowed",
        RecordedDecision.Denied => DecisionDenied,
        RecordedDecision.Held => "held",
        RecordedDecision.Approved => "approved",
        RecordedDecision.Rejected => "rejected",
        RecordedDecision.Expired => "expired",
        _ => "unknown",
    };
}
