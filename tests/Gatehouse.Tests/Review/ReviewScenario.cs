using Gatehouse.Engine.Recording;
using Gatehouse.Host.Config;
using Gatehouse.Host.Recordings;
using Gatehouse.Host.Review;
using Gatehouse.Host.State;
using Gatehouse.Policy.Access;
using Gatehouse.Policy.Approvals;
using Gatehouse.Policy.Rules;
using Gatehouse.Tests.State;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gatehouse.Tests.Review;

/// <summary>
/// One morning at the gateway, put into a real SQLite state store through <see cref="AccessService"/> (requests,
/// approvals, a denial, a revocation, an expiry) and the store's own API (held statements, sessions), with
/// recorded sessions to match:
/// <list type="bullet">
/// <item>alice: writer granted by bob (used by session 101), dba denied, dba expired, writer granted by carol and
/// never used (its reason is an XSS payload); a standing reader session 102 whose recording is damaged.</item>
/// <item>carol: writer granted by dave and revoked by him; session 201 ran under it until the revocation killed it.</item>
/// <item>bob: standing reader; one session the state store knows of and no recording has.</item>
/// </list>
/// </summary>
internal sealed class ReviewScenario : IAsyncDisposable
{
    public const string Policy = """
        roles:
          reader:
            allow: [read]
          writer:
            allow: [read, write]
          dba:
            allow: all
        bindings:
          - identities: [alice, carol]
            connections: [app]
            role: writer
            access: grant
            max_duration: 4h
          - identities: [alice]
            connections: [app]
            role: dba
            access: grant
          - identities: [alice, bob]
            connections: [app]
            role: reader
        """;

    /// <summary>Attacker-controlled text: a statement and a grant reason carry it.</summary>
    public const string Xss = "x'); document.title='pwned'; //</script><script>document.body.setAttribute('data-pwned','1')</script>"
                              + "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\"><b>bold</b>";

    /// <summary>A spreadsheet formula as a request reason: carol's.</summary>
    public const string Formula = "=HYPERLINK(\"http://evil.example/\",\"migration\")";

    public static readonly DateTimeOffset T0 = new(2030, 1, 2, 9, 0, 0, TimeSpan.Zero);

    private ReviewScenario(TempStore temp, ManualTime time)
    {
        Temp = temp;
        Time = time;
    }

    public TempStore Temp { get; }

    public ManualTime Time { get; }

    public IStateStore Store => Temp.Store;

    /// <summary>ar1 (approved), ar2 (denied), ar3 (carol, approved), ar4 (expired), ar5 (approved, unused grant).</summary>
    public string[] Requests { get; private set; } = [];

    /// <summary>g1 (alice, used), g2 (carol, revoked), g3 (alice, unused).</summary>
    public string[] Grants { get; private set; } = [];

    public IReadOnlyList<RecordedSession> Recorded { get; private set; } = [];

    public static IReadOnlyList<StandingAccess> Standing { get; } = [new("alice", "app", "reader"), new("bob", "app", "reader")];

    public static IReadOnlySet<string> StandingKnown { get; } = new HashSet<string>(["alice", "bob"], StringComparer.Ordinal);

    public static async Task<ReviewScenario> CreateAsync()
    {
        var time = new ManualTime(T0);
        var scenario = new ReviewScenario(await TempStore.OpenAsync(), time);
        await scenario.PopulateAsync();
        return scenario;
    }

    public ListedSessionSource Source() => new(Recorded);

    /// <summary>The whole morning: 09:00 to 15:00, reviewed at 15:00.</summary>
    public Task<ReviewReport> BuildAsync(Func<ReviewOptions, ReviewOptions>? adjust = null, ListedSessionSource? source = null)
    {
        var options = new ReviewOptions
        {
            Since = T0,
            Until = T0.AddHours(6),
            Now = T0.AddHours(6),
            Standing = Standing,
            StandingKnown = StandingKnown,
        };
        return new ReviewBuilder(Store, source ?? Source()).BuildAsync(adjust is null ? options : adjust(options));
    }

    private async Task PopulateAsync()
    {
        var policy = new PolicyStore(PolicyLoader.Load(Policy, "policy.yaml", PolicyCompileContext.None).Snapshot!);
        await using var access = new AccessService(Store, policy, sessions: null, NullAuditSink.Instance, new AccessOptions(RequestTimeout: TimeSpan.FromHours(1)),
            NullLogger.Instance, time: Time);
        policy.Grants = access;

        var ar1 = Ok(await access.RequestAsync("alice", "app", "writer", TimeSpan.FromHours(1), "ticket 42: fix the invoice totals"));
        Time.Advance(TimeSpan.FromMinutes(5));
        var g1 = Ok(await access.DecideAsync(ar1.Request!.Id, "bob", approve: true, "looks right")).Grant!;

        Time.Advance(TimeSpan.FromMinutes(5));
        var ar2 = Ok(await access.RequestAsync("alice", "app", "dba", TimeSpan.FromMinutes(30), "debug, locks"));
        Ok(await access.DecideAsync(ar2.Request!.Id, "bob", approve: false, "use writer"));

        Time.Advance(TimeSpan.FromMinutes(10));
        var ar3 = Ok(await access.RequestAsync("carol", "app", "writer", TimeSpan.FromHours(2), Formula));
        Time.Advance(TimeSpan.FromMinutes(5));
        var g2 = Ok(await access.DecideAsync(ar3.Request!.Id, "dave", approve: true)).Grant!;

        Time.Advance(TimeSpan.FromMinutes(5));
        var ar4 = Ok(await access.RequestAsync("alice", "app", "dba", TimeSpan.FromHours(1), "late night"));

        Time.Advance(TimeSpan.FromMinutes(10));
        Ok(await access.RevokeAsync(g2.Id, "dave", "done early"));

        Time.Advance(TimeSpan.FromMinutes(10));
        var ar5 = Ok(await access.RequestAsync("alice", "app", "writer", TimeSpan.FromHours(1), Xss));
        Time.Advance(TimeSpan.FromMinutes(5));
        var g3 = Ok(await access.DecideAsync(ar5.Request!.Id, "carol", approve: true)).Grant!;

        // 10:40: nobody decided ar4 (deadline 10:30): the sweep expires it.
        Time.Advance(TimeSpan.FromMinutes(45));
        await access.SweepAsync();

        Requests = [ar1.Request.Id, ar2.Request.Id, ar3.Request.Id, ar4.Request!.Id, ar5.Request.Id];
        Grants = [g1.Id, g2.Id, g3.Id];

        // Held statements, as the relay's approval broker stores them.
        await Store.AddApprovalAsync(new ApprovalRequest("ap_test01", "alice", "app", 1, "writer", "hold-deletes", "DELETE FROM t WHERE id = $1 -- [1]",
            T0.AddMinutes(11), T0.AddMinutes(26)));
        await Store.CompleteApprovalAsync("ap_test01", ApprovalState.Approved, "bob", T0.AddMinutes(11).AddSeconds(30), "ok once");
        await Store.AddApprovalAsync(new ApprovalRequest("ap_test02", "carol", "app", 3, "writer", "hold-deletes", "DELETE FROM orders",
            T0.AddMinutes(35), T0.AddMinutes(50)));
        await Store.CompleteApprovalAsync("ap_test02", ApprovalState.Denied, "alice", T0.AddMinutes(36), "no");

        // Sessions as the session auditor stores them: alice's 101 has its recording; bob's has none.
        await Store.RecordSessionsAsync(
        [
            new SessionRecord("run_a", 1, "alice", "app", "pg", "10.0.0.5:40000", T0.AddMinutes(10).AddMilliseconds(-300), T0.AddMinutes(12), "client_terminated"),
            new SessionRecord("run_a", 2, "bob", "app", "pg", "10.0.0.6:40001", T0.AddHours(4), T0.AddHours(4).AddMinutes(5), "client_terminated"),
        ]);

        Recorded =
        [
            Session("101", "alice", "writer", T0.AddMinutes(10), T0.AddMinutes(12), RecordingIntegrity.Intact, "ClientTerminated", null, ["public.t"],
            [
                Statement(5, 'Q', "-- totals\nSELECT * FROM t", "read", RecordedDecision.Allowed, result: "SELECT 3", masked: 3),
                Statement(20, 'Q', "UPDATE t SET a = 1", "write", RecordedDecision.Allowed, result: "UPDATE 1"),
                Statement(40, 'Q', "DROP TABLE t", "ddl", RecordedDecision.Denied, rule: "no-ddl", result: "ERROR 42501: refused by rule no-ddl"),
                Statement(60, 'B', "DELETE FROM t WHERE id = $1", "write", RecordedDecision.Allowed, rule: "hold-deletes", held: true, approver: "bob",
                    ticket: "ap_test01", result: "DELETE 1", parameters: ["1"]),
            ]),
            Session("102", "alice", "reader", T0.AddHours(3), T0.AddHours(3).AddMinutes(1), RecordingIntegrity.Damaged, null, null, [],
                [Statement(2, 'Q', Xss, "read", RecordedDecision.Allowed, result: "SELECT 1")],
                problems: ["block 2 does not match its seal"]),
            Session("201", "carol", "writer", T0.AddMinutes(30), T0.AddMinutes(40), RecordingIntegrity.Recovered, "Killed",
                $"grant {g2.Id} revoked by dave: done early", ["orders"],
                [Statement(10, 'Q', "DELETE FROM orders", "write", RecordedDecision.Denied, rule: "hold-deletes", held: true, approver: "alice",
                    ticket: "ap_test02", result: "ERROR 42501: rejected by alice")]),
        ];
    }

    /// <summary>A recorded session on app (tests add their own to <see cref="Recorded"/>).</summary>
    public static RecordedSession Session(string id, string identity, string role, DateTimeOffset start, DateTimeOffset end, RecordingIntegrity integrity,
        string? endReason, string? endDetail, string[] tables, RecordedStatement[] statements, string[]? problems = null) => new()
    {
        Path = $"/var/lib/gatehouse/recordings/{start.UtcDateTime:yyyyMMdd'T'HHmmss'Z'}_{id}.ghrec.lz4",
        SessionId = id,
        Protocol = "postgresql",
        Identity = identity,
        Connection = "app",
        Role = role,
        ClientAddress = "10.0.0.5:40000",
        Start = start,
        End = end,
        Integrity = integrity,
        Problems = problems ?? [],
        EndReason = endReason,
        EndDetail = endDetail,
        MaskedValues = statements.Sum(s => s.MaskedValues),
        Statements = statements,
        StatementsByClass = statements.GroupBy(s => s.Class).ToDictionary(g => g.Key, g => g.Count()),
        Tables = tables,
    };

    private static RecordedStatement Statement(int second, char message, string text, string @class, RecordedDecision outcome, string? rule = null,
        bool held = false, string? approver = null, string? ticket = null, string? result = null, long masked = 0, string[]? parameters = null) => new()
    {
        At = TimeSpan.FromSeconds(second),
        Message = message,
        Text = text,
        Class = @class,
        Outcome = outcome,
        Rule = rule,
        WasHeld = held,
        Approver = approver,
        Ticket = ticket,
        Result = result,
        MaskedValues = masked,
        Parameters = parameters ?? [],
    };

    private static AccessResult Ok(AccessResult result)
    {
        Assert.True(result.Succeeded, result.Error);
        return result;
    }

    public ValueTask DisposeAsync() => Temp.DisposeAsync();
}
