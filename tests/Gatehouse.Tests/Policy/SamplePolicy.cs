using Gatehouse.Host.Config;
using Gatehouse.Policy.Rules;

namespace Gatehouse.Tests.Policy;

/// <summary>A realistic policy for the decision tables: readers, writers with object rules, a billing clerk, a DBA, an auditor.</summary>
internal static class SamplePolicy
{
    public const string Yaml = """
        unknown_statements: deny
        rules:
          - name: no-file-access
            classes: [file_access]
            action: deny
          - name: no-remote-sql
            description: SQL run on other servers (dblink, query_to_xml) is not allowed
            classes: [read, write]
            functions: ["dblink*", "query_to_xml*"]
            action: deny
        roles:
          reader:
            allow: [read, transaction, session]
          writer:
            allow: [read, write, copy, transaction, session]
            rules:
              - name: no-unbounded-writes
                shapes: [delete_without_where, update_without_where]
                action: deny
              - name: payments-need-approval
                classes: [write]
                tables: [public.payments, billing.invoices]
                action: require_approval
              - name: no-payment-export
                copy: [to]
                tables: [public.payments]
                action: deny
              - name: no-secrets
                tables: [vault.keys, '"Secrets"']
                action: deny
              - name: no-sleep
                functions: [pg_sleep]
                action: deny
          clerk:
            allow: [read, write, transaction, session]
            rules:
              - name: billing-approval
                classes: [write]
                tables: [billing.*]
                action: require_approval
          dba:
            allow: all
            rules:
              - name: protect-payments
                shapes: [drop, truncate]
                tables: [public.payments]
                action: require_approval
          auditor:
            allow: [read, unknown]
        bindings:
          - identities: [rita]
            connections: [app]
            role: reader
          - identities: [walt]
            connections: [app]
            role: writer
          - identities: [carl]
            connections: [app]
            role: clerk
          - identities: [dora]
            connections: ["*"]
            role: dba
          - identities: [audrey]
            connections: [app]
            role: auditor
          - groups: [analysts]
            connections: [app]
            role: reader
        """;

    private static readonly Lazy<PolicySnapshot> s_snapshot = new(() => Compile(Yaml));

    public static PolicySnapshot Snapshot => s_snapshot.Value;

    public static SessionPolicy Role(string role) => Snapshot.Roles[role];

    public static PolicySnapshot Compile(string yaml, string file = "policy.yaml")
    {
        var result = PolicyLoader.Load(yaml, file, PolicyCompileContext.None);
        Assert.True(result.Snapshot is not null, string.Join(Environment.NewLine, result.Errors));
        return result.Snapshot!;
    }
}
