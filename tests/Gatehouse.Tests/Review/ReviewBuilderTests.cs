using Gatehouse.Engine.Recording;
using Gatehouse.Host.Review;
using Gatehouse.Policy.Access;

namespace Gatehouse.Tests.Review;

/// <summary>The review's model, from a real SQLite store filled through the access service and recorded sessions from the test.</summary>
public sealed class ReviewBuilderTests : IAsyncLifetime
{
    private static readonly DateTimeOffset T0 = ReviewScenario.T0;
    private ReviewScenario _scenario = null!;

    public async Task InitializeAsync() => _scenario = await ReviewScenario.CreateAsync();

    public async Task DisposeAsync() => await _scenario.DisposeAsync();

    [Fact]
    public async Task Grants_carry_who_asked_why_who_approved_when_and_how_they_ended()
    {
        var report = await _scenario.BuildAsync();
        Assert.Equal(["alice", "bob", "carol"], report.Identities.Select(i => i.Identity));
        var alice = report.Identities[0];
        var (g1, g2, g3) = (_scenario.Grants[0], _scenario.Grants[1], _scenario.Grants[2]);

        Assert.Equal([g1, g3], alice.Grants.Select(g => g.Id));
        var first = alice.Grants[0];
        Assert.Equal(("app", "writer", _scenario.Requests[0], T0, "ticket 42: fix the invoice totals"),
            (first.Connection, first.Role, first.RequestId, first.RequestedAt, first.Reason));
        Assert.Equal(("bob", T0.AddMinutes(5), "looks right"), (first.ApprovedBy, first.ApprovedAt, first.ApprovalReason));
        Assert.Equal((T0.AddMinutes(5), T0.AddMinutes(65), TimeSpan.FromHours(1), "expired"), (first.Start, first.End, first.Duration, first.Status));
        Assert.Null(first.RevokedAt);
        Assert.Equal(["101"], first.SessionIds);

        var unused = alice.Grants[1];
        Assert.Equal(("carol", T0.AddMinutes(55), false), (unused.ApprovedBy, unused.ApprovedAt, unused.Used));
        Assert.Equal(ReviewScenario.Xss, unused.Reason);

        var revoked = Assert.Single(report.Identities[2].Grants);
        Assert.Equal((g2, "revoked", "dave", T0.AddMinutes(40), "done early"), (revoked.Id, revoked.Status, revoked.RevokedBy, revoked.RevokedAt, revoked.RevokeReason));
        Assert.Equal((T0.AddMinutes(25), T0.AddMinutes(145), T0.AddMinutes(40)), (revoked.Start, revoked.End, revoked.EffectiveEnd));
        Assert.Equal(["201"], revoked.SessionIds);
    }

    [Fact]
    public async Task Requests_that_did_not_become_grants_are_listed_denied_or_expired()
    {
        var alice = (await _scenario.BuildAsync()).Identities[0];
        Assert.Equal(2, alice.Requests.Count);
        var denied = alice.Requests[0];
        Assert.Equal((_scenario.Requests[1], "denied", "dba", "bob", T0.AddMinutes(10), "use writer", "debug, locks"),
            (denied.Id, denied.State, denied.Role, denied.DecidedBy, denied.DecidedAt, denied.DecisionReason, denied.Reason));
        var expired = alice.Requests[1];
        Assert.Equal((_scenario.Requests[3], "expired", null, T0.AddMinutes(100), TimeSpan.FromHours(1)),
            (expired.Id, expired.State, expired.DecidedBy, expired.DecidedAt, expired.Duration));
    }

    [Fact]
    public async Task Sessions_are_matched_to_their_grant_by_identity_connection_role_and_time()
    {
        var report = await _scenario.BuildAsync();
        var alice = report.Identities[0];
        Assert.Equal(["101", "102"], alice.Sessions.Select(s => s.Id));

        var s101 = alice.Sessions[0];
        Assert.Equal(("grant", _scenario.Grants[0], "writer", "intact", "ClientTerminated"), (s101.Access, s101.GrantId, s101.Role, s101.Integrity, s101.EndReason));
        Assert.Equal((4, 1, 1, 3L, TimeSpan.FromMinutes(2)), (s101.StatementCount, s101.Denied, s101.Held, s101.MaskedValues, s101.Duration));
        Assert.Equal(["ddl", "read", "write"], s101.StatementsByClass.Keys);
        Assert.Equal([1, 1, 2], s101.StatementsByClass.Values);
        Assert.Equal(["public.t"], s101.Tables);
        var held = s101.Statements[3];
        Assert.Equal((T0.AddMinutes(11), true, "bob", "ap_test01", "allowed", "DELETE 1"), (held.At, held.Held, held.Approver, held.Ticket, held.Decision, held.Result));

        // Three hours in, as reader: alice's standing binding, no grant.
        var s102 = alice.Sessions[1];
        Assert.Equal(("standing", null, "damaged", true), (s102.Access, s102.GrantId, s102.Integrity, s102.Damaged));
        Assert.Equal(["block 2 does not match its seal"], s102.Problems);

        var carol = report.Identities[2].Sessions.Single();
        Assert.Equal(("grant", _scenario.Grants[1], "recovered", "Killed"), (carol.Access, carol.GrantId, carol.Integrity, carol.EndReason));
    }

    [Fact]
    public async Task A_session_with_the_grant_role_outside_the_grant_is_not_counted_under_it_and_a_role_without_access_is_unexplained()
    {
        var late = _scenario.Recorded[0] with { SessionId = "103", Start = T0.AddHours(2), End = T0.AddHours(2).AddMinutes(1), Statements = [] };
        var report = await _scenario.BuildAsync(source: new ListedSessionSource([.. _scenario.Recorded, late]));
        var session = report.Identities[0].Sessions.Single(s => s.Id == "103");
        Assert.Equal(("unexplained", null), (session.Access, session.GrantId));
        Assert.Contains(report.Warnings, w => w.StartsWith("session 103 of alice on app ran as role writer with no grant", StringComparison.Ordinal));
        Assert.Equal(["101"], report.Identities[0].Grants[0].SessionIds);
    }

    [Fact]
    public async Task A_state_store_session_without_a_recording_is_reported_as_missing_evidence_and_counts_as_use()
    {
        var report = await _scenario.BuildAsync();
        var bob = report.Identities[1];
        var session = Assert.Single(bob.Sessions);
        Assert.Equal(("run_a/2", "missing", "standing", null, T0.AddHours(4), TimeSpan.FromMinutes(5), "client_terminated"),
            (session.Id, session.Integrity, session.Access, session.Role, session.Start, session.Duration, session.EndReason));
        Assert.Empty(session.Statements);
        Assert.Empty(bob.Unused);

        // alice's state-store row (run_a/1) is her recorded session 101: not reported twice.
        Assert.DoesNotContain(report.Identities[0].Sessions, s => s.Id == "run_a/1");
        Assert.Equal(1, report.Summary.UnrecordedSessions);
    }

    [Fact]
    public async Task A_login_refused_after_authentication_is_no_session_and_no_use_of_access()
    {
        // dave may read app by policy and never got in; his refused login must not make that access look used.
        ReviewOptions WithDave(ReviewOptions o) => o with
        {
            Standing = [.. ReviewScenario.Standing, new StandingAccess("dave", "app", "reader")],
            StandingKnown = new HashSet<string>([.. ReviewScenario.StandingKnown, "dave"], StringComparer.Ordinal),
        };
        var before = await _scenario.BuildAsync(WithDave);

        // As the session auditor stores them: each reached an identity, none was authorized.
        await _scenario.Store.RecordSessionsAsync(
        [
            new SessionRecord("run_a", 3, "dave", "app", "pg", "10.0.0.7:40002", T0.AddHours(1), T0.AddHours(1).AddMilliseconds(20),
                "authorization_failed", "client", "identity \"dave\" needs a just-in-time grant of role \"writer\" on connection \"app\""),
            new SessionRecord("run_a", 4, "alice", null, "pg", "10.0.0.5:40003", T0.AddHours(2), T0.AddHours(2).AddMilliseconds(20),
                "authorization_failed", "client", "connection \"payroll\" is not configured on this gateway"),
            new SessionRecord("run_a", 5, "bob", "app", "pg", "10.0.0.6:40004", T0.AddHours(3), T0.AddHours(3).AddMilliseconds(20),
                "authorization_failed", "client", "identity \"bob\" may not use connection \"app\""),
        ]);
        var after = await _scenario.BuildAsync(WithDave);

        Assert.Equal(before.Summary, after.Summary);
        Assert.Equal(before.Warnings, after.Warnings);
        Assert.Equal(before.Identities.SelectMany(i => i.Sessions.Select(s => s.Id)), after.Identities.SelectMany(i => i.Sessions.Select(s => s.Id)));
        var dave = Assert.Single(after.Identities, i => i.Identity == "dave");
        Assert.Empty(dave.Sessions);
        Assert.Equal(("standing", "app", "reader"), (Assert.Single(dave.Unused).Kind, dave.Unused[0].Connection, dave.Unused[0].Role));
    }

    [Fact]
    public async Task A_session_whose_recording_is_lost_never_takes_the_recording_of_another_by_id()
    {
        // Two overlapping sessions of bob: the first one's recording is gone, the second's is there under its id.
        var start = T0.AddHours(5);
        await _scenario.Store.RecordSessionsAsync(
        [
            new SessionRecord("run_b", 1, "bob", "app", "pg", "10.0.0.6:40010", start, start.AddMinutes(1), "client_terminated"),
            new SessionRecord("run_b", 2, "bob", "app", "pg", "10.0.0.6:40011", start.AddSeconds(1), start.AddSeconds(40), "client_terminated"),
        ]);
        var second = ReviewScenario.Session("run_b-2", "bob", "reader", start.AddSeconds(1), start.AddSeconds(40), RecordingIntegrity.Intact,
            "ClientTerminated", null, [], []);

        var report = await _scenario.BuildAsync(source: new ListedSessionSource([.. _scenario.Recorded, second]));

        var bob = Assert.Single(report.Identities, i => i.Identity == "bob");
        Assert.Equal([("run_a/2", "missing"), ("run_b/1", "missing"), ("run_b-2", "intact")], bob.Sessions.Select(s => (s.Id, s.Integrity)));
        Assert.Equal(2, report.Summary.UnrecordedSessions);
    }

    [Fact]
    public async Task Approvals_of_held_statements_name_the_decider_and_link_to_the_recorded_session()
    {
        var report = await _scenario.BuildAsync();
        var approval = Assert.Single(report.Identities[0].Approvals);
        Assert.Equal(("ap_test01", "approved", "bob", T0.AddSeconds(690), "ok once", "101", "hold-deletes"),
            (approval.Id, approval.State, approval.DecidedBy, approval.DecidedAt, approval.Reason, approval.SessionId, approval.Rule));
        var rejected = Assert.Single(report.Identities[2].Approvals);
        Assert.Equal(("ap_test02", "denied", "alice", "201"), (rejected.Id, rejected.State, rejected.DecidedBy, rejected.SessionId));
    }

    [Fact]
    public async Task Access_never_used_lists_unused_grants_and_unused_standing_access()
    {
        // Without session 102, alice's standing reader access on app is unused too.
        var report = await _scenario.BuildAsync(source: new ListedSessionSource(_scenario.Recorded.Where(s => s.SessionId != "102")));
        var unused = report.Identities[0].Unused;
        Assert.Equal(2, unused.Count);
        Assert.Equal(("grant", _scenario.Grants[2], "writer", T0.AddMinutes(55), T0.AddMinutes(115)),
            (unused[0].Kind, unused[0].GrantId, unused[0].Role, unused[0].From, unused[0].Until));
        Assert.Equal(("standing", null, "reader", "app"), (unused[1].Kind, unused[1].GrantId, unused[1].Role, unused[1].Connection));
        Assert.Equal((1, 1), (report.Summary.UnusedGrants, report.Summary.UnusedStanding));
    }

    [Fact]
    public async Task A_pending_request_past_its_deadline_reads_expired_and_an_automatic_approval_says_so()
    {
        // Stored directly, as another gateway would: dave's request, never swept; erin's, approved by the policy.
        await _scenario.Store.AddAccessRequestAsync(new AccessRequestRecord("ar_pending01", "dave", "app", "writer", TimeSpan.FromMinutes(20), "look",
            T0.AddHours(1), T0.AddHours(2)), grant: null);
        var auto = new GrantRecord("gr_auto00001", "ar_auto00001", "erin", "app", "writer", T0.AddHours(5.75), T0.AddHours(6.25), "auto_approve",
            "on call");
        await _scenario.Store.AddAccessRequestAsync(new AccessRequestRecord("ar_auto00001", "erin", "app", "writer", TimeSpan.FromMinutes(30), "on call",
            T0.AddHours(5.75), T0.AddHours(6.75), AccessRequestState.Approved, "auto_approve", T0.AddHours(5.75), "auto_approve: member of group oncall, at most 30m",
            "gr_auto00001"), auto);

        var report = await _scenario.BuildAsync();
        var dave = Assert.Single(report.Identities.Single(i => i.Identity == "dave").Requests);
        Assert.Equal(("expired", T0.AddHours(2), "no decision before the deadline", null), (dave.State, dave.DecidedAt, dave.DecisionReason, dave.DecidedBy));
        var erin = Assert.Single(report.Identities.Single(i => i.Identity == "erin").Grants);
        Assert.Equal(("auto_approve", "auto_approve: member of group oncall, at most 30m", "live", false),
            (erin.ApprovedBy, erin.ApprovalReason, erin.Status, erin.Used));
        Assert.Equal(2, report.Summary.ExpiredRequests);
    }

    [Fact]
    public async Task The_summary_counts_the_whole_report_and_a_damaged_recording_is_the_first_warning()
    {
        var report = await _scenario.BuildAsync();
        var s = report.Summary;
        Assert.Equal((3, 3, 1, 1, 1), (s.Identities, s.Grants, s.RevokedGrants, s.DeniedRequests, s.ExpiredRequests));
        Assert.Equal((4, 6, 2, 2, 3L, 2), (s.Sessions, s.Statements, s.Denied, s.Held, s.Masked, s.Approvals));
        Assert.Equal((1, 0, 1, 1), (s.UnusedGrants, s.UnusedStanding, s.DamagedRecordings, s.UnrecordedSessions));
        Assert.StartsWith("DAMAGED RECORDING: session 102 of alice (/var/lib/gatehouse/recordings/20300102T120000Z_102.ghrec.lz4): block 2 does not match its seal.",
            report.Warnings[0], StringComparison.Ordinal);
        Assert.Equal("1 session(s) known to the state store have no recording: what they ran is not in this report", report.Warnings[1]);
    }

    [Fact]
    public async Task The_window_keeps_overlapping_grants_and_sessions_and_asks_for_sessions_over_the_whole_grants()
    {
        // 10:00 to 15:00: g1 (09:05-10:05) overlaps, its session 101 (09:10) does not, yet g1 is still used.
        var source = _scenario.Source();
        var report = await _scenario.BuildAsync(o => o with { Since = T0.AddHours(1) }, source);
        var alice = report.Identities[0];
        Assert.Equal(_scenario.Grants[0], alice.Grants[0].Id);
        Assert.True(alice.Grants[0].Used);
        Assert.Equal(["102"], alice.Sessions.Select(s => s.Id));
        Assert.Equal((T0.AddMinutes(5), T0.AddHours(6)), Assert.Single(source.Requests));

        // The expired request (decided 10:40) overlaps; the denied one (09:10) does not.
        Assert.Equal([_scenario.Requests[3]], alice.Requests.Select(r => r.Id));
        Assert.Empty(alice.Approvals);
        // carol's grant was revoked at 09:40: not in this window, nor is her session.
        Assert.DoesNotContain(report.Identities, i => i.Identity == "carol");
    }

    [Fact]
    public async Task Identity_and_connection_filters_limit_everything()
    {
        var report = await _scenario.BuildAsync(o => o with { Identities = ["carol"] });
        Assert.Equal(["carol"], report.Identities.Select(i => i.Identity));
        Assert.Equal((1, 1, 1), (report.Summary.Grants, report.Summary.Sessions, report.Summary.Approvals));
        Assert.DoesNotContain(report.Warnings, w => w.Contains("DAMAGED", StringComparison.Ordinal));

        var none = await _scenario.BuildAsync(o => o with { Connections = ["other"] });
        Assert.Empty(none.Identities);
        Assert.Equal(0, none.Summary.Sessions);
    }

    [Theory]
    [InlineData("30d", null, "2029-12-03T15:00:00Z", "2030-01-02T15:00:00Z")]
    [InlineData("1h30m", "30m", "2030-01-02T13:30:00Z", "2030-01-02T14:30:00Z")]
    [InlineData("2030-01-01", "2030-01-02T09:30Z", "2030-01-01T00:00:00Z", "2030-01-02T09:30:00Z")]
    [InlineData("2030-01-02T10:00:00+02:00", "2030-01-02 12:00", "2030-01-02T08:00:00Z", "2030-01-02T12:00:00Z")]
    public void The_window_takes_durations_dates_and_times(string since, string? until, string start, string end)
    {
        var (s, u) = ReviewWindow.Parse(since, until, T0.AddHours(6));
        Assert.Equal((start, end), (ReviewWindow.Format(s), ReviewWindow.Format(u)));
    }

    [Theory]
    [InlineData("30", null, "--since must be a duration back from now (such as 30d, 12h or 1h30m) or a UTC date or time (such as 2030-01-02 or 2030-01-02T09:00Z), not '30'")]
    [InlineData("yesterday", null, "--since must be a duration back from now")]
    [InlineData("1d", "tomorrow", "--until must be a duration back from now")]
    [InlineData("1h", "2d", "the window is empty: --since (2030-01-02T14:00:00Z) must be before --until (2029-12-31T15:00:00Z)")]
    [InlineData("", null, "--since is required")]
    public void A_bad_window_is_refused_with_what_to_write(string since, string? until, string message)
    {
        var ex = Assert.Throws<ReviewInputException>(() => ReviewWindow.Parse(since, until, T0.AddHours(6)));
        Assert.StartsWith(message, ex.Message, StringComparison.Ordinal);
    }
}
