using System.Text;
using Gatehouse.Policy.Masking;
using Gatehouse.Policy.Sql;

namespace Gatehouse.Tests.Masking;

/// <summary>
/// How statements use masked names. Masked here: customers.ssn and customers.card_number (rule 0), and
/// contacts.email (rule 1). Expected values: the rule index, or -1.
/// </summary>
public sealed class StatementMaskAnalyzerTests
{
    private static readonly MaskedNames Names = new(
        [(U("ssn"), 0), (U("card_number"), 0), (U("email"), 1)],
        [(U("customers"), 0), (U("contacts"), 1)]);

    private static byte[] U(string s) => Encoding.UTF8.GetBytes(s);

    private static MaskAnalysis Analyze(string sql) => StatementMaskAnalyzer.Analyze(U(sql), SqlLexSettings.Default, Names);

    [Theory]
    // Bare columns at the outermost level: masked by origin; nothing else to do (GROUP BY, count(*) stay useful).
    [InlineData("SELECT email, count(*) FROM contacts GROUP BY email", -1, -1, 1, -1)]
    [InlineData("SELECT ssn FROM customers", -1, -1, -1, -1)]
    [InlineData("SELECT id, ssn AS x, name FROM customers", -1, -1, -1, -1)]
    [InlineData("SELECT c.ssn x FROM customers c", -1, -1, -1, -1)]
    [InlineData("SELECT public.customers.ssn FROM public.customers", -1, -1, -1, -1)]
    [InlineData("SELECT DISTINCT ssn FROM customers", -1, -1, -1, -1)]
    [InlineData("SELECT * FROM customers", -1, -1, -1, -1)]
    [InlineData("SELECT c.* FROM customers c", -1, -1, -1, -1)]
    [InlineData("SELECT count(*) FROM customers", -1, -1, -1, -1)]
    [InlineData("SELECT name FROM other", -1, -1, -1, -1)]
    // Inside expressions.
    [InlineData("SELECT upper(ssn) FROM customers", 0, 0, -1, -1)]
    [InlineData("SELECT ssn || '' FROM customers", 0, 0, -1, -1)]
    [InlineData("SELECT ssn::text FROM customers", 0, 0, -1, -1)]
    [InlineData("SELECT CAST(ssn AS int) FROM customers", 0, 0, -1, -1)]
    [InlineData("SELECT CASE WHEN true THEN ssn END FROM customers", 0, 0, -1, -1)]
    [InlineData("SELECT string_agg(email, ',') FROM contacts", 1, 1, -1, -1)]
    [InlineData("SELECT \"SSN\" FROM customers", -1, -1, -1, -1)] // a different column: quoted names keep case
    [InlineData("SELECT \"ssn\" || 'x' FROM customers", 0, 0, -1, -1)]
    // Whole rows of relations with masked columns.
    [InlineData("SELECT row_to_json(u) FROM customers u", 0, 0, -1, -1)]
    [InlineData("SELECT to_jsonb(customers) FROM customers", 0, 0, -1, -1)]
    [InlineData("SELECT json_agg(c) FROM contacts AS c", 1, 1, -1, -1)]
    [InlineData("SELECT c FROM customers c", 0, 0, -1, -1)]
    [InlineData("SELECT (c.*)::text FROM customers c", 0, 0, -1, -1)]
    [InlineData("SELECT concat_ws(',', c.*) FROM customers c", 0, 0, -1, -1)]
    // Set operations compute their columns.
    [InlineData("SELECT ssn FROM customers UNION SELECT 'x'", 0, 0, -1, -1)]
    // Subqueries and CTEs.
    [InlineData("SELECT x FROM (SELECT ssn AS x FROM customers) s", 0, -1, -1, -1)]
    [InlineData("WITH t AS (SELECT ssn FROM customers) SELECT upper(ssn) FROM t", 0, 0, -1, -1)]
    // Predicates.
    [InlineData("SELECT id FROM customers WHERE ssn LIKE '123%'", -1, -1, 0, -1)]
    [InlineData("SELECT id FROM customers ORDER BY ssn", -1, -1, 0, -1)]
    [InlineData("SELECT ssn FROM customers ORDER BY 1", -1, -1, 0, -1)]
    [InlineData("SELECT count(*) FROM customers GROUP BY card_number", -1, -1, 0, -1)]
    [InlineData("SELECT a.id FROM contacts a JOIN customers b ON a.email = b.name", -1, -1, 1, -1)]
    [InlineData("SELECT id FROM customers c WHERE c = c", 0, -1, 0, -1)]
    // Writes of masked values elsewhere.
    [InlineData("INSERT INTO copy SELECT ssn FROM customers", -1, -1, -1, 0)]
    [InlineData("INSERT INTO copy SELECT * FROM customers", -1, -1, -1, 0)]
    [InlineData("CREATE TABLE x AS SELECT * FROM customers", -1, -1, -1, 0)]
    [InlineData("CREATE VIEW v AS SELECT ssn FROM customers", -1, -1, -1, 0)]
    [InlineData("SELECT ssn INTO TEMP x FROM customers", -1, -1, -1, 0)]
    [InlineData("UPDATE customers SET name = ssn WHERE id = 1", 0, -1, -1, 0)]
    [InlineData("UPDATE other o SET note = c.ssn FROM customers c", 0, -1, -1, 0)]
    // Writes to masked tables are not reads.
    [InlineData("UPDATE customers SET ssn = '123-45-6789' WHERE id = 1", -1, -1, -1, -1)]
    [InlineData("INSERT INTO customers (id, ssn) VALUES (1, 'x')", -1, -1, -1, -1)]
    [InlineData("DELETE FROM customers WHERE id = 3", -1, -1, -1, -1)]
    [InlineData("INSERT INTO customers VALUES (1) RETURNING ssn", -1, -1, -1, 0)]
    public void Uses_are_found(string sql, int referenced, int inExpression, int inPredicate, int stored)
    {
        var analysis = Analyze(sql);
        Assert.Equal((referenced, inExpression, inPredicate, stored),
            (analysis.Referenced, analysis.InExpression, analysis.InPredicate, analysis.Stored));
    }

    [Theory]
    [InlineData("DECLARE c CURSOR FOR SELECT upper(ssn) FROM customers", 0)]
    [InlineData("PREPARE p AS SELECT ssn FROM customers", 0)]
    [InlineData("DECLARE c CURSOR FOR SELECT name FROM other", -1)]
    public void Stored_queries_are_found(string sql, int defined) => Assert.Equal(defined, Analyze(sql).Defined);

    [Theory]
    [InlineData("SELECT most_common_vals FROM pg_stats WHERE attname = 'ssn'", true)]
    [InlineData("SELECT * FROM pg_catalog.pg_statistic", true)]
    [InlineData("SELECT * FROM pg_class", false)]
    public void Statistics_views_are_found(string sql, bool statistics) => Assert.Equal(statistics, Analyze(sql).Statistics);

    [Fact]
    public void A_table_copied_to_the_client_in_text_format_is_maskable()
    {
        var analysis = Analyze("COPY public.customers (id, ssn) TO STDOUT");
        Assert.Equal(0, analysis.CopyRule);
        Assert.Equal(-1, analysis.CopyUnmaskable);
        Assert.Equal("public", Encoding.UTF8.GetString(analysis.Copy!.Schema!));
        Assert.Equal("customers", Encoding.UTF8.GetString(analysis.Copy.Relation));
        Assert.Equal(["id", "ssn"], analysis.Copy.Columns!.Select(c => Encoding.UTF8.GetString(c)));

        analysis = Analyze("copy Customers to stdout;");
        Assert.Equal(0, analysis.CopyRule);
        Assert.Null(analysis.Copy!.Schema);
        Assert.Null(analysis.Copy.Columns);
    }

    [Theory]
    [InlineData("COPY (SELECT ssn FROM customers) TO STDOUT")]
    [InlineData("COPY customers TO STDOUT WITH (FORMAT csv)")]
    [InlineData("COPY customers TO STDOUT (FORMAT binary)")]
    [InlineData("COPY customers TO '/tmp/customers.txt'")]
    [InlineData("COPY (SELECT * FROM contacts) TO STDOUT")]
    public void Copies_that_cannot_be_masked_are_found(string sql) => Assert.True(Analyze(sql).CopyUnmaskable >= 0, sql);

    [Theory]
    [InlineData("COPY customers FROM STDIN")]
    [InlineData("COPY other TO STDOUT")]
    public void Copies_without_masked_output_are_left_alone(string sql)
    {
        var analysis = Analyze(sql);
        Assert.Equal((-1, -1), (analysis.CopyRule, analysis.CopyUnmaskable));
    }

    [Fact]
    public void Several_statements_report_the_first_use()
    {
        var analysis = Analyze("SELECT 1; SELECT upper(email) FROM contacts; SELECT ssn FROM customers WHERE ssn = 'x'");
        Assert.Equal(1, analysis.Referenced);
        Assert.Equal(1, analysis.InExpression);
        Assert.Equal(0, analysis.InPredicate);
    }

    [Fact]
    public void Nothing_masked_is_nothing_found()
    {
        var analysis = StatementMaskAnalyzer.Analyze(U("SELECT upper(ssn) FROM customers"), SqlLexSettings.Default, MaskedNames.Empty);
        Assert.Equal(-1, analysis.AnyRule);
    }

    [Fact]
    public void Analysis_allocates_nothing_for_ordinary_statements()
    {
        byte[] sql = U("SELECT c.id, upper(c.ssn), row_to_json(c) FROM customers c JOIN contacts k ON k.id = c.id WHERE c.card_number = $1");
        StatementMaskAnalyzer.Analyze(sql, SqlLexSettings.Default, Names);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            StatementMaskAnalyzer.Analyze(sql, SqlLexSettings.Default, Names);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
