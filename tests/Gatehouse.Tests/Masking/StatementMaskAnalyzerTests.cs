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
    // Set operations compute their columns, also from * (UNION without ALL, INTERSECT and EXCEPT compare values).
    [InlineData("SELECT ssn FROM customers UNION SELECT 'x'", 0, 0, 0, -1)]
    [InlineData("SELECT ssn FROM customers UNION ALL SELECT 'x'", 0, 0, -1, -1)]
    [InlineData("SELECT * FROM customers UNION ALL SELECT * FROM customers", 0, 0, -1, -1)]
    [InlineData("SELECT ssn FROM customers INTERSECT SELECT '123-45-6789'", 0, 0, 0, -1)]
    // FULL joins merge columns by COALESCE: computed.
    [InlineData("SELECT * FROM customers NATURAL FULL JOIN other", 0, -1, -1, -1)]
    [InlineData("SELECT ssn FROM customers FULL JOIN other USING (ssn)", 0, -1, 0, -1)]
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
    // Names that stand for masked values under another name.
    [InlineData("SELECT upper(z) FROM (SELECT * FROM customers) s(i, n, z)", 0, 0, -1, -1)]
    [InlineData("SELECT upper(z) FROM customers AS s(i, z)", 0, 0, -1, -1)]
    [InlineData("SELECT upper(z) FROM customers s(i, z)", 0, 0, -1, -1)]
    [InlineData("WITH w(i, z) AS (SELECT * FROM customers) SELECT upper(z) FROM w", 0, 0, -1, -1)]
    [InlineData("WITH w AS MATERIALIZED (SELECT * FROM customers) SELECT w::text FROM w", 0, 0, -1, -1)]
    [InlineData("WITH w AS (SELECT * FROM customers) SELECT id FROM w", -1, -1, -1, -1)]
    [InlineData("SELECT row_to_json(s) FROM (SELECT * FROM customers) s", 0, 0, -1, -1)]
    [InlineData("SELECT (s.*)::text FROM (SELECT * FROM contacts) AS s", 1, 1, -1, -1)]
    [InlineData("SELECT i FROM (SELECT id AS i, email AS e FROM contacts) s WHERE e > 'a'", 1, -1, 1, -1)]
    [InlineData("SELECT i FROM (SELECT id AS i, email e FROM contacts) s ORDER BY e", 1, -1, 1, -1)]
    [InlineData("SELECT email AS e FROM contacts ORDER BY e", -1, -1, 1, -1)]
    [InlineData("SELECT CASE WHEN true THEN email END e FROM contacts ORDER BY e", 1, 1, 1, -1)]
    [InlineData("SELECT i FROM (SELECT * FROM (SELECT * FROM contacts) a(i, e)) b WHERE b.e = 'x'", -1, -1, 1, -1)]
    [InlineData("SELECT DISTINCT ssn FROM customers ORDER BY ssn", -1, -1, 0, -1)]
    [InlineData("SELECT DISTINCT ON (id) ssn FROM customers", -1, -1, -1, -1)]
    [InlineData("SELECT DISTINCT ON (ssn) id FROM customers", -1, -1, 0, -1)]
    [InlineData("SELECT CAST(ssn AS text) FROM customers WHERE text = 'x'", 0, 0, -1, -1)] // CAST's type is no alias
    // Values read by functions called in FROM: their results are computed from them.
    [InlineData("SELECT p FROM customers, LATERAL regexp_split_to_table(ssn, '-') AS p", 0, 0, -1, -1)]
    [InlineData("SELECT r FROM customers c, upper(c.ssn) r", 0, 0, -1, -1)]
    [InlineData("SELECT j.value FROM customers u, LATERAL jsonb_each_text(to_jsonb(u)) j", 0, 0, -1, -1)]
    [InlineData("SELECT j.key FROM customers u CROSS JOIN json_each(row_to_json(u)) j WHERE j.value::text = 'x'", 0, 0, 0, -1)]
    [InlineData("SELECT * FROM customers c JOIN other o USING (id)", -1, -1, -1, -1)]
    // Unicode-escaped identifiers name what they spell.
    [InlineData("SELECT upper(U&\"\\0073sn\") FROM customers", 0, 0, -1, -1)]
    [InlineData("SELECT upper(U&\"!0073!+000073n\" UESCAPE '!') FROM customers", 0, 0, -1, -1)]
    [InlineData("SELECT upper(U&\"\\0053sn\") FROM customers", -1, -1, -1, -1)] // "Ssn": another column
    // ORDER BY position of a column * expanded.
    [InlineData("SELECT * FROM customers ORDER BY 2", -1, -1, 0, -1)]
    [InlineData("SELECT id FROM customers ORDER BY 1", -1, -1, -1, -1)]
    // FROM inside substring/extract/trim and IS DISTINCT FROM is no FROM clause; FOR UPDATE is no write.
    [InlineData("SELECT substring(ssn FROM 5) FROM customers", 0, 0, -1, -1)]
    [InlineData("SELECT substring('x' FROM ssn) FROM customers", 0, 0, -1, -1)]
    [InlineData("SELECT trim(leading 'A' FROM email) FROM contacts", 1, 1, -1, -1)]
    [InlineData("SELECT 'x' IS DISTINCT FROM ssn FROM customers", 0, 0, -1, -1)]
    [InlineData("SELECT id FROM customers WHERE 'x' IS NOT DISTINCT FROM ssn", -1, -1, 0, -1)]
    [InlineData("SELECT * FROM customers WHERE id = 1 FOR UPDATE", -1, -1, -1, -1)]
    [InlineData("SELECT * FROM customers c FOR NO KEY UPDATE OF c", -1, -1, -1, -1)]
    // A masked column a subquery returns into a predicate (IN, = ANY, comparisons, LIMIT) is compared there.
    [InlineData("SELECT id FROM other WHERE 'x' IN (SELECT ssn FROM customers)", 0, -1, 0, -1)]
    [InlineData("SELECT id FROM other o JOIN customers c ON o.x = (SELECT c2.ssn FROM customers c2 LIMIT 1)", 0, -1, 0, -1)]
    [InlineData("SELECT id FROM other ORDER BY (SELECT email FROM contacts LIMIT 1)", 1, -1, 1, -1)]
    [InlineData("SELECT id FROM other LIMIT (SELECT length(ssn) FROM customers LIMIT 1)", 0, 0, 0, -1)]
    [InlineData("SELECT (SELECT ssn FROM customers LIMIT 1)", 0, -1, -1, -1)]
    public void Uses_are_found(string sql, int referenced, int inExpression, int inPredicate, int stored)
    {
        var analysis = Analyze(sql);
        Assert.Equal((referenced, inExpression, inPredicate, stored),
            (analysis.Referenced, analysis.InExpression, analysis.InPredicate, analysis.Stored));
    }

    [Theory]
    // Copies into tables, also through TABLE, EXPLAIN ANALYZE and code.
    [InlineData("CREATE TABLE x AS TABLE customers", 0)]
    [InlineData("CREATE TEMP TABLE x AS (TABLE contacts)", 1)]
    [InlineData("EXPLAIN ANALYZE CREATE TABLE x AS SELECT * FROM customers", 0)]
    [InlineData("CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$SELECT string_agg(ssn, ',') FROM customers$$", 0)]
    [InlineData("DO $$DECLARE r text; BEGIN SELECT email INTO r FROM contacts; RAISE NOTICE '%', r; END$$", 1)]
    // DDL on a relation with masked columns: renames, moves, parents, generated copies.
    [InlineData("ALTER TABLE customers RENAME COLUMN ssn TO tax", 0)]
    [InlineData("ALTER TABLE public.customers RENAME TO c2", 0)]
    [InlineData("ALTER TABLE customers SET SCHEMA other", 0)]
    [InlineData("ALTER TABLE customers INHERIT parent", 0)]
    [InlineData("ALTER TABLE parent ATTACH PARTITION contacts FOR VALUES IN (1)", 1)]
    [InlineData("ALTER TABLE customers ADD COLUMN c text GENERATED ALWAYS AS (ssn || '') STORED", 0)]
    [InlineData("CREATE INDEX ON customers (ssn)", 0)]
    // Values passed where a later statement or the protocol shows them.
    [InlineData("SELECT set_config('application_name', ssn, false) FROM customers", 0)]
    [InlineData("SELECT pg_notify('ch', email) FROM contacts", 1)]
    [InlineData("SELECT lo_from_bytea(0, convert_to(ssn, 'UTF8')) FROM customers", 0)]
    // Nothing masked.
    [InlineData("ALTER TABLE other RENAME COLUMN ssn TO tax", -1)]
    [InlineData("CREATE TABLE other (ssn text, email text)", -1)]
    [InlineData("DROP TABLE customers", -1)]
    [InlineData("SELECT set_config('application_name', 'x', false)", -1)]
    [InlineData("DO $$BEGIN RAISE NOTICE 'card %', '4111 1111 1111 1111'; END$$", -1)]
    public void Values_stored_elsewhere_are_found(string sql, int stored) => Assert.Equal(stored, Analyze(sql).Stored);

    [Theory]
    [InlineData("SELECT query_to_xml('select e' || 'mail from contacts', true, false, '')", true)]
    [InlineData("SELECT table_to_xml(16400::regclass, true, false, '')", true)]
    [InlineData("SELECT * FROM public.dblink('dbname=app', 'select 1') AS t(x int)", true)]
    [InlineData("SELECT word FROM ts_stat('SELECT to_tsvector(x) FROM y')", true)]
    [InlineData("SELECT pg_read_binary_file('base/1/2')", true)]
    [InlineData("SELECT * FROM pg_logical_slot_get_changes('s', NULL, NULL)", true)]
    [InlineData("DO $$BEGIN EXECUTE 'SELECT 1'; END$$", true)]
    [InlineData("CREATE FUNCTION f() RETURNS xml LANGUAGE plpgsql AS $$BEGIN RETURN query_to_xml('x', true, false, ''); END$$", true)]
    [InlineData("CREATE FUNCTION f() RETURNS text LANGUAGE plpython3u AS 'return 1'", true)]
    [InlineData("ALTER SCHEMA public RENAME TO p2", true)]
    [InlineData("COPY other FROM '/var/lib/postgresql/data/base/1/2'", true)]
    [InlineData("COPY other FROM PROGRAM 'cat x'", true)]
    [InlineData("CREATE FOREIGN TABLE f (ssn text) SERVER loop OPTIONS (table_name 'customers')", true)]
    [InlineData("IMPORT FOREIGN SCHEMA public LIMIT TO (customers) FROM SERVER loop INTO other", true)]
    [InlineData("ALTER SERVER loop OPTIONS (SET dbname 'app')", true)]
    [InlineData("COPY other FROM STDIN", false)]
    [InlineData("SELECT upper(ssn) FROM customers", false)]
    [InlineData("DO $$BEGIN RAISE NOTICE 'hello'; END$$", false)]
    [InlineData("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", false)]
    public void Reads_the_gateway_cannot_see_are_found(string sql, bool opaque) => Assert.Equal(opaque, Analyze(sql).Opaque);

    [Theory]
    [InlineData("DECLARE c BINARY CURSOR FOR SELECT ssn FROM customers", true, false)]
    [InlineData("DECLARE c NO SCROLL CURSOR WITH HOLD FOR SELECT ssn FROM customers", false, false)]
    [InlineData("DO $$BEGIN NULL; END$$", false, true)]
    [InlineData("CREATE OR REPLACE PROCEDURE p() LANGUAGE sql AS 'SELECT 1'", false, true)]
    public void Binary_cursors_and_code_are_found(string sql, bool binaryCursor, bool code)
    {
        var analysis = Analyze(sql);
        Assert.Equal((binaryCursor, code), (analysis.BinaryCursor, analysis.Code));
    }

    [Fact]
    public void A_lexer_error_makes_the_text_unreadable() => Assert.True(Analyze("SELECT 1x, upper(ssn) FROM customers").Unreadable);

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

    [Theory]
    [InlineData("SELECT c.id, upper(c.ssn), row_to_json(c) FROM customers c JOIN contacts k ON k.id = c.id WHERE c.card_number = $1")]
    [InlineData("WITH w(i, z) AS (SELECT * FROM customers) SELECT upper(z), row_to_json(s) FROM w, (SELECT * FROM contacts) s(a, e), "
                + "LATERAL jsonb_each_text(to_jsonb(s)) j WHERE e = $1 AND j.value <> '' ORDER BY 1")]
    [InlineData("DO $$DECLARE r text; BEGIN SELECT email INTO r FROM contacts; RAISE NOTICE '%', r; END$$")]
    [InlineData("SELECT upper(U&\"\\0073sn\") AS x FROM customers UNION SELECT email FROM contacts")]
    public void Analysis_allocates_nothing_for_ordinary_statements(string text)
    {
        byte[] sql = U(text);
        StatementMaskAnalyzer.Analyze(sql, SqlLexSettings.Default, Names);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            StatementMaskAnalyzer.Analyze(sql, SqlLexSettings.Default, Names);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void A_long_text_is_analyzed_whole()
    {
        // More tokens than the stack holds: the rented buffers must hold every token and parenthesis.
        var text = new StringBuilder("SELECT 1");
        for (int i = 0; i < 400; i++)
        {
            text.Append(", (").Append(i).Append(')');
        }

        text.Append(", upper(z) FROM customers AS s(i, z)");
        var analysis = Analyze(text.ToString());
        Assert.Equal((0, 0), (analysis.Referenced, analysis.InExpression));
    }
}
