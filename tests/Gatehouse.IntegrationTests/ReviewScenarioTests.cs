using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Gatehouse.Host;
using Gatehouse.Host.State;
using Gatehouse.IntegrationTests.Infrastructure;
using Gatehouse.Policy.Access;
using Gatehouse.Policy.Approvals;
using Gatehouse.Tests.Support;

namespace Gatehouse.IntegrationTests;

/// <summary>
/// The access review end to end, over real sessions: alice asks for a just-in-time grant that bob approves, runs
/// real psql sessions before and under it (a masked read, a write, a statement a rule denies, a held statement bob
/// approves and one he rejects), carol holds a grant she never uses, and two logins are refused after
/// authentication (they are no sessions of the review); then <c>gatehouse review</c>, run in-process
/// as the binary would run it, reads the gateway's state store and recordings folder. Every expected row is built
/// from what the scenario did and what the gateway answered it (ids, times, the errors psql printed), never from
/// the report itself.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ReviewScenarioTests(PostgresFixture fixture) : IAsyncLifetime
{
    private const string Policy = """
        roles:
          reader:
            allow: [read, transaction, session]
          operator:
            allow: [read, write, ddl, transaction, session]
            rules:
              - name: no-drop
                description: DROP is not allowed
                shapes: [drop]
                action: deny
              - name: ledger-needs-approval
                classes: [write]
                tables: ["rv_ledger_*"]
                action: require_approval
          auditor:
            allow: [read]
        bindings:
          - identities: [alice]
            connections: [app]
            role: operator
            access: grant
            max_duration: 2h
          - identities: [carol]
            connections: [reports]
            role: auditor
            access: grant
            max_duration: 8h
          - identities: [alice]
            connections: ["*"]
            role: reader
        masking:
          key: { value: "review-scenario-masking-key" }
          rules:
            - name: ssn
              columns: ["public.rv_people_*.ssn"]
              style: keep_last
        """;

    private const string Reports = "reports";

    private GatewayHost _gateway = null!;
    private string _people = null!;
    private string _ledger = null!;
    private string _configFile = null!;

    private PostgresServer Server => fixture.Server;

    public async Task InitializeAsync()
    {
        _people = Direct.UniqueName("rv_people");
        _ledger = Direct.UniqueName("rv_ledger");
        await Direct.ExecuteAsync(Server, $"""
            CREATE TABLE {_people} (id int PRIMARY KEY, name text, ssn text);
            INSERT INTO {_people} VALUES (1, 'Ada', '123-45-6789'), (2, 'Bob', '987-65-4321');
            CREATE TABLE {_ledger} (id int PRIMARY KEY, amount int);
            """);

        // "reports" is a second connection alice may open (standing reader) and carol gets a grant on; nobody
        // logs into it, so where it points does not matter.
        _gateway = GatewayHost.Start(Server, new GatewaySettings
        {
            Policy = Policy,
            Approvals = "{ timeout: 2m }",
            ExtraConnections = [new ExtraConnection(Reports, Server.Port)],
        });
        _configFile = Path.Combine(Path.GetTempPath(), $"gatehouse-review-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(_configFile, _gateway.Yaml);
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        File.Delete(_configFile);
        await Direct.ExecuteAsync(Server, $"DROP TABLE IF EXISTS {_people}; DROP TABLE IF EXISTS {_ledger}");
    }

    [Fact]
    public async Task The_review_reports_grants_sessions_statements_approvals_and_unused_access_as_they_happened()
    {
        var expected = await RunScenarioAsync();
        string since = Iso(expected.Since), until = Iso(expected.Until);

        // ---- CSV: every row, in order, every column ---------------------------------------------------------------
        var csv = await ReviewAsync("--since", since, "--until", until, "--format", "csv");
        var rows = ParseCsv(csv);
        Assert.Equal(CsvColumns, rows[0]);
        AssertCsv(ExpectedCsv(expected, expected.Identities), rows.Skip(1).ToList());

        // ---- JSON: the same facts through the other writer ------------------------------------------------------
        using (var json = JsonDocument.Parse(await ReviewAsync("--since", since, "--until", until, "--format", "json")))
        {
            AssertJson(expected, expected.Identities, json.RootElement);
        }

        // ---- Table: the lines a person reads --------------------------------------------------------------------
        var table = await ReviewAsync("--since", since, "--until", until);
        var a = expected.Alice;
        var grant = a.Grants.Single();
        var carolGrant = expected.Carol.Grants.Single();
        Assert.DoesNotContain("WARNING", table, StringComparison.Ordinal);
        Assert.Matches($@"(?m)^{grant.Id}\s+app\s+operator\s+{Table(grant.RequestedAt)}\s+{Rx(grant.Reason)}\s+bob\s+{Table(grant.DecidedAt)}\s+"
                       + $@"{Table(grant.Start)}\s+{Table(grant.End)}\s+30m\s+live\s+2\s*$", table);
        Assert.Matches($@"(?m)^{a.Sessions[0].Id}\s+\S+ \S+\s+\S+\s+app\s+reader\s+standing\s+read=1 write=1\s+1\s+0\s+0\s+{_people}\s+ClientTerminated\s+intact\s*$", table);
        Assert.Matches($@"(?m)^{a.Sessions[1].Id}\s+\S+ \S+\s+\S+\s+app\s+operator\s+{grant.Id}\s+ddl=1 read=1 write=1\s+1\s+0\s+2\s+{_people}\s+ClientTerminated\s+intact\s*$", table);
        Assert.Matches($@"(?m)^{a.Sessions[2].Id}\s+\S+ \S+\s+\S+\s+app\s+operator\s+{grant.Id}\s+write=2\s+1\s+2\s+0\s+{_ledger}\s+ClientTerminated\s+intact\s*$", table);
        Assert.Matches($@"(?m)^{a.Approvals[0].Record.Request.Id}\s+approved\s+bob\s+.*\s+{a.Sessions[2].Id}\s+INSERT INTO {_ledger}", table);
        Assert.Matches($@"(?m)^{a.Approvals[1].Record.Request.Id}\s+denied\s+bob\s+.*\s+{a.Sessions[2].Id}\s+DELETE FROM {_ledger}", table);
        Assert.Matches($@"(?m)^grant\s+{Reports}\s+auditor\s+{carolGrant.Id}\s+{Table(carolGrant.Start)}\s+{Table(carolGrant.End)}\s*$", table);
        Assert.Matches($@"(?m)^standing\s+{Reports}\s+reader\s*$", table);

        // ---- Filters narrow every part of the report, the summary included ------------------------------------
        var carolOnly = ParseCsv(await ReviewAsync("--since", since, "--until", until, "--format", "csv", "--identity", "carol"));
        AssertCsv(ExpectedCsv(expected, [expected.Carol]), carolOnly.Skip(1).ToList());

        var reports = ParseCsv(await ReviewAsync("--since", since, "--until", until, "--format", "csv", "--connection", Reports));
        AssertCsv(ExpectedCsv(expected, [expected.Alice.OnlyConnection(Reports), expected.Carol]), reports.Skip(1).ToList());

        using (var aliceOnApp = JsonDocument.Parse(await ReviewAsync("--since", since, "--until", until, "--format", "json",
                   "--identity", "alice", "--connection", "app")))
        {
            Assert.Equal(["alice"], aliceOnApp.RootElement.GetProperty("filters").GetProperty("identities").EnumerateArray().Select(e => e.GetString()));
            Assert.Equal(["app"], aliceOnApp.RootElement.GetProperty("filters").GetProperty("connections").EnumerateArray().Select(e => e.GetString()));
            AssertJson(expected, [expected.Alice.OnlyConnection("app")], aliceOnApp.RootElement);
        }
    }

    // ---- The scenario -------------------------------------------------------------------------------------------

    private async Task<Scenario> RunScenarioAsync()
    {
        // Whole seconds, so the window can be given on the command line exactly.
        var since = DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 60);
        var until = since.AddHours(3);
        var access = _gateway.Server.Access;

        // 1. Before any grant alice is a reader (standing): her read runs, her write is refused by her role.
        var standing = await Clients.PsqlAsync(_gateway.Port, _gateway.AliceSecret, $"""
            SELECT count(*) FROM {_people};
            INSERT INTO {_people} VALUES (9, 'Eve', '000-00-0000');
            """);
        Assert.Equal("2\n", standing.Stdout);
        var standingErrors = Errors(standing.Stderr);

        // Logins the gateway refuses after authentication: alice names a connection that does not exist, bob one he
        // may not use. The state store keeps both sessions; neither had access, ran anything or has a recording.
        var nowhere = await Clients.PsqlAsync(_gateway.Port, _gateway.AliceSecret, "SELECT 1;", database: "payroll");
        Assert.Contains("connection \"payroll\" is not configured on this gateway", nowhere.Stderr, StringComparison.Ordinal);
        var notBob = await Clients.PsqlAsync(_gateway.Port, _gateway.BobSecret, "SELECT 1;", user: GatewayHost.Bob);
        Assert.Contains("identity \"bob\" may not use connection \"app\"", notBob.Stderr, StringComparison.Ordinal);

        // 2. alice asks for two hours of operator; bob refuses. Then for 30 minutes with a ticket; bob approves.
        var refused = (await access.RequestAsync("alice", "app", "operator", TimeSpan.FromHours(2), "bulk load")).Request!;
        var refusal = await access.DecideAsync(refused.Id, "bob", approve: false, reason: "not this week");
        Assert.Equal(AccessOutcome.Done, refusal.Outcome);
        var asked = (await access.RequestAsync("alice", "app", "operator", TimeSpan.FromMinutes(30), "fix the ledger (ticket 7)")).Request!;
        var approved = await access.DecideAsync(asked.Id, "bob", approve: true, reason: "ticket 7 checked");
        Assert.NotNull(approved.Grant);

        // 3. carol gets a grant on reports and never opens a session.
        var carolAsked = (await access.RequestAsync("carol", Reports, null, TimeSpan.FromMinutes(45), "quarterly audit prep")).Request!;
        var carolApproved = await access.DecideAsync(carolAsked.Id, "bob", approve: true, reason: "for the audit");
        Assert.NotNull(carolApproved.Grant);

        // 4. Under the grant: a read of the masked column, a write, a DROP the rule denies.
        var work = await Clients.PsqlAsync(_gateway.Port, _gateway.AliceSecret, $"""
            SELECT id, name, ssn FROM {_people} ORDER BY id;
            UPDATE {_people} SET name = 'Ada L' WHERE id = 1;
            DROP TABLE {_people};
            """);
        Assert.Equal("1|Ada|****6789\n2|Bob|****4321\nUPDATE 1\n", work.Stdout);
        var workErrors = Errors(work.Stderr);

        // 5. Under the grant: a held INSERT that bob approves, then a held DELETE that bob rejects.
        var held = Clients.PsqlAsync(_gateway.Port, _gateway.AliceSecret, $"""
            INSERT INTO {_ledger} VALUES (1, 100);
            DELETE FROM {_ledger} WHERE id = 1;
            """);
        var insert = await PendingAsync("INSERT INTO");
        Assert.Equal(ApprovalDecisionResult.Done, _gateway.Server.Approvals.Decide(insert.Request.Id, "bob", approve: true, reason: "one row, checked"));
        var delete = await PendingAsync("DELETE FROM");
        Assert.Equal(ApprovalDecisionResult.Done, _gateway.Server.Approvals.Decide(delete.Request.Id, "bob", approve: false, reason: "keep the ledger"));
        var heldResult = await held;
        Assert.Equal("INSERT 0 1\n", heldResult.Stdout);
        var heldErrors = Errors(heldResult.Stderr);
        Assert.Equal(1L, await Direct.ScalarAsync<long>(Server, $"SELECT count(*) FROM {_ledger}"));
        Assert.Equal("Ada L", await Direct.ScalarAsync<string>(Server, $"SELECT name FROM {_people} WHERE id = 1"));

        // The gateway's own account of the three sessions, once they ended and their recordings are sealed.
        var ended = await EndedSessionsAsync(5);
        Assert.Equal([("alice", null), ("bob", "app")],
            ended.Where(s => s.EndReason == "authorization_failed").Select(s => (s.Identity, s.Connection)).OrderBy(s => s.Identity, StringComparer.Ordinal));
        var sessions = ended.Where(s => s.EndReason != "authorization_failed").ToList();
        Assert.Equal(3, sessions.Count);
        Assert.All(sessions, s => Assert.Equal(("alice", "app", "client_terminated"), (s.Identity, s.Connection, s.EndReason)));
        var insertDecided = _gateway.Server.Approvals.Find(insert.Request.Id)!;
        var deleteDecided = _gateway.Server.Approvals.Find(delete.Request.Id)!;
        Assert.Equal((ApprovalState.Approved, ApprovalState.Denied), (insertDecided.State, deleteDecided.State));

        var grant = ExpectedGrant(approved.Grant!, approved.Request!) with { SessionIds = [Id(sessions[1]), Id(sessions[2])] };
        string people = _people, ledger = _ledger;
        var alice = new IdentityExpectation("alice")
        {
            Grants = [grant],
            Requests = [new RequestExpectation(refused.Id, "app", "operator", "denied", 7200, "bulk load", refused.RequestedAt, "bob",
                refusal.Request!.DecidedAt, "not this week")],
            Sessions =
            [
                new SessionExpectation(Id(sessions[0]), "app", "reader", sessions[0].StartedAt, "standing", null, "read=1 write=1", 1, 0, 0, [people])
                {
                    Statements =
                    [
                        Allowed($"SELECT count(*) FROM {people};", "read", "SELECT 1"),
                        new($"INSERT INTO {people} VALUES (9, 'Eve', '000-00-0000');", "write", "denied", "role:reader", false, null, null,
                            "ERROR 42501: " + standingErrors.Single(), 0),
                    ],
                },
                new SessionExpectation(Id(sessions[1]), "app", "operator", sessions[1].StartedAt, "grant", grant.Id, "ddl=1 read=1 write=1", 1, 0, 2, [people])
                {
                    Statements =
                    [
                        Allowed($"SELECT id, name, ssn FROM {people} ORDER BY id;", "read", "SELECT 2", masked: 2),
                        Allowed($"UPDATE {people} SET name = 'Ada L' WHERE id = 1;", "write", "UPDATE 1"),
                        new($"DROP TABLE {people};", "ddl", "denied", "no-drop", false, null, null, "ERROR 42501: " + workErrors.Single(), 0),
                    ],
                },
                new SessionExpectation(Id(sessions[2]), "app", "operator", sessions[2].StartedAt, "grant", grant.Id, "write=2", 1, 2, 0, [ledger])
                {
                    Statements =
                    [
                        new($"INSERT INTO {ledger} VALUES (1, 100);", "write", "allowed", "ledger-needs-approval", true, "bob", insert.Request.Id,
                            "INSERT 0 1", 0),
                        new($"DELETE FROM {ledger} WHERE id = 1;", "write", "denied", "ledger-needs-approval", true, "bob", delete.Request.Id,
                            "ERROR 42501: " + heldErrors.Single(), 0),
                    ],
                },
            ],
            Approvals =
            [
                new ApprovalExpectation(insertDecided, Id(sessions[2])),
                new ApprovalExpectation(deleteDecided, Id(sessions[2])),
            ],
            Standing = [("app", "reader"), (Reports, "reader")],
            Unused = [new UnusedExpectation("standing", Reports, "reader", null, null, null)],
        };
        var carolGrant = ExpectedGrant(carolApproved.Grant!, carolApproved.Request!) with { SessionIds = [] };
        var carol = new IdentityExpectation("carol")
        {
            Grants = [carolGrant],
            Unused = [new UnusedExpectation("grant", Reports, "auditor", carolGrant.Id, carolGrant.Start, carolGrant.End)],
        };
        return new Scenario(since, until, alice, carol);

        static StatementExpectation Allowed(string text, string cls, string result, long masked = 0) =>
            new(text, cls, "allowed", null, false, null, null, result, masked);
    }

    private static GrantExpectation ExpectedGrant(GrantRecord g, AccessRequestRecord r) =>
        new(g.Id, g.Connection, g.Role, "live", g.Start, g.End, (long)(g.End - g.Start).TotalSeconds, r.RequestedAt, r.Reason, g.Approver, r.DecidedAt,
            r.DecisionReason, r.Id, []);

    private static string Id(SessionRecord s) => $"{s.Instance}-{s.SessionId.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>The messages of the ERROR lines psql printed (what the client was told).</summary>
    private static List<string> Errors(string stderr) =>
        [.. stderr.Split('\n').Select(l => l.IndexOf("ERROR:  ", StringComparison.Ordinal) is int at and >= 0 ? l[(at + "ERROR:  ".Length)..] : null).OfType<string>()];

    /// <summary>Waits for the one pending approval request of this test's ledger whose statement starts so.</summary>
    private async Task<ApprovalRecord> PendingAsync(string start)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (_gateway.Server.Approvals.List().SingleOrDefault(r => r.Request.Statement.StartsWith(start + " " + _ledger, StringComparison.Ordinal)) is { } found)
            {
                return found;
            }

            await Task.Delay(50);
        }

        throw new TimeoutException($"no pending approval request for {start} {_ledger}");
    }

    /// <summary>The sessions the state store has, oldest first, once all have ended and every recording is sealed.</summary>
    private async Task<List<SessionRecord>> EndedSessionsAsync(int count)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            await _gateway.Server.Audit.FlushAsync();
            var sessions = (await _gateway.Server.Store.ListSessionsAsync(100)).OrderBy(s => s.StartedAt).ToList();
            if (sessions.Count == count && sessions.All(s => s.EndedAt is not null) && _gateway.Server.Recordings!.OpenRecordings == 0)
            {
                return sessions;
            }

            Assert.True(DateTime.UtcNow < deadline, $"expected {count} ended sessions, the state store has {sessions.Count}");
            await Task.Delay(50);
        }
    }

    /// <summary>Runs <c>gatehouse review -c CONFIG ARGS</c> in-process, as the binary would; returns standard output.</summary>
    private async Task<string> ReviewAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = await Program.BuildCommand().Parse(["review", "-c", _configFile, .. args])
            .InvokeAsync(new InvocationConfiguration { Output = output, Error = error });
        Assert.True(code == 0, $"gatehouse review exited {code}: {error}");
        Assert.Equal("", error.ToString());
        return output.ToString();
    }

    // ---- What the scenario expects ------------------------------------------------------------------------------

    private sealed record Scenario(DateTimeOffset Since, DateTimeOffset Until, IdentityExpectation Alice, IdentityExpectation Carol)
    {
        public IReadOnlyList<IdentityExpectation> Identities => [Alice, Carol];
    }

    private sealed record IdentityExpectation(string Name)
    {
        public IReadOnlyList<GrantExpectation> Grants { get; init; } = [];
        public IReadOnlyList<RequestExpectation> Requests { get; init; } = [];
        public IReadOnlyList<SessionExpectation> Sessions { get; init; } = [];
        public IReadOnlyList<ApprovalExpectation> Approvals { get; init; } = [];
        public IReadOnlyList<(string Connection, string Role)> Standing { get; init; } = [];
        public IReadOnlyList<UnusedExpectation> Unused { get; init; } = [];

        /// <summary>What the report holds of this identity with <c>--connection</c> <paramref name="connection"/>.</summary>
        public IdentityExpectation OnlyConnection(string connection) => this with
        {
            Grants = [.. Grants.Where(g => g.Connection == connection)],
            Requests = [.. Requests.Where(r => r.Connection == connection)],
            Sessions = [.. Sessions.Where(s => s.Connection == connection)],
            Approvals = [.. Approvals.Where(a => a.Record.Request.Connection == connection)],
            Standing = [.. Standing.Where(s => s.Connection == connection)],
            Unused = [.. Unused.Where(u => u.Connection == connection)],
        };
    }

    private sealed record GrantExpectation(string Id, string Connection, string Role, string Status, DateTimeOffset Start, DateTimeOffset End,
        long DurationSeconds, DateTimeOffset RequestedAt, string Reason, string ApprovedBy, DateTimeOffset? DecidedAt, string? DecisionReason,
        string RequestId, IReadOnlyList<string> SessionIds);

    private sealed record RequestExpectation(string Id, string Connection, string Role, string State, long DurationSeconds, string Reason,
        DateTimeOffset RequestedAt, string DecidedBy, DateTimeOffset? DecidedAt, string DecisionReason);

    private sealed record SessionExpectation(string Id, string Connection, string Role, DateTimeOffset Start, string Access, string? GrantId,
        string Classes, int Denied, int Held, long Masked, IReadOnlyList<string> Tables)
    {
        public IReadOnlyList<StatementExpectation> Statements { get; init; } = [];
    }

    private sealed record StatementExpectation(string Text, string Class, string Decision, string? Rule, bool Held, string? Approver, string? Ticket,
        string Result, long Masked);

    private sealed record ApprovalExpectation(ApprovalRecord Record, string SessionId);

    private sealed record UnusedExpectation(string Kind, string Connection, string Role, string? GrantId, DateTimeOffset? From, DateTimeOffset? Until);

    // ---- CSV -----------------------------------------------------------------------------------------------------

    private static readonly string[] CsvColumns =
    [
        "record", "identity", "id", "connection", "role", "state", "start", "end", "duration_s", "requested_at", "reason", "decided_by", "decided_at",
        "decision_reason", "revoked_by", "revoked_at", "revoke_reason", "request_id", "grant_id", "session_id", "access", "recording", "integrity",
        "problems", "end_reason", "end_detail", "statements", "classes", "denied", "held", "masked", "tables", "class", "decision", "rule", "approver",
        "ticket", "result", "text", "parameters", "value",
    ];

    /// <summary>Columns whose values the scenario cannot know to the millisecond; checked for consistency instead.</summary>
    private static readonly string[] Unknowable = ["end", "duration_s", "recording"];

    /// <summary>The rows the report must hold, in order; a column not named is empty.</summary>
    private List<Dictionary<string, string>> ExpectedCsv(Scenario scenario, IReadOnlyList<IdentityExpectation> identities)
    {
        var rows = new List<Dictionary<string, string>>();
        void Row(string record, params (string Column, object? Value)[] cells)
        {
            var row = CsvColumns.ToDictionary(c => c, _ => "", StringComparer.Ordinal);
            row["record"] = record;
            foreach (var (column, value) in cells)
            {
                Assert.True(row.ContainsKey(column), column);
                row[column] = value switch
                {
                    null => "",
                    DateTimeOffset t => Csv(t)!,
                    bool b => b ? "1" : "0",
                    IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
                    _ => value.ToString() ?? "",
                };
            }

            rows.Add(row);
        }

        var sessions = identities.SelectMany(i => i.Sessions).ToList();
        var statements = sessions.SelectMany(s => s.Statements).ToList();
        foreach (var (name, value) in Summary(identities))
        {
            Row("summary", ("id", name), ("start", scenario.Since), ("end", scenario.Until), ("value", value));
        }

        foreach (var identity in identities)
        {
            string who = identity.Name;
            foreach (var g in identity.Grants)
            {
                Row("grant", ("identity", who), ("id", g.Id), ("connection", g.Connection), ("role", g.Role), ("state", g.Status), ("start", g.Start),
                    ("end", g.End), ("duration_s", g.DurationSeconds), ("requested_at", g.RequestedAt), ("reason", g.Reason), ("decided_by", g.ApprovedBy),
                    ("decided_at", g.DecidedAt), ("decision_reason", g.DecisionReason), ("request_id", g.RequestId), ("value", g.SessionIds.Count));
            }

            foreach (var r in identity.Requests)
            {
                Row("request", ("identity", who), ("id", r.Id), ("connection", r.Connection), ("role", r.Role), ("state", r.State),
                    ("duration_s", r.DurationSeconds), ("requested_at", r.RequestedAt), ("reason", r.Reason), ("decided_by", r.DecidedBy),
                    ("decided_at", r.DecidedAt), ("decision_reason", r.DecisionReason));
            }

            foreach (var s in identity.Sessions)
            {
                Row("session", ("identity", who), ("id", s.Id), ("connection", s.Connection), ("role", s.Role), ("start", s.Start), ("grant_id", s.GrantId),
                    ("session_id", s.Id), ("access", s.Access), ("integrity", "intact"), ("end_reason", "ClientTerminated"),
                    ("statements", s.Statements.Count), ("classes", s.Classes), ("denied", s.Denied), ("held", s.Held), ("masked", s.Masked),
                    ("tables", string.Join(" ", s.Tables)));
                foreach (var t in s.Statements)
                {
                    Row("statement", ("identity", who), ("connection", s.Connection), ("role", s.Role), ("session_id", s.Id), ("grant_id", s.GrantId),
                        ("integrity", "intact"), ("held", t.Held), ("masked", t.Masked), ("class", t.Class), ("decision", t.Decision), ("rule", t.Rule),
                        ("approver", t.Approver), ("ticket", t.Ticket), ("result", t.Result), ("text", t.Text), ("value", "Q"));
                }
            }

            foreach (var a in identity.Approvals)
            {
                var x = a.Record;
                Row("approval", ("identity", who), ("id", x.Request.Id), ("connection", x.Request.Connection), ("role", x.Request.Role),
                    ("state", x.State.ToString().ToLowerInvariant()), ("requested_at", x.Request.RequestedAt), ("decided_by", x.DecidedBy),
                    ("decided_at", x.DecidedAt), ("decision_reason", x.Reason), ("session_id", a.SessionId), ("rule", x.Request.Rule),
                    ("text", x.Request.Statement));
            }

            foreach (var (connection, role) in identity.Standing)
            {
                Row("standing", ("identity", who), ("connection", connection), ("role", role));
            }

            foreach (var u in identity.Unused)
            {
                Row("unused", ("identity", who), ("id", u.GrantId), ("connection", u.Connection), ("role", u.Role), ("state", u.Kind), ("start", u.From),
                    ("end", u.Until), ("grant_id", u.GrantId));
            }
        }

        Assert.Equal(statements.Count, rows.Count(r => r["record"] == "statement"));
        return rows;
    }

    private static IEnumerable<(string Name, long Value)> Summary(IReadOnlyList<IdentityExpectation> identities)
    {
        var sessions = identities.SelectMany(i => i.Sessions).ToList();
        var statements = sessions.SelectMany(s => s.Statements).ToList();
        return
        [
            ("identities", identities.Count),
            ("grants", identities.Sum(i => i.Grants.Count)),
            ("revoked_grants", 0),
            ("denied_requests", identities.Sum(i => i.Requests.Count(r => r.State == "denied"))),
            ("expired_requests", 0),
            ("sessions", sessions.Count),
            ("statements", statements.Count),
            ("denied", statements.Count(t => t.Decision == "denied")),
            ("held", statements.Count(t => t.Held)),
            ("masked", statements.Sum(t => t.Masked)),
            ("approvals", identities.Sum(i => i.Approvals.Count)),
            ("unused_grants", identities.Sum(i => i.Unused.Count(u => u.Kind == "grant"))),
            ("unused_standing", identities.Sum(i => i.Unused.Count(u => u.Kind == "standing"))),
            ("damaged_recordings", 0),
            ("unrecorded_sessions", 0),
        ];
    }

    private void AssertCsv(List<Dictionary<string, string>> expected, List<string[]> actual)
    {
        Assert.Equal(expected.Select(r => r["record"]), actual.Select(r => r[0]));
        for (int i = 0; i < expected.Count; i++)
        {
            var row = CsvColumns.Select((c, at) => (c, at)).ToDictionary(x => x.c, x => actual[i][x.at], StringComparer.Ordinal);
            foreach (var column in CsvColumns)
            {
                bool unknowable = Unknowable.Contains(column) && row["record"] == "session"
                                  || column == "start" && row["record"] == "statement";
                if (!unknowable)
                {
                    Assert.True(expected[i][column] == row[column],
                        $"row {i + 1} ({row["record"]} {row["id"]}{row["text"]}), column {column}: expected '{expected[i][column]}', got '{row[column]}'");
                }
            }

            if (row["record"] == "session")
            {
                // The recording is the session's file in the gateway's folder; it ends after it starts.
                Assert.Equal(_gateway.RecordingDirectory, Path.GetDirectoryName(row["recording"]));
                Assert.Contains(row["id"], Path.GetFileName(row["recording"]), StringComparison.Ordinal);
                Assert.True(File.Exists(row["recording"]));
                Assert.True(string.CompareOrdinal(row["end"], row["start"]) >= 0, $"session {row["id"]} ends before it starts");
            }
            else if (row["record"] == "statement")
            {
                var session = actual.Single(r => r[0] == "session" && r[2] == row["session_id"]);
                Assert.InRange(string.CompareOrdinal(row["start"], session[6]), 0, int.MaxValue);
                Assert.InRange(string.CompareOrdinal(session[7], row["start"]), 0, int.MaxValue);
            }
        }
    }

    // ---- JSON ----------------------------------------------------------------------------------------------------

    private void AssertJson(Scenario scenario, IReadOnlyList<IdentityExpectation> identities, JsonElement root)
    {
        Assert.Equal("gatehouse.review/1", root.GetProperty("schema").GetString());
        Assert.Equal(Csv(scenario.Since), root.GetProperty("since").GetString());
        Assert.Equal(Csv(scenario.Until), root.GetProperty("until").GetString());
        Assert.Empty(root.GetProperty("warnings").EnumerateArray());
        var summary = root.GetProperty("summary");
        Assert.Equal(Summary(identities).Select(s => (s.Name, s.Value)), summary.EnumerateObject().Select(p => (p.Name, p.Value.GetInt64())));

        var actual = root.GetProperty("identities").EnumerateArray().ToList();
        Assert.Equal(identities.Select(i => i.Name), actual.Select(i => i.GetProperty("identity").GetString()));
        foreach (var (identity, element) in identities.Zip(actual))
        {
            Assert.Equal(
                identity.Grants.Select(g => Obj(("id", g.Id), ("connection", g.Connection), ("role", g.Role), ("status", g.Status), ("request_id", g.RequestId),
                    ("requested_at", Csv(g.RequestedAt)), ("reason", g.Reason), ("approved_by", g.ApprovedBy), ("approved_at", Csv(g.DecidedAt)),
                    ("approval_reason", g.DecisionReason), ("start", Csv(g.Start)), ("end", Csv(g.End)), ("duration_s", g.DurationSeconds),
                    ("revoked_at", null), ("revoked_by", null), ("revoke_reason", null), ("effective_end", Csv(g.End)), ("used", g.SessionIds.Count > 0),
                    ("sessions", g.SessionIds))),
                element.GetProperty("grants").EnumerateArray().Select(Obj));
            Assert.Equal(
                identity.Requests.Select(r => Obj(("id", r.Id), ("connection", r.Connection), ("role", r.Role), ("state", r.State),
                    ("duration_s", r.DurationSeconds), ("reason", r.Reason), ("requested_at", Csv(r.RequestedAt)), ("decided_by", r.DecidedBy),
                    ("decided_at", Csv(r.DecidedAt)), ("decision_reason", r.DecisionReason))),
                element.GetProperty("requests").EnumerateArray().Select(Obj));

            var sessions = element.GetProperty("sessions").EnumerateArray().ToList();
            Assert.Equal(identity.Sessions.Select(s => s.Id), sessions.Select(s => s.GetProperty("id").GetString()));
            foreach (var (s, x) in identity.Sessions.Zip(sessions))
            {
                Assert.Equal((s.Connection, s.Role, Csv(s.Start), s.Access, s.GrantId), (Str(x, "connection"), Str(x, "role"), Str(x, "start"), Str(x, "access"), Str(x, "grant_id")));
                Assert.StartsWith("127.0.0.1:", Str(x, "client_address"), StringComparison.Ordinal);
                Assert.Equal(s.Classes, string.Join(" ", x.GetProperty("statements_by_class").EnumerateObject().Select(p => $"{p.Name}={p.Value.GetInt32()}")));
                Assert.Equal((s.Statements.Count, s.Denied, s.Held, s.Masked), (x.GetProperty("statement_count").GetInt32(), x.GetProperty("denied").GetInt32(),
                    x.GetProperty("held").GetInt32(), x.GetProperty("masked").GetInt64()));
                Assert.Equal(s.Tables, x.GetProperty("tables").EnumerateArray().Select(t => t.GetString()));
                Assert.Equal(("ClientTerminated", null, "intact", true), (Str(x, "end_reason"), Str(x, "end_detail"), Str(x, "integrity"),
                    x.GetProperty("trustworthy").GetBoolean()));
                Assert.Empty(x.GetProperty("problems").EnumerateArray());
                Assert.Equal(
                    s.Statements.Select(t => (t.Text, "Q", t.Class, t.Decision, t.Rule, t.Held, t.Approver, t.Ticket, t.Result, t.Masked, 0)),
                    x.GetProperty("statements").EnumerateArray().Select(t => (Str(t, "text")!, Str(t, "message")!, Str(t, "class")!, Str(t, "decision")!,
                        Str(t, "rule"), t.GetProperty("held").GetBoolean(), Str(t, "approver"), Str(t, "ticket"), Str(t, "result")!,
                        t.GetProperty("masked").GetInt64(), t.GetProperty("parameters").GetArrayLength())));
            }

            Assert.Equal(
                identity.Approvals.Select(a => Obj(("id", a.Record.Request.Id), ("connection", a.Record.Request.Connection), ("role", a.Record.Request.Role),
                    ("rule", a.Record.Request.Rule), ("state", a.Record.State.ToString().ToLowerInvariant()), ("requested_at", Csv(a.Record.Request.RequestedAt)),
                    ("decided_by", a.Record.DecidedBy), ("decided_at", Csv(a.Record.DecidedAt)), ("reason", a.Record.Reason), ("session_id", a.SessionId),
                    ("statement", a.Record.Request.Statement))),
                element.GetProperty("approvals").EnumerateArray().Select(Obj));
            Assert.Equal(identity.Standing.Select(s => Obj(("connection", s.Connection), ("role", s.Role))),
                element.GetProperty("standing").EnumerateArray().Select(Obj));
            Assert.Equal(
                identity.Unused.Select(u => Obj(("kind", u.Kind), ("connection", u.Connection), ("role", u.Role), ("grant_id", u.GrantId),
                    ("from", Csv(u.From)), ("until", Csv(u.Until)))),
                element.GetProperty("unused").EnumerateArray().Select(Obj));
        }
    }

    private static string? Str(JsonElement e, string name) => e.GetProperty(name).GetString();

    /// <summary>An expected object: its members in order, as compact JSON text.</summary>
    private static string Obj(params (string Name, object? Value)[] members) =>
        JsonSerializer.Serialize(members.Select(m => new object?[] { m.Name, m.Value }));

    /// <summary>A report's object: its members in order, as compact JSON text of plain values.</summary>
    private static string Obj(JsonElement element) =>
        JsonSerializer.Serialize(element.EnumerateObject().Select(p => new object?[] { p.Name, Plain(p.Value) }));

    private static object? Plain(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString(),
        JsonValueKind.Number => value.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Array => value.EnumerateArray().Select(Plain).ToList(),
        JsonValueKind.Null => null,
        _ => value.GetRawText(),
    };

    // ---- Formats -------------------------------------------------------------------------------------------------

    private static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string? Csv(DateTimeOffset? t) => t?.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    private static string Table(DateTimeOffset? t) => t!.Value.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string Rx(string text) => System.Text.RegularExpressions.Regex.Escape(text);

    /// <summary>The CSV read by a strict RFC 4180 reader; every row has every column.</summary>
    private static List<string[]> ParseCsv(string text)
    {
        var rows = Rfc4180.Parse(text);
        Assert.All(rows, r => Assert.Equal(CsvColumns.Length, r.Length));
        return rows;
    }
}
