using System.Text;
using Gatehouse.Host.Config;
using Gatehouse.Policy.Masking;
using Gatehouse.Policy.Rules;

namespace Gatehouse.Tests.Masking;

public sealed class MaskingPolicyTests
{
    private const string Head = """
        roles:
          reader:
            allow: [read]
          dba:
            allow: all
        bindings:
          - identities: [alice]
            connections: ["*"]
            role: reader
          - identities: [dave]
            connections: ["*"]
            role: dba
        """;

    private static PolicyLoadResult Load(string masking) => PolicyLoader.Load(Head + "\n" + masking, "policy.yaml", PolicyCompileContext.None);

    [Fact]
    public void A_masking_section_compiles_with_its_defaults()
    {
        var result = Load("""
            masking:
              rules:
                - name: pii
                  columns: [public.customers.ssn, customers.card_number]
                  detect: [email, card]
                  roles: [reader]
            """);
        Assert.Empty(result.Errors);
        var rule = Assert.Single(result.Snapshot!.Masking.Rules);
        Assert.Equal("pii", rule.Name);
        Assert.Equal(MaskStyleKind.Redact, rule.Style.Kind);
        Assert.Equal(MaskExpressionMode.Mask, rule.Expressions);
        Assert.Equal(MaskBinaryMode.Null, rule.Binary);
        Assert.Equal(MaskCopyMode.Mask, rule.Copy);
        Assert.False(rule.DenyPredicates);
        Assert.Equal(2, rule.Columns.Count);
        Assert.Equal(2, rule.Detectors.Count);
    }

    [Fact]
    public void Rules_apply_by_role_identity_group_and_connection()
    {
        var result = Load("""
            masking:
              rules:
                - name: readers
                  columns: [public.t.a]
                  roles: [reader]
                - name: alice-on-prod
                  columns: [public.t.b]
                  identities: [alice]
                  connections: [prod]
                - name: contractors
                  columns: [public.t.c]
                  groups: [contractors]
            """);
        Assert.Empty(result.Errors);
        var masking = result.Snapshot!.Masking;
        Assert.Equal(["readers"], masking.For("alice", [], "reader", "dev")!.Rules.Select(r => r.Name));
        Assert.Equal(["readers", "alice-on-prod"], masking.For("alice", [], "reader", "prod")!.Rules.Select(r => r.Name));
        Assert.Null(masking.For("dave", [], "dba", "prod"));
        Assert.Equal(["contractors"], masking.For("dave", ["contractors"], "dba", "prod")!.Rules.Select(r => r.Name));

        // Sessions with the same rules share one compiled set.
        Assert.Same(masking.For("alice", [], "reader", "dev"), masking.For("bob", [], "reader", "dev"));
    }

    [Fact]
    public void Column_patterns_match_stored_names_with_globs_and_quoting()
    {
        var result = Load("""
            masking:
              rules:
                - name: r
                  columns: [public.customers.ssn, "*.cards.pan*", "\"Billing\".\"Accounts\".iban", payroll.salary]
            """);
        Assert.Empty(result.Errors);
        var set = result.Snapshot!.Masking.For("alice", [], "reader", "x")!;
        static byte[] U(string s) => Encoding.UTF8.GetBytes(s);
        Assert.NotNull(set.RuleFor(U("public"), U("customers"), U("ssn")));
        Assert.Null(set.RuleFor(U("other"), U("customers"), U("ssn")));
        Assert.NotNull(set.RuleFor(U("sales"), U("cards"), U("pan_hash")));
        Assert.NotNull(set.RuleFor(U("Billing"), U("Accounts"), U("iban")));
        Assert.Null(set.RuleFor(U("billing"), U("accounts"), U("iban")));
        Assert.NotNull(set.RuleFor(U("any"), U("payroll"), U("salary")));
    }

    [Theory]
    [InlineData("columns: [ssn]", "a column pattern is schema.table.column or table.column")]
    [InlineData("columns: [a.b.c]\n      style: scramble", "'style' of masking rule 'r' must be redact, keep_last, hash or null, not 'scramble'")]
    [InlineData("columns: [a.b.c]\n      style: keep_last\n      keep: 100", "'keep' of masking rule 'r' must be a whole number from 1 to 64")]
    [InlineData("columns: [a.b.c]\n      keep: 2", "'keep' of masking rule 'r' applies only to style keep_last")]
    [InlineData("detect: [creditcard]", "unknown detector 'creditcard' in masking rule 'r'; expected one of: card, ssn")]
    [InlineData("columns: [a.b.c]\n      expressions: hide", "'expressions' of masking rule 'r' must be mask or deny, not 'hide'")]
    [InlineData("columns: [a.b.c]\n      binary: mask", "'binary' of masking rule 'r' must be null or deny, not 'mask'")]
    [InlineData("columns: [a.b.c]\n      predicates: maybe", "'predicates' of masking rule 'r' must be allow or deny, not 'maybe'")]
    [InlineData("columns: [a.b.c]\n      roles: [auditor]", "masking rule 'r' names role 'auditor', which is not defined under 'roles'")]
    [InlineData("style: redact", "masking rule 'r' masks nothing: give it 'columns', 'detect' or 'patterns'")]
    [InlineData("columns: [a.b.c]\n      style: hash", "a masking rule uses style hash, which needs masking.key")]
    [InlineData("columns: []", "'columns' of masking rule 'r' is an empty list")]
    [InlineData("columns: [a.b.c]\n      colour: red", "colour")]
    public void Mistakes_are_reported_with_their_position(string body, string message)
    {
        var result = Load("masking:\n  rules:\n    - name: r\n      " + body + "\n");
        Assert.Null(result.Snapshot);
        var error = Assert.Single(result.Errors, e => e.Message.Contains(message, StringComparison.Ordinal));
        Assert.True(error.Line > 0, error.ToString());
    }

    [Fact]
    public void The_hash_key_is_read_from_the_environment_and_must_be_long_enough()
    {
        string variable = "GATEHOUSE_TEST_MASK_KEY_" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(variable, "short");
        try
        {
            string policy = $"masking:\n  key: {{ env: {variable} }}\n  rules:\n    - name: r\n      columns: [a.b.c]\n      style: hash\n";
            Assert.Contains(Load(policy).Errors, e => e.Message.Contains("masking.key must have at least 16 bytes", StringComparison.Ordinal));
            Environment.SetEnvironmentVariable(variable, "a-long-enough-masking-key");
            Assert.Empty(Load(policy).Errors);
            Environment.SetEnvironmentVariable(variable, null);
            Assert.Contains(Load(policy).Errors, e => e.Message.Contains($"environment variable {variable} is not set", StringComparison.Ordinal));
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }
}
