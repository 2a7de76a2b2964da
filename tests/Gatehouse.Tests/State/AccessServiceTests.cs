using Gatehouse.Host.Config;
using Gatehouse.Host.State;
using Gatehouse.Policy.Access;
using Gatehouse.Policy.Rules;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gatehouse.Tests.State;

/// <summary>Just-in-time grants against a real SQLite store and a compiled policy, with a clock moved by hand.</summary>
public sealed class AccessServiceTests : IAsyncLifetime
{
    /// <summary>
    /// alice may get writer on app by grant (at most 2 h; on-call members up to 30 min without a person), and
    /// otherwise reads; dba is a second grant binding; bob has nothing.
    /// </summary>
    public const string GrantPolicy = """
        roles:
          reader:
            allow: [read]
          writer:
            allow: [read, write]
          dba:
            allow: all
        bindings:
          - identities: [alice]
            connections: [app]
            role: writer
            access: grant
            max_duration: 2h
            auto_approve: { groups: [oncall], max_duration: 30m }
          - identities: [alice]
            connections: [app]
            role: dba
            access: grant
          - identities: [alice]
            connections: [app]
            role: reader
        """;

    private readonly ManualTime _time = ManualTime.At2030();
    private readonly List<AuditEvent> _audit = [];
    private readonly Dictionary<string, string[]> _groups = new(StringComparer.Ordinal);
    private TempStore _temp = null!;
    private PolicyStore _policy = null!;

    public async Task InitializeAsync()
    {
        _temp = await TempStore.OpenAsync();
        _policy = new PolicyStore(PolicyLoader.Load(GrantPolicy, "policy.yaml", PolicyCompileContext.None).Snapshot!);
    }

    public async Task DisposeAsync() => await _temp.DisposeAsync();

    private AccessService Service(bool allowSelfApproval = false)
    {
        var service = new AccessService(_temp.Store, _policy, sessions: null, new ListSink(_audit), new AccessOptions(allowSelfApproval, TimeSpan.FromHours(1)),
            NullLogger.Instance, isKnownConnection: c => c == "app", groupsOf: i => _groups.TryGetValue(i, out var g) ? g : [], time: _time);
        _policy.Grants = service;
        return service;
    }

    private sealed class ListSink(List<AuditEvent> events) : IAuditSink
    {
        public void Record(AuditEvent auditEvent)
        {
            lock (events)
            {
                events.Add(auditEvent);
            }
        }
    }

    private AccessResolution Login(string identity = "alice") => _policy.Current.ResolveAccess(identity, [], "app", _policy.Grants, _time.GetUtcNow());

    [Fact]
    public async Task A_request_approved_by_someone_else_gives_the_role_at_login_until_the_grant_ends()
    {
        await using var access = Service();
        Assert.Equal("reader", Login().Policy!.Role);

        var requested = await access.RequestAsync("alice", "app", "writer", TimeSpan.FromHours(1), "ticket 42");
        Assert.True(requested.Succeeded, requested.Error);
        Assert.Equal(AccessRequestState.Pending, requested.Request!.State);
        Assert.Null(requested.Grant);
        Assert.Equal("reader", Login().Policy!.Role);

        _time.Advance(TimeSpan.FromMinutes(5));
        var approved = await access.DecideAsync(requested.Request.Id, "bob", approve: true, "looks right");
        Assert.True(approved.Succeeded, approved.Error);
        var grant = approved.Grant!;
        Assert.Equal((_time.GetUtcNow(), _time.GetUtcNow().AddHours(1), "bob", "ticket 42"), (grant.Start, grant.End, grant.Approver, grant.Reason));

        Assert.True(access.HasLiveGrant("alice", "app", "writer", _time.GetUtcNow(), out var end));
        Assert.Equal(grant.End, end);
        var login = Login();
        Assert.Equal(("writer", grant.End), (login.Policy!.Role, login.GrantEnd));
        Assert.False(access.HasLiveGrant("alice", "app", "dba", _time.GetUtcNow(), out _));
        Assert.False(access.HasLiveGrant("alice", "other", "writer", _time.GetUtcNow(), out _));

        _time.Advance(TimeSpan.FromHours(1));
        Assert.False(access.HasLiveGrant("alice", "app", "writer", _time.GetUtcNow(), out _));
        Assert.Equal("reader", Login().Policy!.Role);
        await access.SweepAsync();
        Assert.Contains(_audit, e => e.Kind == AuditKinds.GrantExpired && e.Subject == grant.Id);
        Assert.Empty(await access.ListGrantsAsync(all: false));
        Assert.Equal("expired", Assert.Single(await access.ListGrantsAsync(all: true)).StatusAt(_time.GetUtcNow()));
    }

    [Fact]
    public async Task Self_approval_is_refused_unless_allowed_and_a_request_is_decided_once()
    {
        await using (var access = Service())
        {
            var id = (await access.RequestAsync("alice", "app", "writer", TimeSpan.FromMinutes(45), "deploy")).Request!.Id;
            var self = await access.DecideAsync(id, "alice", approve: true);
            Assert.Equal(AccessOutcome.SelfApprovalRefused, self.Outcome);
            Assert.Contains("cannot approve their own request", self.Error, StringComparison.Ordinal);

            Assert.Equal(AccessOutcome.Done, (await access.DecideAsync(id, "bob", approve: false, "not now")).Outcome);
            Assert.Equal(AccessOutcome.NotPending, (await access.DecideAsync(id, "carol", approve: true)).Outcome);
            Assert.False(access.HasLiveGrant("alice", "app", "writer", _time.GetUtcNow(), out _));
            Assert.Equal(AccessOutcome.NotFound, (await access.DecideAsync("ar_missing", "bob", approve: true)).Outcome);
            Assert.Contains(_audit, e => e.Kind == AuditKinds.AccessDenied && e.Subject == id && e.Actor == "bob");
        }

        await using (var lenient = Service(allowSelfApproval: true))
        {
            var id = (await lenient.RequestAsync("alice", "app", "writer", TimeSpan.FromMinutes(45), "deploy")).Request!.Id;
            Assert.Equal(AccessOutcome.Done, (await lenient.DecideAsync(id, "alice", approve: true)).Outcome);
            Assert.True(lenient.HasLiveGrant("alice", "app", "writer", _time.GetUtcNow(), out _));
        }
    }

    [Theory]
    [InlineData(new[] { "oncall" }, "30m", true)]
    [InlineData(new[] { "staff", "oncall" }, "10m", true)]
    [InlineData(new[] { "oncall" }, "31m", false)] // over auto_approve.max_duration: a person decides
    [InlineData(new[] { "staff" }, "10m", false)] // not in an auto-approving group
    [InlineData(new string[0], "10m", false)]
    public async Task Auto_approve_covers_members_of_its_groups_up_to_its_duration(string[] groups, string duration, bool automatic)
    {
        _groups["alice"] = groups;
        await using var access = Service();
        Assert.True(DurationText.TryParse(duration, out var span));
        var result = await access.RequestAsync("alice", "app", "writer", span, "incident 7");

        Assert.True(result.Succeeded, result.Error);
        Assert.Equal(automatic ? AccessRequestState.Approved : AccessRequestState.Pending, result.Request!.State);
        Assert.Equal(automatic, result.Grant is not null);
        Assert.Equal(automatic, access.HasLiveGrant("alice", "app", "writer", _time.GetUtcNow(), out _));
        if (automatic)
        {
            Assert.Equal(AccessService.AutoApprover, result.Grant!.Approver);
            Assert.Contains("member of group oncall", result.Request.DecisionReason, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("alice", "app", "writer", "3h", "r", "longer than the policy allows for role \"writer\" on \"app\" (max_duration 2h)")]
    [InlineData("alice", "app", "dba", "9h", "r", "(max_duration 8h)")] // the default cap
    [InlineData("bob", "app", "writer", "1h", "r", "no policy binding with access: grant gives \"bob\" role \"writer\"")]
    [InlineData("alice", "app", "reader", "1h", "r", "role \"reader\"")] // a standing binding is not requested
    [InlineData("alice", "nowhere", "writer", "1h", "r", "connection \"nowhere\" is not configured")]
    [InlineData("alice", "app", "writer", "1h", " ", "needs a reason")]
    [InlineData("alice", "app", "writer", "0", "r", "positive duration")]
    public async Task Requests_outside_the_policy_are_refused_with_the_reason(string identity, string connection, string role, string duration, string reason,
        string expected)
    {
        await using var access = Service();
        Assert.True(DurationText.TryParse(duration, out var span));
        var result = await access.RequestAsync(identity, connection, role, span, reason);
        Assert.Equal(AccessOutcome.Invalid, result.Outcome);
        Assert.Contains(expected, result.Error, StringComparison.Ordinal);
        Assert.Empty(await access.ListRequestsAsync(all: true));
    }

    [Fact]
    public async Task Groups_a_login_reported_count_for_requests_until_its_credential_expires()
    {
        await using var access = new AccessService(_temp.Store, _policy, sessions: null, new ListSink(_audit), new AccessOptions(), NullLogger.Instance,
            time: _time);
        _policy.GroupMemory = access;
        _policy.GroupMemory.Remember("alice", ["oncall"], _time.GetUtcNow().AddMinutes(10));

        Assert.NotNull((await access.RequestAsync("alice", "app", "writer", TimeSpan.FromMinutes(15), "page")).Grant);

        _time.Advance(TimeSpan.FromMinutes(10));
        var later = await access.RequestAsync("alice", "app", "writer", TimeSpan.FromMinutes(15), "page again");
        Assert.Equal(AccessRequestState.Pending, later.Request!.State);
    }

    [Fact]
    public async Task Without_a_role_the_first_grant_binding_that_applies_is_requested()
    {
        await using var access = Service();
        var result = await access.RequestAsync("alice", "app", role: null, TimeSpan.FromHours(1), "r");
        Assert.Equal("writer", result.Request!.Role);
    }

    [Fact]
    public async Task A_pending_request_expires_at_its_deadline()
    {
        await using var access = Service();
        var id = (await access.RequestAsync("alice", "app", "writer", TimeSpan.FromMinutes(30), "r")).Request!.Id;
        _time.Advance(TimeSpan.FromMinutes(61));
        var late = await access.DecideAsync(id, "bob", approve: true);
        Assert.Equal(AccessOutcome.NotPending, late.Outcome);
        Assert.Contains("expired", late.Error, StringComparison.Ordinal);

        await access.SweepAsync();
        Assert.Equal(AccessRequestState.Expired, (await access.GetRequestAsync(id))!.State);
        Assert.Contains(_audit, e => e.Kind == AuditKinds.AccessExpired && e.Subject == id);
    }

    [Fact]
    public async Task A_revoked_grant_is_gone_at_once_and_is_revoked_once()
    {
        _groups["alice"] = ["oncall"];
        await using var access = Service();
        var grant = (await access.RequestAsync("alice", "app", "writer", TimeSpan.FromMinutes(20), "hotfix")).Grant!;
        Assert.Equal("writer", Login().Policy!.Role);

        var revoked = await access.RevokeAsync(grant.Id, "carol", "done early");
        Assert.True(revoked.Succeeded, revoked.Error);
        Assert.Equal(("carol", "done early"), (revoked.Grant!.RevokedBy, revoked.Grant.RevokeReason));
        Assert.False(access.HasLiveGrant("alice", "app", "writer", _time.GetUtcNow(), out _));
        Assert.Equal("reader", Login().Policy!.Role);
        Assert.Equal(AccessOutcome.NotPending, (await access.RevokeAsync(grant.Id, "carol")).Outcome);
        Assert.Equal(AccessOutcome.NotFound, (await access.RevokeAsync("gr_missing", "carol")).Outcome);
        Assert.Contains(_audit, e => e.Kind == AuditKinds.GrantRevoked && e.Subject == grant.Id && e.Actor == "carol");
    }

    [Fact]
    public async Task Approval_checks_the_policy_in_force_then()
    {
        await using var access = Service();
        var id = (await access.RequestAsync("alice", "app", "writer", TimeSpan.FromHours(2), "r")).Request!.Id;
        _policy.Swap(PolicyLoader.Load(GrantPolicy.Replace("max_duration: 2h", "max_duration: 1h", StringComparison.Ordinal), "policy.yaml",
            PolicyCompileContext.None).Snapshot!);

        var result = await access.DecideAsync(id, "bob", approve: true);
        Assert.Equal(AccessOutcome.Invalid, result.Outcome);
        Assert.Contains("now allows at most 1h", result.Error, StringComparison.Ordinal);
        Assert.Equal(AccessRequestState.Pending, (await access.GetRequestAsync(id))!.State);
    }

    [Fact]
    public async Task Grants_survive_a_new_service_on_the_same_store()
    {
        _groups["alice"] = ["oncall"];
        await using (var first = Service())
        {
            Assert.NotNull((await first.RequestAsync("alice", "app", "writer", TimeSpan.FromMinutes(30), "r")).Grant);
        }

        await using var second = Service();
        Assert.False(second.HasLiveGrant("alice", "app", "writer", _time.GetUtcNow(), out _)); // not loaded yet
        await second.RefreshAsync();
        Assert.True(second.HasLiveGrant("alice", "app", "writer", _time.GetUtcNow(), out _));
    }
}
