using System.CommandLine;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Gatehouse.Host;
using Gatehouse.Host.Admin;
using Gatehouse.IntegrationTests.Infrastructure;
using Gatehouse.Policy.Access;
using Gatehouse.Policy.Approvals;
using Npgsql;

namespace Gatehouse.IntegrationTests;

/// <summary>
/// Just-in-time grants, held statements' approvals and the admin API end to end: the gatehouse command line run
/// in-process against a running gateway's admin API, the API's authentication, state that outlives a restart,
/// and a revocation that ends a live Npgsql session.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed partial class AccessTests(PostgresFixture fixture) : IAsyncLifetime
{
    public const string AdminToken = "it-admin-token-0123456789abcdef";

    /// <summary>alice reads on app; writer needs a grant (at most 2 h) that someone else approves.</summary>
    public const string GrantPolicy = """
        roles:
          reader:
            allow: [read, transaction, session]
          writer:
            allow: all
        bindings:
          - identities: [alice]
            connections: [app]
            role: writer
            access: grant
            max_duration: 2h
          - identities: [alice]
            connections: ["*"]
            role: reader
        """;

    private static readonly string AdminYaml = $"{{ address: 127.0.0.1:0, token: {{ value: \"{AdminToken}\" }} }}";

    private GatewayHost _gateway = null!;

    private PostgresServer Server => fixture.Server;

    private Uri AdminUrl => _gateway.Server.AdminUrl!;

    public Task InitializeAsync()
    {
        // The command line reads the token from here with --url (one value for the whole test run).
        Environment.SetEnvironmentVariable("GATEHOUSE_ADMIN_TOKEN", AdminToken);
        _gateway = GatewayHost.Start(Server, new GatewaySettings { Policy = GrantPolicy, Admin = AdminYaml });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [GeneratedRegex(@"\b(ar|gr|ap)_[a-z0-9]{10}\b")]
    private static partial Regex IdPattern();

    private static string FirstId(string text, string prefix) =>
        IdPattern().Matches(text).Select(m => m.Value).First(v => v.StartsWith(prefix + "_", StringComparison.Ordinal));

    /// <summary>Runs `gatehouse ARGS` in-process, as the binary would, capturing what it prints.</summary>
    private static async Task<(int Code, string Out, string Err)> GatehouseAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = await Program.BuildCommand().Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error });
        return (code, output.ToString(), error.ToString());
    }

    private Task<(int Code, string Out, string Err)> CliAsync(params string[] args) => GatehouseAsync([.. args, "--url", AdminUrl.ToString()]);

    private HttpClient Http(string? token = AdminToken)
    {
        var http = new HttpClient { BaseAddress = AdminUrl };
        if (token is not null)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        return http;
    }

    private static StringContent Json(object body) => new(JsonSerializer.Serialize(body, AdminJson.Options), Encoding.UTF8, "application/json");

    // ---- The command line ----------------------------------------------------------------------------------------

    [Fact]
    public async Task The_cli_requests_approves_lists_and_revokes_a_grant()
    {
        var request = await CliAsync("access", "request", "--connection", "app", "--role", "writer", "--for", "1h", "--reason", "ticket 42", "--as", "alice");
        Assert.True(request.Code == 0, request.Err);
        Assert.Contains("is pending: alice asks for role writer on app for 1h", request.Out, StringComparison.Ordinal);
        string id = FirstId(request.Out, "ar");

        var pending = await CliAsync("access", "list");
        Assert.Equal(0, pending.Code);
        Assert.Contains(id, pending.Out, StringComparison.Ordinal);
        Assert.Contains("ticket 42", pending.Out, StringComparison.Ordinal);

        var self = await CliAsync("access", "approve", id, "--as", "alice");
        Assert.Equal(1, self.Code);
        Assert.Contains("alice cannot approve their own request", self.Err, StringComparison.Ordinal);

        var approved = await CliAsync("access", "approve", id, "--as", "bob", "--reason", "checked the ticket");
        Assert.True(approved.Code == 0, approved.Err);
        Assert.Contains($"Access request {id} approved: grant gr_", approved.Out, StringComparison.Ordinal);
        string grant = FirstId(approved.Out, "gr");
        Assert.True(_gateway.Server.Access.HasLiveGrant("alice", "app", "writer", DateTimeOffset.UtcNow, out var end));
        Assert.InRange(end - DateTimeOffset.UtcNow, TimeSpan.FromMinutes(59), TimeSpan.FromMinutes(60));

        var twice = await CliAsync("access", "deny", id, "--as", "carol");
        Assert.Equal(1, twice.Code);
        Assert.Contains("a request is decided once", twice.Err, StringComparison.Ordinal);

        var live = await CliAsync("access", "list");
        Assert.Contains(grant, live.Out, StringComparison.Ordinal);
        Assert.Matches($@"{grant}\s+live\s+alice\s+app\s+writer", live.Out);

        var revoked = await CliAsync("access", "revoke", grant, "--as", "carol", "--reason", "done");
        Assert.True(revoked.Code == 0, revoked.Err);
        Assert.Contains($"Grant {grant} (alice, role writer on app) revoked; 0 live session(s) ended.", revoked.Out, StringComparison.Ordinal);
        Assert.False(_gateway.Server.Access.HasLiveGrant("alice", "app", "writer", DateTimeOffset.UtcNow, out _));

        var history = await CliAsync("access", "list", "--all");
        Assert.Matches($@"{grant}\s+revoked\s+alice", history.Out);
        Assert.Matches($@"{id}\s+approved\s+alice", history.Out);
    }

    [Theory]
    [InlineData(new[] { "access", "request", "--connection", "app", "--role", "writer", "--for", "5h", "--reason", "r", "--as", "alice" }, 1, "(max_duration 2h)")]
    [InlineData(new[] { "access", "request", "--connection", "app", "--role", "writer", "--for", "soon", "--reason", "r", "--as", "alice" }, 2, "--for must be a duration")]
    [InlineData(new[] { "access", "request", "--connection", "app", "--role", "reader", "--for", "1h", "--reason", "r", "--as", "alice" }, 1, "no policy binding with access: grant")]
    [InlineData(new[] { "access", "request", "--connection", "nowhere", "--for", "1h", "--reason", "r", "--as", "alice" }, 1, "connection \"nowhere\" is not configured")]
    [InlineData(new[] { "access", "deny", "ar_aaaaaaaaaa", "--as", "bob" }, 1, "no access request ar_aaaaaaaaaa")]
    [InlineData(new[] { "access", "revoke", "gr_aaaaaaaaaa", "--as", "bob" }, 1, "no grant gr_aaaaaaaaaa")]
    [InlineData(new[] { "approvals", "approve", "ap_aaaaaaaaaa", "--as", "bob" }, 1, "no approval request ap_aaaaaaaaaa")]
    public async Task The_cli_explains_refusals_with_an_exit_code(string[] args, int code, string message)
    {
        var result = await CliAsync(args);
        Assert.True(code == result.Code, $"exit {result.Code}: {result.Out} {result.Err}");
        Assert.Contains(message, result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_cli_says_when_it_cannot_find_or_reach_the_gateway()
    {
        var nowhere = await GatehouseAsync("access", "list");
        Assert.Equal(2, nowhere.Code);
        Assert.Contains("say where the gateway is: --config FILE, or --url URL", nowhere.Err, StringComparison.Ordinal);

        int closed = FreePort();
        var unreachable = await GatehouseAsync("approvals", "list", "--url", $"http://127.0.0.1:{closed}");
        Assert.Equal(3, unreachable.Code);
        Assert.Contains($"cannot reach the gateway's admin API at http://127.0.0.1:{closed}/", unreachable.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_cli_lists_shows_and_decides_held_statements()
    {
        var now = DateTimeOffset.UtcNow;
        var broker = _gateway.Server.Approvals;
        var held = broker.Submit(new ApprovalRequest(StateIds.New(StateIds.Approval), "alice", "app", 41, "writer", "ledger-needs-approval",
            "DELETE FROM ledger\nWHERE id = 1", now, now.AddMinutes(10)));
        var other = broker.Submit(new ApprovalRequest(StateIds.New(StateIds.Approval), "alice", "app", 42, "writer", "ledger-needs-approval",
            "TRUNCATE ledger", now, now.AddMinutes(10)));

        var list = await CliAsync("approvals", "list");
        Assert.Equal(0, list.Code);
        Assert.Matches($@"{held.Request.Id}\s+pending\s+alice\s+app\s+ledger-needs-approval", list.Out);
        Assert.Contains("DELETE FROM ledger...", list.Out, StringComparison.Ordinal);

        var show = await CliAsync("approvals", "show", held.Request.Id);
        Assert.Contains("statement:\nDELETE FROM ledger\nWHERE id = 1", show.Out.ReplaceLineEndings("\n"), StringComparison.Ordinal);

        var self = await CliAsync("approvals", "approve", held.Request.Id, "--as", "alice");
        Assert.Equal(1, self.Code);
        Assert.Contains("alice sent this statement and cannot approve it", self.Err, StringComparison.Ordinal);
        Assert.Equal(ApprovalState.Pending, held.State);

        var approved = await CliAsync("approvals", "approve", held.Request.Id, "--as", "bob", "--reason", "reviewed");
        Assert.True(approved.Code == 0, approved.Err);
        Assert.Equal((ApprovalState.Approved, "bob", "reviewed"), (held.State, held.DecidedBy, held.Reason));

        var denied = await CliAsync("approvals", "deny", other.Request.Id, "--as", "bob", "--reason", "not during the audit");
        Assert.True(denied.Code == 0, denied.Err);
        Assert.Equal(ApprovalState.Denied, other.State);

        var again = await CliAsync("approvals", "deny", held.Request.Id, "--as", "carol");
        Assert.Equal(1, again.Code);
        Assert.Contains("is approved; a request is decided once", again.Err, StringComparison.Ordinal);

        var all = await CliAsync("approvals", "list", "--all");
        Assert.Matches($@"{held.Request.Id}\s+approved", all.Out);
        Assert.Matches($@"{other.Request.Id}\s+denied", all.Out);
        Assert.DoesNotContain(held.Request.Id, (await CliAsync("approvals", "list")).Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_cli_finds_the_gateway_through_its_config_file()
    {
        int port = FreePort();
        await using var gateway = GatewayHost.Start(Server, new GatewaySettings
        {
            Policy = GrantPolicy,
            Admin = $"{{ address: 127.0.0.1:{port}, token: {{ value: \"{AdminToken}\" }} }}",
        });
        string configFile = Path.Combine(Path.GetTempPath(), $"gatehouse-cli-{port}.yaml");
        await File.WriteAllTextAsync(configFile, gateway.Yaml);
        try
        {
            var request = await GatehouseAsync("access", "request", "-c", configFile, "--connection", "app", "--for", "30m", "--reason", "by config", "--as", "alice");
            Assert.True(request.Code == 0, request.Err);
            Assert.Contains("asks for role writer on app for 30m", request.Out, StringComparison.Ordinal);
            var list = await GatehouseAsync("access", "list", "--config", configFile);
            Assert.Contains("by config", list.Out, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(configFile);
        }
    }

    // ---- The admin API -------------------------------------------------------------------------------------------

    [Theory]
    [InlineData(null)]
    [InlineData("wrong-token-0123456789abcdef")]
    [InlineData("it-admin-token-0123456789abcde")] // a prefix of the right one
    public async Task The_admin_api_refuses_requests_without_the_right_token(string? token)
    {
        using var http = Http(token);
        foreach (var path in new[] { "approvals", "access/requests", "grants", "sessions", "audit" })
        {
            using var response = await http.GetAsync(path);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);
            Assert.Contains("\"code\":\"unauthorized\"", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using var post = await http.PostAsync("access/requests", Json(new { identity = "alice", connection = "app", role = "writer", duration = "1h", reason = "r" }));
        Assert.Equal(HttpStatusCode.Unauthorized, post.StatusCode);
        Assert.Empty(await _gateway.Server.Access.ListRequestsAsync(all: true));

        // Health needs no token and says nothing secret.
        using var health = await http.GetAsync("health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Contains("\"status\":\"ok\"", await health.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_admin_api_answers_json_and_explains_bad_requests()
    {
        using var http = Http();
        using (var response = await http.GetAsync("approvals"))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("[]", await response.Content.ReadAsStringAsync());
        }

        using (var response = await http.PostAsync("access/requests", new StringContent("{not json", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains("not valid JSON", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using (var response = await http.PostAsync("access/requests", Json(new { identity = "alice", connection = "app", reason = "r" })))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains("needs \\u0022duration\\u0022", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using (var response = await http.PostAsync("approvals/ap_aaaaaaaaaa/approve", Json(new { reason = "no approver" })))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }

        using (var response = await http.PostAsync("access/requests", Json(new { identity = "alice", connection = "app", role = "writer", duration = "90m", reason = "r" })))
        {
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            var created = await response.Content.ReadFromJsonAsync<AccessRequestView>(AdminJson.Options);
            Assert.Equal(("pending", "1h30m", 5400L), (created!.State, created.Duration, created.DurationSeconds));
            using var one = await http.GetAsync($"access/requests/{created.Id}");
            Assert.Equal(HttpStatusCode.OK, one.StatusCode);
        }

        using (var response = await http.GetAsync("grants/gr_aaaaaaaaaa"))
        {
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }
    }

    // ---- State and sessions --------------------------------------------------------------------------------------

    [Fact]
    public async Task Grants_approvals_and_audit_survive_a_restart_on_the_same_database()
    {
        string path = Path.Combine(Path.GetTempPath(), $"gatehouse-restart-{Guid.NewGuid():N}.db");
        var settings = new GatewaySettings { Policy = GrantPolicy, Admin = AdminYaml, State = $"{{ path: {path} }}" };
        string grantId, approvalId, requestId;
        try
        {
            await using (var first = GatewayHost.Start(Server, settings))
            {
                var access = first.Server.Access;
                requestId = (await access.RequestAsync("alice", "app", "writer", TimeSpan.FromHours(1), "migration")).Request!.Id;
                grantId = (await access.DecideAsync(requestId, "bob", approve: true)).Grant!.Id;
                var now = DateTimeOffset.UtcNow;
                approvalId = first.Server.Approvals.Submit(new ApprovalRequest(StateIds.New(StateIds.Approval), "alice", "app", 1, "writer", "rule",
                    "DELETE FROM t", now, now.AddMinutes(5))).Request.Id;
                Assert.Equal(ApprovalDecisionResult.Done, first.Server.Approvals.Decide(approvalId, "bob", approve: true));
            }

            await using var second = GatewayHost.Start(Server, settings);
            Assert.True(second.Server.Access.HasLiveGrant("alice", "app", "writer", DateTimeOffset.UtcNow, out _));
            using var http = new HttpClient { BaseAddress = second.Server.AdminUrl };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminToken);
            var grants = await http.GetFromJsonAsync<List<GrantView>>("grants", AdminJson.Options);
            Assert.Equal(grantId, Assert.Single(grants!).Id);
            var request = await http.GetFromJsonAsync<AccessRequestView>($"access/requests/{requestId}", AdminJson.Options);
            Assert.Equal(("approved", "bob", grantId), (request!.State, request.DecidedBy, request.GrantId));
            var approval = await http.GetFromJsonAsync<ApprovalView>($"approvals/{approvalId}", AdminJson.Options);
            Assert.Equal(("approved", "bob", "DELETE FROM t"), (approval!.State, approval.DecidedBy, approval.Statement));
            Assert.Equal(ApprovalDecisionResult.NotPending, second.Server.Approvals.Decide(approvalId, "carol", approve: false));

            var audit = await second.Server.Store.ListAuditAsync(null, 100);
            foreach (var kind in new[] { AuditKinds.AccessRequested, AuditKinds.AccessApproved, AuditKinds.GrantStarted, AuditKinds.ApprovalRequested, AuditKinds.ApprovalApproved })
            {
                Assert.Contains(audit, e => e.Kind == kind);
            }
        }
        finally
        {
            foreach (var suffix in new[] { "", "-wal", "-shm" })
            {
                File.Delete(path + suffix);
            }
        }
    }

    [Fact]
    public async Task Revoking_a_grant_ends_the_identitys_live_session_at_once()
    {
        await using var connection = await _gateway.OpenAsync();
        await using (var select = new NpgsqlCommand("SELECT 1", connection))
        {
            Assert.Equal(1, await select.ExecuteScalarAsync());
        }

        using var http = Http();
        var sessions = await http.GetFromJsonAsync<List<SessionView>>("sessions", AdminJson.Options);
        var mine = Assert.Single(sessions!, s => s.Identity == "alice");
        Assert.Equal(("app", "relaying"), (mine.Connection, mine.Stage));

        var requestId = (await _gateway.Server.Access.RequestAsync("alice", "app", "writer", TimeSpan.FromMinutes(30), "hotfix")).Request!.Id;
        var grantId = (await _gateway.Server.Access.DecideAsync(requestId, "bob", approve: true)).Grant!.Id;

        using var revoke = await http.PostAsync($"grants/{grantId}/revoke", Json(new { by = "carol", reason = "incident over" }));
        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        var revoked = await revoke.Content.ReadFromJsonAsync<GrantView>(AdminJson.Options);
        Assert.Equal(("revoked", "carol", 1), (revoked!.Status, revoked.RevokedBy, revoked.SessionsEnded));

        var ended = await _gateway.WaitForSessionEndAsync("Killed");
        Assert.NotNull(ended);
        Assert.Contains($"grant {grantId} revoked by carol: incident over", ended.Message, StringComparison.Ordinal);
        await using var after = new NpgsqlCommand("SELECT 1", connection);
        var ex = await Assert.ThrowsAnyAsync<Exception>(() => after.ExecuteScalarAsync());
        Assert.True(ex is NpgsqlException, ex.ToString());

        // Revoked twice: refused. And the kill is in the audit log.
        using var again = await http.PostAsync($"grants/{grantId}/revoke", Json(new { by = "carol" }));
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        await _gateway.Server.Audit.FlushAsync();
        var audit = await _gateway.Server.Store.ListAuditAsync(null, 100);
        Assert.Contains(audit, e => e.Kind == AuditKinds.SessionKilled && e.Identity == "alice" && e.Detail!.Contains(grantId, StringComparison.Ordinal));
        Assert.Contains(audit, e => e.Kind == AuditKinds.GrantRevoked && e.Subject == grantId && e.Actor == "carol");
    }

    [Fact]
    public async Task Sessions_are_recorded_with_their_start_and_end()
    {
        long id;
        await using (var connection = await _gateway.OpenAsync())
        {
            id = _gateway.Server.Gateway.Sessions.List().Single(s => s.Identity == "alice").Id;
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (!(await _gateway.Server.Store.ListAuditAsync(null, 100)).Any(e => e.Kind == AuditKinds.SessionStarted && e.SessionId == id)
                   && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }

        Assert.NotNull(await _gateway.WaitForSessionEndAsync("ClientTerminated"));
        await _gateway.Server.Audit.FlushAsync();
        var row = Assert.Single(await _gateway.Server.Store.ListSessionsAsync(10), s => s.SessionId == id);
        Assert.Equal(("alice", "app", "client_terminated"), (row.Identity, row.Connection, row.EndReason));
        Assert.True(row.BytesFromClient > 0 && row.BytesFromServer > 0);
        var audit = await _gateway.Server.Store.ListAuditAsync(null, 100);
        Assert.Contains(audit, e => e.Kind == AuditKinds.SessionStarted && e.SessionId == id);
        Assert.Contains(audit, e => e.Kind == AuditKinds.SessionEnded && e.SessionId == id && e.Detail!.StartsWith("client_terminated", StringComparison.Ordinal));
    }

    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
