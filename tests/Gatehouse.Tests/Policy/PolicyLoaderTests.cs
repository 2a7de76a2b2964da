using Gatehouse.Host.Config;
using Gatehouse.Policy.Identity;
using Gatehouse.Policy.Rules;

namespace Gatehouse.Tests.Policy;

public sealed class PolicyLoaderTests
{
    private const string Valid = """
        rules:
          - name: no-drop
            shapes: [drop]
            action: deny
        roles:
          reader:
            allow: [read]
          writer:
            allow: [read, write]
            rules:
              - name: approve-payments
                classes: [write]
                tables: [public.payments]
                action: require_approval
        bindings:
          - identities: [alice]
            connections: [demo]
            role: writer
        """;

    private static PolicyLoadResult Load(string yaml, PolicyCompileContext? context = null) =>
        PolicyLoader.Load(yaml, "policy.yaml", context ?? PolicyCompileContext.None);

    [Fact]
    public void The_valid_policy_compiles()
    {
        var result = Load(Valid);
        Assert.Empty(result.Errors);
        Assert.NotNull(result.Snapshot);
        Assert.Equal("policy.yaml", result.Snapshot.Source);
        Assert.Equal(["reader", "writer"], result.Snapshot.Roles.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(1, result.Snapshot.BindingCount);

        // reader is bound by no binding: a warning, not an error.
        var warning = Assert.Single(result.Warnings);
        Assert.Equal((6, 3), (warning.Line, warning.Column));
        Assert.Contains("role 'reader' is not used", warning.Message);
    }

    /// <summary>Each broken policy names the problem at the line and column of the offending value.</summary>
    public static TheoryData<string, string, string, int, int, string> Broken => new()
    {
        { "an unknown class", "allow: [read]", "allow: [read, wrte]", 7, 19, "unknown class 'wrte'" },
        { "an unknown key in a rule", "    shapes: [drop]", "    shapez: [drop]", 3, 5, "unknown key 'shapez'" },
        { "an unknown top-level key", "rules:\n", "rulez:\n", 1, 1, "unknown key 'rulez'" },
        { "an unknown shape", "shapes: [drop]", "shapes: [dropp]", 3, 14, "unknown shape 'dropp'" },
        { "an unknown action", "    action: deny", "    action: block", 4, 13, "must be deny or require_approval" },
        { "a binding naming an undefined role", "    role: writer", "    role: wrtier", 18, 11, "role 'wrtier', which is not defined" },
        { "a duplicate role", "  writer:\n    allow: [read, write]", "  reader:\n    allow: [read, write]", 8, 3, "duplicate key" },
        { "a duplicate rule name in a role", "name: approve-payments", "name: no-drop", 11, 15, "has the name of a global rule" },
        { "a rule without criteria", "    shapes: [drop]\n", "", 2, 5, "has no criteria" },
        { "an empty list", "connections: [demo]", "connections: []", 17, 18, "'connections' is an empty list" },
        { "an empty class list", "allow: [read]", "allow: []", 7, 12, "is an empty list" },
        { "a table pattern that is not a name", "tables: [public.payments]", "tables: [public.pay ments]", 13, 18, "not allowed in an unquoted name" },
        { "a three-part pattern", "tables: [public.payments]", "tables: [db.public.payments]", 13, 18, "schema.name" },
        { "a binding without identities or groups", "  - identities: [alice]\n    connections", "  - connections", 16, 5, "needs 'identities' or 'groups'" },
        { "a binding without connections", "    connections: [demo]\n", "", 16, 5, "needs 'connections'" },
        { "a list given as text", "allow: [read]", "allow: read", 7, 12, "must be a list" },
        { "a reserved rule name", "name: no-drop", "name: function-call", 2, 11, "reserved for a built-in rule" },
        { "a bad unknown_statements", "rules:\n  - name: no-drop", "unknown_statements: maybe\nrules:\n  - name: no-drop", 1, 21, "unknown_statements must be" },
        { "a rule without action", "    action: deny\n", "", 2, 5, "needs 'action'" },
        { "a '*' group", "  - identities: [alice]", "  - groups: [\"*\"]", 16, 14, "'*' is not a group" },
    };

    [Theory]
    [MemberData(nameof(Broken))]
    public void A_broken_policy_is_refused_with_the_position_of_the_problem(string name, string find, string replace, int line, int column, string message)
    {
        string text = Valid.Replace(find, replace);
        Assert.NotEqual(Valid, text);
        var result = Load(text);
        Assert.Null(result.Snapshot);
        Assert.True(result.Errors.Any(e => e.Line == line && e.Column == column && e.Message.Contains(message, StringComparison.Ordinal)),
            $"{name}: expected '{message}' at {line}:{column}, got:{Environment.NewLine}{string.Join(Environment.NewLine, result.Errors)}");
        Assert.All(result.Errors, e => Assert.Equal("policy.yaml", e.File));
    }

    [Fact]
    public void Every_error_is_reported_not_just_the_first()
    {
        string text = Valid.Replace("allow: [read]", "allow: [reed]").Replace("shapes: [drop]", "shapes: [dorp]").Replace("role: writer", "role: nobody");
        var result = Load(text);
        Assert.Equal(3, result.Errors.Count);
    }

    [Fact]
    public void Identities_and_connections_unknown_to_the_config_are_warnings_only()
    {
        var result = Load(Valid, new PolicyCompileContext(_ => false, _ => false));
        Assert.NotNull(result.Snapshot);
        Assert.Contains(result.Warnings, w => w.Line == 16 && w.Message.Contains("identity 'alice' is not configured", StringComparison.Ordinal));
        Assert.Contains(result.Warnings, w => w.Line == 17 && w.Message.Contains("connection 'demo' is not defined", StringComparison.Ordinal));
    }

    [Fact]
    public void A_policy_that_is_not_a_mapping_is_refused()
    {
        var result = Load("- just\n- a list\n");
        Assert.Contains("the policy must be a YAML mapping", Assert.Single(result.Errors).Message);
        Assert.Contains("needs at least one role", Assert.Single(Load("roles: {}\nbindings: []\n").Errors, e => e.Message.Contains("at least one role", StringComparison.Ordinal)).Message);
    }

    [Fact]
    public void A_rule_name_may_repeat_across_roles_but_not_within_one()
    {
        const string twice = """
            roles:
              a:
                allow: [read]
                rules:
                  - { name: same, shapes: [drop], action: deny }
              b:
                allow: [read]
                rules:
                  - { name: same, shapes: [drop], action: deny }
                  - { name: same, shapes: [truncate], action: deny }
            bindings:
              - { identities: ["*"], connections: ["*"], role: a }
              - { identities: ["*"], connections: ["*"], role: b }
            """;
        var error = Assert.Single(Load(twice).Errors);
        Assert.Equal(10, error.Line);
        Assert.Contains("rule 'same' is defined twice in role 'b' (first at line 9)", error.Message);
    }

    // ---- The config's `policy` key -------------------------------------------------------------------------------

    private static readonly string Verifier = ScramVerifier.Create("s3cret").ToString();

    private static string Config(string policyLine) => $$"""
        listeners:
          - address: 127.0.0.1:0
        connections:
          - { name: demo, host: db, database: app, user: gw }
        identities:
          - name: alice
            secret: "{{Verifier}}"
            connections: [demo]
        {{policyLine}}
        """;

    [Fact]
    public void A_config_without_a_policy_is_refused()
    {
        var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Load(Config(""), "gatehouse.yaml", "."));
        var error = Assert.Single(ex.Errors);
        Assert.Equal("a policy is required: `policy: FILE`, or `policy: unrestricted` to relay every statement unchecked", error.Message);
        Assert.Equal(("gatehouse.yaml", 1L), (error.File, error.Line));
    }

    [Fact]
    public void Policy_unrestricted_is_an_explicit_opt_out()
    {
        var config = ConfigLoader.Load(Config("policy: unrestricted"), "gatehouse.yaml", ".");
        Assert.Same(PolicySnapshot.Unrestricted, config.Policy);
        Assert.Null(config.PolicyFile);
    }

    [Fact]
    public void A_policy_file_is_read_relative_to_the_config_and_its_errors_name_it()
    {
        var directory = Directory.CreateTempSubdirectory("gatehouse-policy-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(directory, "policies"));
            string path = Path.Combine(directory, "policies", "main.yaml");
            File.WriteAllText(path, Valid.Replace("identities: [alice]", "identities: [alice, bob]"));
            var config = ConfigLoader.Load(Config("policy: policies/main.yaml"), Path.Combine(directory, "gatehouse.yaml"), directory);
            Assert.Equal(path, config.PolicyFile);
            Assert.Equal(path, config.Policy.Source);
            Assert.NotNull(config.PolicyStamp);
            Assert.Equal("writer", config.Policy.Resolve("alice", [], "demo")?.Role);

            // bob is not configured (yet): a warning that names the policy file.
            Assert.Contains(config.Warnings, w => w.File == path && w.Message.Contains("identity 'bob'", StringComparison.Ordinal));

            File.WriteAllText(path, Valid.Replace("allow: [read]", "allow: [reed]"));
            var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Load(Config("policy: policies/main.yaml"), "gatehouse.yaml", directory));
            var error = Assert.Single(ex.Errors);
            Assert.Equal((path, 7L, 13L), (error.File, error.Line, error.Column));

            ex = Assert.Throws<ConfigException>(() => ConfigLoader.Load(Config("policy: missing.yaml"), "gatehouse.yaml", directory));
            error = Assert.Single(ex.Errors);
            Assert.Equal(("gatehouse.yaml", 9L, 9L), (error.File, error.Line, error.Column));
            Assert.Contains("cannot read the policy file", error.Message);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
