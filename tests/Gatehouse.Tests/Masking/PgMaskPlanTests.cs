using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Gatehouse.Host.Config;
using Gatehouse.Policy.Masking;
using Gatehouse.Policy.Rules;
using Gatehouse.Protocols.Postgres.Masking;

namespace Gatehouse.Tests.Masking;

/// <summary>
/// Mask plans from RowDescriptions and the names statements are analyzed by, over a small catalog: customers(id, ssn,
/// iban) masked by rule "ids" (expressions masked), accounts(id, iban) masked by rule "strict" (everything denied).
/// </summary>
public sealed class PgMaskPlanTests
{
    private const uint Customers = 16500;
    private const uint Accounts = 16501;

    private static readonly SessionMasking Rules = LoadRules();

    private static readonly PgCatalogSnapshot Catalog = new(1, DateTimeOffset.UnixEpoch,
        [
            new PgRelation(Customers, "public", "customers", 'r', ["id", "ssn", "iban"]),
            new PgRelation(Accounts, "public", "accounts", 'r', ["id", "iban"]),
        ],
        textTypes: [], jsonTypes: []);

    private static SessionMasking LoadRules()
    {
        var result = PolicyLoader.Load("""
            roles:
              reader:
                allow: [read]
            bindings:
              - identities: [alice]
                connections: ["*"]
                role: reader
            masking:
              rules:
                - name: ids
                  columns: [public.customers.ssn, public.customers.iban]
                - name: strict
                  columns: [public.accounts.iban]
                  expressions: deny
                  predicates: deny
            """, "policy.yaml", PolicyCompileContext.None);
        Assert.Empty(result.Errors);
        return result.Snapshot!.Masking.For("alice", [], "reader", "app")!;
    }

    [Fact]
    public void A_column_name_two_rules_mask_is_analyzed_under_the_stricter()
    {
        var index = PgMaskIndex.For(Catalog, Rules);
        Assert.Equal("strict", Rules.RuleOfTag(index.Names.ColumnRule("iban"u8)).Name);
        Assert.Equal("ids", Rules.RuleOfTag(index.Names.ColumnRule("ssn"u8)).Name);
    }

    [Fact]
    public void A_whole_row_value_is_masked_by_its_relations_rule_even_when_the_text_named_nothing()
    {
        var plan = new PgRowPlan();
        plan.Build(RowDescription((Customers, 0, 2249, 0), (Customers, 1, 23, 0), (Accounts, 0, 2249, 0)), Rules,
            PgMaskIndex.For(Catalog, Rules), referencedRule: -1);
        Assert.Equal("ids", plan.Fields[0].Rule?.Name);
        Assert.Null(plan.Fields[1].Rule);
        Assert.Equal("strict", plan.Fields[2].Rule?.Name);
    }

    [Theory]
    [InlineData(18, 0, "Characters")] // "char": one byte in binary, no room for a mask
    [InlineData(18, 1, "Other")]
    [InlineData(19, 1, "Text")]
    [InlineData(1042, 1, "Text")]
    [InlineData(25, 0, "Text")]
    public void Value_types(uint type, short format, string expected) => Assert.Equal(expected, PgRowPlan.TypeOf(type, format, Catalog).ToString());

    /// <summary>A RowDescription body: fields of (table OID, attnum, type OID, format).</summary>
    private static ReadOnlySequence<byte> RowDescription(params (uint Table, short Attnum, uint Type, short Format)[] fields)
    {
        var body = new List<byte>();
        var word = new byte[4];
        body.AddRange([(byte)(fields.Length >> 8), (byte)fields.Length]);
        foreach (var (table, attnum, type, format) in fields)
        {
            body.AddRange(Encoding.ASCII.GetBytes("f\0"));
            BinaryPrimitives.WriteUInt32BigEndian(word, table);
            body.AddRange(word);
            body.AddRange([(byte)(attnum >> 8), (byte)attnum]);
            BinaryPrimitives.WriteUInt32BigEndian(word, type);
            body.AddRange(word);
            body.AddRange([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]); // typlen -1, typmod -1
            body.AddRange([(byte)(format >> 8), (byte)format]);
        }

        return new ReadOnlySequence<byte>(body.ToArray());
    }
}
