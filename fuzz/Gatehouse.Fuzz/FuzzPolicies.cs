using Gatehouse.Policy.Rules;

namespace Gatehouse.Fuzz;

/// <summary>
/// The compiled policies the targets decide with, built through <see cref="PolicyCompiler"/> as the host builds
/// them from a policy file. Compiled on first use, inside a run (Gatehouse.Policy is instrumented under libFuzzer).
/// </summary>
internal static class FuzzPolicies
{
    public const string Identity = "alice";
    public const string Connection = "db";

    /// <summary>Reads only; no rules (every other class, and unknown statements, denied by the role).</summary>
    public static SessionPolicy Reader => Compiled.Reader;

    /// <summary>Reads, writes, COPY, transactions and sessions, with global and role rules on shapes, tables and functions.</summary>
    public static SessionPolicy Writer => Compiled.Writer;

    /// <summary>The gate's first policy: reads, writes (not unbounded), session settings and opaque code (FunctionCall).</summary>
    public static PolicySnapshot GateLenient => Compiled.GateLenient;

    /// <summary>The gate's second policy: reads and session settings only.</summary>
    public static PolicySnapshot GateStrict => Compiled.GateStrict;

    /// <summary>As <see cref="GateLenient"/>, but a write to table <c>t</c> (of the texts: the UPDATE with WHERE) requires approval.</summary>
    public static PolicySnapshot GateApproval => Compiled.GateApproval;

    /// <summary>The rule of <see cref="GateApproval"/> that holds statements for approval.</summary>
    public const string ApprovalRule = "writes-to-t-need-approval";

    private static PolicyValue V(string text) => new(text);

    private static IReadOnlyList<PolicyValue> L(params string[] items) => [.. items.Select(V)];

    private static PolicySnapshot Compile(string source, IReadOnlyList<PolicyRuleModel> global, PolicyRoleModel role)
    {
        var at = new PolicyPosition(source, 0, 0);
        var model = new PolicyModel(source, at)
        {
            Rules = global,
            Roles = [role],
            Bindings = [new PolicyBindingModel(role.Name, at) { Identities = L(Identity), Connections = L(Connection) }],
        };
        return PolicyCompiler.Compile(model);
    }

    private static SessionPolicy Resolve(PolicySnapshot snapshot) =>
        snapshot.Resolve(Identity, [], Connection) ?? throw new InvalidOperationException($"the fuzz policy {snapshot.Source} does not bind {Identity}");

    private static class Compiled
    {
        private static readonly PolicyPosition At = new("fuzz", 0, 0);

        public static readonly SessionPolicy Reader = Resolve(Compile("reader", [], new PolicyRoleModel(V("reader"), L("read"))));

        public static readonly SessionPolicy Writer = Resolve(Compile("writer",
            [
                new PolicyRuleModel(V("no-file-access"), V("deny"), At) { Classes = L("file_access") },
                new PolicyRuleModel(V("no-copy-program"), V("deny"), At) { Copy = L("program", "file") },
            ],
            new PolicyRoleModel(V("writer"), L("read", "write", "copy", "transaction", "session"))
            {
                Rules =
                [
                    new PolicyRuleModel(V("no-unbounded-writes"), V("deny"), At) { Shapes = L("delete_without_where", "update_without_where") },
                    new PolicyRuleModel(V("secrets-need-approval"), V("require_approval"), At) { Classes = L("write"), Tables = L("secret*", "billing.*") },
                    new PolicyRuleModel(V("no-dblink"), V("deny"), At) { Functions = L("dblink*", "pg_catalog.lo_*") },
                ],
            }));

        public static readonly PolicySnapshot GateLenient = Compile("gate-lenient", [],
            new PolicyRoleModel(V("app"), L("read", "write", "session", "opaque_code"))
            {
                Rules = [new PolicyRuleModel(V("no-unbounded-writes"), V("deny"), At) { Shapes = L("delete_without_where", "update_without_where") }],
            });

        public static readonly PolicySnapshot GateApproval = Compile("gate-approval", [],
            new PolicyRoleModel(V("app"), L("read", "write", "session", "opaque_code"))
            {
                Rules =
                [
                    new PolicyRuleModel(V("no-unbounded-writes"), V("deny"), At) { Shapes = L("delete_without_where", "update_without_where") },
                    new PolicyRuleModel(V(ApprovalRule), V("require_approval"), At) { Classes = L("write"), Tables = L("t") },
                ],
            });

        public static readonly PolicySnapshot GateStrict = Compile("gate-strict", [], new PolicyRoleModel(V("app"), L("read", "session")));
    }

    public static SessionPolicy ResolveGate(PolicySnapshot snapshot) => Resolve(snapshot);
}
