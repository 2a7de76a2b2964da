using Gatehouse.Host.Config;
using Gatehouse.Policy.Access;
using Gatehouse.Policy.Rules;

namespace Gatehouse.Tests.Policy;

/// <summary>Bindings with <c>access: grant</c>: how they compile, and how a login resolves with and without a live grant.</summary>
public sealed class GrantBindingTests
{
    private const string Policy = """
        roles:
          reader: { allow: [read] }
          writer: { allow: [read, write] }
          dba: { allow: all }
        bindings:
          - identities: [alice]
            connections: [app]
            role: writer
            access: grant
            max_duration: 4h
            auto_approve:
              groups: [oncall]
              max_duration: 1h
          - groups: [dbas]
            connections: ["*"]
            role: dba
            access: grant
          - identities: ["*"]
            connections: [app]
            role: reader
            access: standing
        """;

    private static readonly DateTimeOffset Now = new(2030, 1, 1, 12, 0, 0, TimeSpan.Zero);

    private static PolicySnapshot Compile(string yaml = Policy)
    {
        var result = PolicyLoader.Load(yaml, "policy.yaml", PolicyCompileContext.None);
        Assert.Empty(result.Errors);
        return result.Snapshot!;
    }

    /// <summary>Live grants as a set of (identity, connection, role), each ending in an hour.</summary>
    private sealed class Grants(params (string Identity, string Connection, string Role)[] live) : IGrantCheck
    {
        public bool HasLiveGrant(string identity, string connection, string role, DateTimeOffset now, out DateTimeOffset end)
        {
            end = now.AddHours(1);
            return live.Contains((identity, connection, role));
        }
    }

    [Fact]
    public void Grant_terms_carry_the_cap_and_the_auto_approval()
    {
        var snapshot = Compile();
        Assert.True(snapshot.HasGrantBindings);
        var writer = snapshot.FindGrantTerms("alice", [], "app", "writer")!;
        Assert.Equal((TimeSpan.FromHours(4), TimeSpan.FromHours(1)), (writer.MaxDuration, writer.AutoApproveMaxDuration));
        Assert.True(writer.AutoApproves(["oncall"], TimeSpan.FromHours(1)));
        Assert.False(writer.AutoApproves(["oncall"], TimeSpan.FromMinutes(61)));
        Assert.False(writer.AutoApproves(["dev"], TimeSpan.FromMinutes(5)));

        var dba = snapshot.FindGrantTerms("carol", ["dbas"], "reports", null)!;
        Assert.Equal(("dba", GrantTerms.DefaultMaxDuration, false), (dba.Role, dba.MaxDuration, dba.AutoApproves(["dbas"], TimeSpan.FromMinutes(1))));

        Assert.Null(snapshot.FindGrantTerms("alice", [], "app", "reader")); // standing, not requested
        Assert.Null(snapshot.FindGrantTerms("bob", [], "app", "writer"));
        Assert.Null(snapshot.FindGrantTerms("alice", [], "reports", "writer"));
        Assert.Equal("writer", snapshot.FindGrantTerms("alice", [], "app", null)!.Role);
    }

    [Fact]
    public void A_grant_binding_matches_only_with_a_live_grant_and_otherwise_falls_through()
    {
        var snapshot = Compile();

        var none = snapshot.ResolveAccess("alice", [], "app", new Grants(), Now);
        Assert.Equal(("reader", (DateTimeOffset?)null), (none.Policy!.Role, none.GrantEnd));

        var granted = snapshot.ResolveAccess("alice", [], "app", new Grants(("alice", "app", "writer")), Now);
        Assert.Equal(("writer", Now.AddHours(1)), (granted.Policy!.Role, granted.GrantEnd));
        Assert.True(granted.ViaGrant);

        // A grant of another connection, role or identity is not this one.
        Assert.Equal("reader", snapshot.ResolveAccess("alice", [], "app", new Grants(("alice", "other", "writer"), ("bob", "app", "writer")), Now).Policy!.Role);

        // The plain Resolve knows no grants: it fails closed to the standing bindings.
        Assert.Equal("reader", snapshot.Resolve("alice", [], "app")!.Role);
        Assert.Equal("reader", snapshot.ResolveAccess("alice", [], "app", grants: null, Now).Policy!.Role);
    }

    [Fact]
    public void Without_any_access_the_resolution_names_the_role_to_request()
    {
        var snapshot = Compile();
        var carol = snapshot.ResolveAccess("carol", ["dbas"], "reports", new Grants(), Now);
        Assert.False(carol.HasAccess);
        Assert.Equal("dba", carol.GrantRole);

        var granted = snapshot.ResolveAccess("carol", ["dbas"], "reports", new Grants(("carol", "reports", "dba")), Now);
        Assert.Equal("dba", granted.Policy!.Role);

        var stranger = snapshot.ResolveAccess("carol", [], "reports", new Grants(), Now);
        Assert.Equal((false, (string?)null), (stranger.HasAccess, stranger.GrantRole));
        Assert.Null(snapshot.Resolve("carol", ["dbas"], "reports"));
    }

    [Fact]
    public void An_unrestricted_policy_gives_access_without_grants()
    {
        var resolution = PolicySnapshot.Unrestricted.ResolveAccess("anyone", [], "any", null, Now);
        Assert.True(resolution.Policy!.IsUnrestricted);
    }

    public static TheoryData<string, string, string> Broken => new()
    {
        { "access: grant", "access: granted", "'access' must be standing or grant, not 'granted'" },
        { "access: standing", "access: standing\n    max_duration: 1h", "'max_duration' applies only to a binding with access: grant" },
        { "access: standing", "access: standing\n    auto_approve: { groups: [a] }", "'auto_approve' applies only to a binding with access: grant" },
        { "max_duration: 4h", "max_duration: forever", "'max_duration' must be a positive duration such as 30m, 1h or 8h, not 'forever'" },
        { "max_duration: 4h", "max_duration: 0", "'max_duration' must be a positive duration" },
        { "      max_duration: 1h", "      max_duration: 5h", "auto_approve.max_duration (5h) is longer than the binding's max_duration (4h)" },
        { "      groups: [oncall]", "      groups: [\"*\"]", "'*' is not a group" },
        { "      groups: [oncall]\n", "", "'auto_approve' needs 'groups'" },
        { "      groups: [oncall]", "      groups: []", "'auto_approve.groups' is an empty list" },
        { "      max_duration: 1h", "      max_duration: 1h\n      identities: [x]", "unknown key 'identities' in auto_approve of bindings[0]" },
    };

    [Theory]
    [MemberData(nameof(Broken))]
    public void Broken_grant_bindings_are_errors(string from, string to, string message)
    {
        Assert.Contains(from, Policy, StringComparison.Ordinal);
        var result = PolicyLoader.Load(Policy.Replace(from, to, StringComparison.Ordinal), "policy.yaml", PolicyCompileContext.None);
        Assert.Null(result.Snapshot);
        Assert.Contains(result.Errors, e => e.Message.Contains(message, StringComparison.Ordinal) && e.Line > 0);
    }

    [Theory]
    [InlineData("0", 0)]
    [InlineData("500ms", 500)]
    [InlineData("15s", 15_000)]
    [InlineData("10m", 600_000)]
    [InlineData("1h30m", 5_400_000)]
    [InlineData("1.5h", 5_400_000)]
    [InlineData("2d", 172_800_000)]
    public void Durations_parse(string text, long milliseconds)
    {
        Assert.True(DurationText.TryParse(text, out var value));
        Assert.Equal(milliseconds, (long)value.TotalMilliseconds);
    }

    [Theory]
    [InlineData("")]
    [InlineData("h")]
    [InlineData("10")]
    [InlineData("10x")]
    [InlineData("-1h")]
    [InlineData("1h 30m")]
    [InlineData("99999999d")]
    public void Bad_durations_do_not_parse(string text) => Assert.False(DurationText.TryParse(text, out _));

    [Theory]
    [InlineData(90 * 60_000, "1h30m")]
    [InlineData(3_600_000, "1h")]
    [InlineData(86_400_000 + 1000, "1d1s")]
    [InlineData(250, "250ms")]
    public void Durations_format_exactly(long milliseconds, string text) =>
        Assert.Equal(text, DurationText.Format(TimeSpan.FromMilliseconds(milliseconds)));
}
