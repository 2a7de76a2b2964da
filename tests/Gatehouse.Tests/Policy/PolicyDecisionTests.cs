using System.Text;
using Gatehouse.Policy.Rules;
using Gatehouse.Policy.Sql;
using A = Gatehouse.Policy.Rules.PolicyAction;
using C = Gatehouse.Policy.Sql.StatementClass;

namespace Gatehouse.Tests.Policy;

public sealed class PolicyDecisionTests
{
    public static TheoryData<string, string, bool, C, A, string> Cases() => PolicyDecisionCases.All();

    [Theory]
    [MemberData(nameof(Cases))]
    public void Decides_statements_as_the_sample_policy_says(string role, string sql, bool standardConformingStrings, C expectedClass,
        A expectedAction, string expectedRule)
    {
        byte[] text = Encoding.UTF8.GetBytes(sql);
        var settings = new SqlLexSettings(standardConformingStrings);
        Assert.Equal(expectedClass, SqlClassifier.ClassifyScript(text, settings).Class);

        SessionPolicy policy = SamplePolicy.Role(role);
        PolicyDecision decision = policy.Decide(text, settings);
        Assert.Equal((expectedAction, expectedRule), (decision.Action, policy.Rule(decision.Rule).Name));
    }

    [Fact]
    public void The_table_has_at_least_150_cases_and_covers_every_action_and_role()
    {
        var cases = PolicyDecisionCases.All();
        Assert.True(cases.Count >= 150, $"{cases.Count} cases");
        var rows = cases.Select(row => ((string)row[0], (A)row[4])).ToList();
        Assert.All(SamplePolicy.Snapshot.Roles.Keys, role => Assert.Contains(rows, r => r.Item1 == role));
        Assert.All(Enum.GetValues<A>(), action => Assert.Contains(rows, r => r.Item2 == action));
    }

    [Theory]
    [InlineData("reader", "DROP TABLE t", "statement denied by policy rule \"role:reader\": role \"reader\" does not allow DDL statements (class ddl)")]
    [InlineData("reader", "SELECT pg_read_file('x')", "statement denied by policy rule \"role:reader\": role \"reader\" does not allow file access statements (class file_access)")]
    [InlineData("writer", "DELETE FROM orders", "statement denied by policy rule \"no-unbounded-writes\": DELETE without WHERE or UPDATE without WHERE are not allowed")]
    [InlineData("writer", "DELETE FROM payments WHERE id = 1", "statement requires approval (policy rule \"payments-need-approval\"); approvals are not enabled on this gateway")]
    [InlineData("dba", "SELECT dblink('a', 'b')", "statement denied by policy rule \"no-remote-sql\": SQL run on other servers (dblink, query_to_xml) is not allowed")]
    [InlineData("reader", "DE/**/LETE FROM t", "statement denied by policy rule \"unknown_statements\": the gateway could not classify the statement (class unknown; allowed only by roles that allow class unknown)")]
    public void Refusals_carry_a_precompiled_message_naming_the_rule(string role, string sql, string message)
    {
        SessionPolicy policy = SamplePolicy.Role(role);
        PolicyDecision decision = policy.Decide(Encoding.UTF8.GetBytes(sql), SqlLexSettings.Default);
        Assert.False(decision.IsAllowed);
        Assert.Equal(message, Encoding.UTF8.GetString(policy.Rule(decision.Rule).Message));
    }

    [Fact]
    public void The_most_dangerous_class_outside_the_role_is_the_one_reported()
    {
        SessionPolicy reader = SamplePolicy.Role("reader");
        PolicyDecision decision = reader.Decide("COPY t FROM PROGRAM 'id'"u8, SqlLexSettings.Default);
        Assert.Contains("(class file_access)", reader.Rule(decision.Rule).Description);
        decision = reader.Decide("EXPLAIN ANALYZE DELETE FROM t"u8, SqlLexSettings.Default);
        Assert.Contains("(class opaque_code)", reader.Rule(decision.Rule).Description);
    }

    [Theory]
    [InlineData("reader", A.Deny, "function-call")]
    [InlineData("writer", A.Deny, "function-call")]
    [InlineData("auditor", A.Deny, "function-call")]
    [InlineData("dba", A.Allow, "allowed")]
    public void A_function_call_message_needs_opaque_code(string role, A action, string rule)
    {
        SessionPolicy policy = SamplePolicy.Role(role);
        PolicyDecision decision = policy.DecideFunctionCall();
        Assert.Equal((action, rule), (decision.Action, policy.Rule(decision.Rule).Name));
    }

    [Fact]
    public void A_function_call_matches_every_function_rule_of_a_role_that_allows_opaque_code()
    {
        var snapshot = SamplePolicy.Compile("""
            roles:
              ops:
                allow: [read, opaque_code]
                rules:
                  - name: no-dblink
                    functions: ["dblink*"]
                    action: deny
            bindings:
              - identities: [o]
                connections: ["*"]
                role: ops
            """);
        SessionPolicy ops = snapshot.Roles["ops"];
        Assert.Equal("no-dblink", ops.Rule(ops.DecideFunctionCall().Rule).Name);
        Assert.True(ops.Decide("SELECT lower('x')"u8, SqlLexSettings.Default).IsAllowed);
        Assert.Equal("no-dblink", ops.Rule(ops.Decide("DO $$ BEGIN END $$"u8, SqlLexSettings.Default).Rule).Name);
    }

    [Fact]
    public void A_statement_naming_more_objects_than_the_span_holds_matches_every_object_rule()
    {
        SessionPolicy writer = SamplePolicy.Role("writer");
        string few = "SELECT * FROM " + string.Join(", ", Enumerable.Range(0, SessionPolicy.MaxObjects - 1).Select(i => $"public.t{i}"));
        string many = "SELECT * FROM " + string.Join(", ", Enumerable.Range(0, SessionPolicy.MaxObjects + 1).Select(i => $"public.t{i}"));
        Assert.True(writer.Decide(Encoding.UTF8.GetBytes(few), SqlLexSettings.Default).IsAllowed);
        PolicyDecision decision = writer.Decide(Encoding.UTF8.GetBytes(many), SqlLexSettings.Default);

        // The first object rule in order: the global no-remote-sql (its class, read, matches; its functions are unknown).
        Assert.Equal("no-remote-sql", writer.Rule(decision.Rule).Name);
    }

    [Theory]
    [InlineData("SELECT 1", true)]
    [InlineData("DELETE FROM orders WHERE id = 1", true)]
    [InlineData("DELETE FROM orders", false)]
    [InlineData("SELECT 1; DROP TABLE t", false)]
    [InlineData("SELECT 1;", true)]
    public void DecideStatement_decides_a_single_statement_and_refuses_a_second_one_glued_on(string sql, bool allowed)
    {
        SessionPolicy writer = SamplePolicy.Role("writer");
        Assert.Equal(allowed, writer.DecideStatement(Encoding.UTF8.GetBytes(sql), SqlLexSettings.Default).IsAllowed);
    }

    [Theory]
    [InlineData("rita", new string[0], "app", "reader")]
    [InlineData("rita", new string[0], "other", null)]
    [InlineData("walt", new string[0], "app", "writer")]
    [InlineData("dora", new string[0], "anything", "dba")]
    [InlineData("nobody", new string[0], "app", null)]
    [InlineData("nobody", new[] { "analysts" }, "app", "reader")]
    [InlineData("nobody", new[] { "analysts" }, "other", null)]
    [InlineData("walt", new[] { "analysts" }, "app", "writer")]
    [InlineData("Rita", new string[0], "app", null)]
    public void Resolve_takes_the_first_binding_that_matches(string identity, string[] groups, string connection, string? role)
    {
        Assert.Equal(role, SamplePolicy.Snapshot.Resolve(identity, groups, connection)?.Role);
    }

    [Fact]
    public void Bindings_are_tried_in_order_and_wildcards_match_anyone()
    {
        var snapshot = SamplePolicy.Compile("""
            roles:
              a: { allow: [read] }
              b: { allow: [read, write] }
            bindings:
              - identities: [alice]
                connections: [x]
                role: b
              - identities: ["*"]
                connections: ["*"]
                role: a
              - identities: [alice]
                connections: ["*"]
                role: b
            """);
        Assert.Equal("b", snapshot.Resolve("alice", [], "x")?.Role);
        Assert.Equal("a", snapshot.Resolve("alice", [], "y")?.Role);
        Assert.Equal("a", snapshot.Resolve("zed", [], "y")?.Role);
        Assert.Equal("a", snapshot.Resolve("zed", ["g"], "y")?.Role);
        Assert.Same(snapshot.Resolve("alice", [], "x"), snapshot.Resolve("alice", [], "x"));
        Assert.Same(snapshot, snapshot.Resolve("zed", [], "y")!.Snapshot);
    }

    [Fact]
    public void The_unrestricted_policy_allows_everything_for_everyone()
    {
        SessionPolicy? policy = PolicySnapshot.Unrestricted.Resolve("anyone", [], "anything");
        Assert.NotNull(policy);
        Assert.True(policy.IsUnrestricted);
        Assert.True(PolicySnapshot.Unrestricted.IsUnrestricted);
        Assert.True(policy.Decide("DROP TABLE t; COPY t FROM PROGRAM 'id'; DE/**/LETE"u8, SqlLexSettings.Default).IsAllowed);
        Assert.True(policy.DecideFunctionCall().IsAllowed);
        Assert.False(SamplePolicy.Role("dba").IsUnrestricted);
    }

    [Theory]
    [InlineData("deny", A.Deny)]
    [InlineData("require_approval", A.RequireApproval)]
    [InlineData("allow", A.Allow)]
    public void Unknown_statements_take_the_configured_action_unless_the_role_allows_unknown(string setting, A action)
    {
        var snapshot = SamplePolicy.Compile($$"""
            unknown_statements: {{setting}}
            roles:
              r: { allow: [read] }
              u: { allow: [read, unknown] }
            bindings:
              - identities: [x]
                connections: ["*"]
                role: r
            """);
        PolicyDecision decision = snapshot.Roles["r"].Decide("DE/**/LETE FROM t"u8, SqlLexSettings.Default);
        Assert.Equal(action, decision.Action);
        Assert.True(snapshot.Roles["u"].Decide("DE/**/LETE FROM t"u8, SqlLexSettings.Default).IsAllowed);

        // A known class outside the role is denied by the role whatever unknown_statements says.
        Assert.Equal(A.Deny, snapshot.Roles["r"].Decide("SELECT 1; DE/**/LETE; DROP TABLE t"u8, SqlLexSettings.Default).Action);
    }

    [Fact]
    public void A_rule_matches_only_when_every_stated_criterion_matches()
    {
        var snapshot = SamplePolicy.Compile("""
            roles:
              r:
                allow: [read, write, copy]
                rules:
                  - name: both
                    classes: [write]
                    tables: [audit]
                    functions: [now]
                    action: deny
                  - name: export
                    copy: [to]
                    action: require_approval
            bindings:
              - identities: [x]
                connections: ["*"]
                role: r
            """);
        SessionPolicy r = snapshot.Roles["r"];
        Assert.True(r.Decide("INSERT INTO audit VALUES (1)"u8, SqlLexSettings.Default).IsAllowed);
        Assert.True(r.Decide("INSERT INTO other VALUES (now())"u8, SqlLexSettings.Default).IsAllowed);
        Assert.True(r.Decide("SELECT now() FROM audit"u8, SqlLexSettings.Default).IsAllowed);
        Assert.Equal(A.Deny, r.Decide("INSERT INTO audit VALUES (now())"u8, SqlLexSettings.Default).Action);
        Assert.Equal(A.RequireApproval, r.Decide("COPY t TO STDOUT"u8, SqlLexSettings.Default).Action);
        Assert.True(r.Decide("COPY t FROM STDIN"u8, SqlLexSettings.Default).IsAllowed);
    }

    [Fact]
    public void Objects_are_extracted_only_for_roles_with_object_rules_global_ones_included()
    {
        var snapshot = SamplePolicy.Compile("""
            rules:
              - { name: no-drop, shapes: [drop], action: deny }
            roles:
              plain: { allow: [read] }
              named:
                allow: [read]
                rules:
                  - { name: no-keys, tables: [vault.keys], action: deny }
            bindings:
              - { identities: ["*"], connections: ["*"], role: plain }
              - { identities: ["*"], connections: ["*"], role: named }
            """);
        Assert.False(snapshot.Roles["plain"].UsesObjects);
        Assert.True(snapshot.Roles["named"].UsesObjects);

        // The sample's global no-remote-sql names functions, so every role of it extracts them.
        Assert.True(SamplePolicy.Role("reader").UsesObjects);
    }

    [Fact]
    public void Deciding_a_point_select_allocates_nothing()
    {
        byte[] pointSelect = "SELECT id, name, email FROM public.users WHERE id = $1 /* */"u8.ToArray();
        byte[] join = "SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = $1 AND pg_sleep(0) IS NOT NULL"u8.ToArray();
        foreach (string role in new[] { "reader", "writer", "dba" })
        {
            SessionPolicy policy = SamplePolicy.Role(role);
            for (int i = 0; i < 2_000; i++)
            {
                policy.Decide(pointSelect, SqlLexSettings.Default);
                policy.Decide(join, SqlLexSettings.Default);
            }

            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 10_000; i++)
            {
                policy.Decide(pointSelect, SqlLexSettings.Default);
                policy.Decide(join, SqlLexSettings.Default);
                policy.DecideFunctionCall();
            }

            Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        }
    }

    [Fact]
    public void Resolving_without_groups_allocates_nothing()
    {
        PolicySnapshot snapshot = SamplePolicy.Snapshot;
        string[] none = [];
        snapshot.Resolve("walt", none, "app");
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1_000; i++)
        {
            snapshot.Resolve("walt", none, "app");
            snapshot.Resolve("stranger", none, "app");
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
