using BenchmarkDotNet.Attributes;
using Gatehouse.Policy.Rules;
using Gatehouse.Policy.Sql;

namespace Gatehouse.Benchmarks;

/// <summary>
/// Statement policy decisions (<see cref="SessionPolicy.Decide"/>): split, classify, role mask, rules. The texts
/// are those of <see cref="SqlBenchmarks"/>, so the policy's own cost is the difference to LexSplitClassify.
/// <c>reader</c> has class rules only (objects are not extracted); <c>writer</c> has table and function rules, so
/// every referenced name is extracted, normalized and matched. Target: 0 B, and well under 1 µs for the point select.
/// </summary>
[MemoryDiagnoser]
public class PolicyBenchmarks
{
    private SessionPolicy? _policy;
    private byte[] _text = [];

    public static IEnumerable<string> Statements() => BenchStatements.Names();

    public static IEnumerable<string> Roles() => ["reader", "writer"];

    [ParamsSource(nameof(Statements))]
    public string Statement { get; set; } = "PointSelect";

    [ParamsSource(nameof(Roles))]
    public string Role { get; set; } = "writer";

    [GlobalSetup]
    public void Setup()
    {
        _policy = PolicyCompiler.Compile(Model()).Roles[Role];
        _text = BenchStatements.Get(Statement);
        if (!_policy.Decide(_text, SqlLexSettings.Default).IsAllowed)
        {
            throw new InvalidOperationException($"{Statement} must be allowed for {Role}: an allowed statement is evaluated against every rule");
        }
    }

    public int Length => _text.Length;

    [Benchmark]
    public PolicyDecision Decide() => _policy!.Decide(_text, SqlLexSettings.Default);

    /// <summary>
    /// The policy, as a policy file would write it (docs/policy.md):
    /// <code>
    /// rules:
    ///   - { name: no-file-access, classes: [file_access], action: deny }
    ///   - { name: no-copy-program, copy: [program, file], action: deny }
    /// roles:
    ///   reader: { allow: [read, transaction, session] }
    ///   writer:
    ///     allow: [read, write, copy, transaction, session]
    ///     rules:
    ///       - { name: no-unbounded-writes, shapes: [delete_without_where, update_without_where], action: deny }
    ///       - { name: payments-need-approval, classes: [write], tables: [billing.*, public.payments], action: require_approval }
    ///       - { name: no-secrets, tables: [vault.keys, hr.salaries], action: deny }
    ///       - { name: no-dblink, functions: ["dblink*", pg_sleep], action: deny }
    /// bindings:
    ///   - { identities: [rita], connections: ["*"], role: reader }
    ///   - { identities: [walt], connections: ["*"], role: writer }
    /// </code>
    /// </summary>
    private static PolicyModel Model()
    {
        var at = new PolicyPosition("bench", 0, 0);
        return new PolicyModel("bench", at)
        {
            Rules =
            [
                new PolicyRuleModel(V("no-file-access"), V("deny"), at) { Classes = ["file_access"] },
                new PolicyRuleModel(V("no-copy-program"), V("deny"), at) { Copy = ["program", "file"] },
            ],
            Roles =
            [
                new PolicyRoleModel(V("reader"), ["read", "transaction", "session"]),
                new PolicyRoleModel(V("writer"), ["read", "write", "copy", "transaction", "session"])
                {
                    Rules =
                    [
                        new PolicyRuleModel(V("no-unbounded-writes"), V("deny"), at) { Shapes = ["delete_without_where", "update_without_where"] },
                        new PolicyRuleModel(V("payments-need-approval"), V("require_approval"), at) { Classes = ["write"], Tables = ["billing.*", "public.payments"] },
                        new PolicyRuleModel(V("no-secrets"), V("deny"), at) { Tables = ["vault.keys", "hr.salaries"] },
                        new PolicyRuleModel(V("no-dblink"), V("deny"), at) { Functions = ["dblink*", "pg_sleep"] },
                    ],
                },
            ],
            Bindings =
            [
                new PolicyBindingModel(V("reader"), at) { Identities = ["rita"], Connections = ["*"] },
                new PolicyBindingModel(V("writer"), at) { Identities = ["walt"], Connections = ["*"] },
            ],
        };

        static PolicyValue V(string text) => new(text);
    }
}
