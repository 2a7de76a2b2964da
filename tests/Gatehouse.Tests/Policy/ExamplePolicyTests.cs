using System.Text;
using Gatehouse.Host.Config;
using Gatehouse.Policy.Rules;
using Gatehouse.Policy.Sql;

namespace Gatehouse.Tests.Policy;

/// <summary>examples/gatehouse.yaml and examples/policy.yaml, as scripts/demo.sh uses them.</summary>
public sealed class ExamplePolicyTests
{
    private static readonly Lazy<GatehouseConfig> s_config = new(() => ConfigLoader.LoadFile(Path.Combine(Examples(), "gatehouse.yaml")));

    private static SessionPolicy Alice => s_config.Value.Policy.Resolve("alice", [], "demo")
                                          ?? throw new InvalidOperationException("no binding for alice on demo");

    [Fact]
    public void The_example_config_loads_its_policy_file_without_warnings()
    {
        GatehouseConfig config = s_config.Value;
        Assert.Equal(Path.Combine(Examples(), "policy.yaml"), config.PolicyFile);
        Assert.Empty(config.Warnings);
        Assert.Equal("developer", Alice.Role);
    }

    /// <summary>Everything the demo runs through the gateway, and the tables of scripts/lib/sample-data.sql.</summary>
    [Theory]
    [InlineData("SELECT current_user AS upstream_role, current_database() AS upstream_database")]
    [InlineData("SELECT id, name, email FROM customers ORDER BY id LIMIT 5")]
    [InlineData("SELECT status, count(*) AS orders, round(sum(amount), 2) AS total FROM orders GROUP BY status ORDER BY status")]
    [InlineData("BEGIN")]
    [InlineData("CREATE TEMP TABLE notes(id int, body text)")]
    [InlineData("COPY notes FROM STDIN")]
    [InlineData("SELECT * FROM notes ORDER BY id")]
    [InlineData("ROLLBACK")]
    [InlineData("INSERT INTO orders (customer_id, amount, status) VALUES (1, 9.5, 'new')")]
    [InlineData("UPDATE orders SET status = 'shipped' WHERE id = 7")]
    [InlineData("DELETE FROM big_rows WHERE id < 10")]
    [InlineData("COPY big_rows TO STDOUT")]
    [InlineData("SET statement_timeout = '5s'")]
    public void Alice_may_read_and_write_the_demo_tables(string sql)
    {
        PolicyDecision decision = Alice.Decide(Encoding.UTF8.GetBytes(sql), SqlLexSettings.Default);
        Assert.True(decision.IsAllowed, Alice.Rule(decision.Rule).Description);
    }

    [Theory]
    [InlineData("DROP TABLE customers", "no-drop")]
    [InlineData("TRUNCATE orders", "no-drop")]
    [InlineData("DELETE FROM orders", "no-unbounded-writes")]
    [InlineData("UPDATE customers SET email = 'x'", "no-unbounded-writes")]
    [InlineData("GRANT ALL ON customers TO PUBLIC", "role:developer")]
    [InlineData("SET ROLE postgres", "role:developer")]
    [InlineData("SELECT set_config('role', 'postgres', false)", "role:developer")]
    [InlineData("SELECT pg_read_file('/etc/passwd')", "role:developer")]
    [InlineData("SELECT lo_import('/etc/passwd')", "role:developer")]
    [InlineData("COPY customers TO PROGRAM 'cat > /tmp/x'", "role:developer")]
    [InlineData("COPY customers FROM '/etc/passwd'", "role:developer")]
    [InlineData("DO $$ BEGIN DELETE FROM orders; END $$", "role:developer")]
    [InlineData("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$", "role:developer")]
    [InlineData("PREPARE p AS DELETE FROM orders", "role:developer")]
    [InlineData("VACUUM FULL orders", "role:developer")]
    [InlineData("SELECT * FROM dblink('host=x', 'SELECT 1') AS t(a int)", "role:developer")]
    [InlineData("DE/**/LETE FROM orders", "unknown_statements")]
    public void Alice_may_not_drop_empty_tables_change_privileges_reach_files_or_run_opaque_code(string sql, string rule)
    {
        PolicyDecision decision = Alice.Decide(Encoding.UTF8.GetBytes(sql), SqlLexSettings.Default);
        Assert.Equal((PolicyAction.Deny, rule), (decision.Action, Alice.Rule(decision.Rule).Name));
    }

    [Theory]
    [InlineData("UPDATE customers SET email = 'x' WHERE id = 1")]
    [InlineData("DELETE FROM public.customers WHERE id = 2")]
    [InlineData("INSERT INTO customers (name, email) VALUES ('n', 'e')")]
    public void Alice_changes_to_customers_wait_for_approval(string sql)
    {
        PolicyDecision decision = Alice.Decide(Encoding.UTF8.GetBytes(sql), SqlLexSettings.Default);
        Assert.Equal((PolicyAction.RequireApproval, "customer-changes-need-approval"), (decision.Action, Alice.Rule(decision.Rule).Name));
    }

    [Fact]
    public void Other_identities_only_read_the_demo_connection_and_dbas_keep_the_global_rules()
    {
        PolicySnapshot policy = s_config.Value.Policy;
        Assert.Equal("reader", policy.Resolve("bob", [], "demo")?.Role);
        Assert.Null(policy.Resolve("bob", [], "payroll"));
        SessionPolicy dba = policy.Resolve("carol", ["dbas"], "payroll")!;
        Assert.Equal("dba", dba.Role);
        Assert.True(dba.Decide("DROP TABLE big_rows"u8, SqlLexSettings.Default).IsAllowed);
        Assert.Equal(PolicyAction.RequireApproval, dba.Decide("DROP TABLE customers"u8, SqlLexSettings.Default).Action);
        Assert.Equal("no-file-access", dba.Rule(dba.Decide("SELECT pg_read_file('x')"u8, SqlLexSettings.Default).Rule).Name);
    }

    private static string Examples()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            string candidate = Path.Combine(directory.FullName, "examples");
            if (File.Exists(Path.Combine(candidate, "policy.yaml")) && File.Exists(Path.Combine(candidate, "gatehouse.yaml")))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException("examples/ not found above " + AppContext.BaseDirectory);
    }
}
