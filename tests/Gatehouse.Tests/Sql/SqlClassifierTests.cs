using System.Text;
using Gatehouse.Policy.Sql;
using C = Gatehouse.Policy.Sql.StatementClass;
using S = Gatehouse.Policy.Sql.StatementShape;

namespace Gatehouse.Tests.Sql;

public sealed class SqlClassifierTests
{
    public static TheoryData<string, bool, C, S> Cases() => SqlClassifierCases.All();

    [Theory]
    [MemberData(nameof(Cases))]
    public void Classifies_statements_as_the_server_would_parse_them(string sql, bool standardConformingStrings, C expectedClass, S expectedShape)
    {
        SqlScriptInfo info = SqlClassifier.ClassifyScript(Encoding.UTF8.GetBytes(sql), new SqlLexSettings(standardConformingStrings));

        Assert.Equal(expectedClass, info.Class);
        Assert.Equal(expectedShape, info.Shape);
    }

    [Fact]
    public void The_table_has_at_least_150_cases()
    {
        Assert.True(SqlClassifierCases.All().Count >= 150);
    }

    [Fact]
    public void Empty_and_comment_only_text_has_no_statements()
    {
        foreach (string sql in new[] { "", "   ", ";", " ; ; ", "-- only\n", "/* only */" })
        {
            SqlScriptInfo info = SqlClassifier.ClassifyScript(Encoding.UTF8.GetBytes(sql), SqlLexSettings.Default);
            Assert.Equal(0, info.StatementCount);
            Assert.Equal(C.None, info.Class);
        }
    }

    [Fact]
    public void Copy_detail_reports_direction_and_endpoint()
    {
        Assert.Equal(CopyDetail.To | CopyDetail.Client, Copy("COPY t TO STDOUT"));
        Assert.Equal(CopyDetail.From | CopyDetail.Client, Copy("COPY t FROM STDIN"));
        Assert.Equal(CopyDetail.To | CopyDetail.File, Copy("COPY t TO '/tmp/x'"));
        Assert.Equal(CopyDetail.From | CopyDetail.File, Copy("COPY t FROM '/etc/passwd'"));
        Assert.Equal(CopyDetail.From | CopyDetail.Program, Copy("COPY t FROM PROGRAM 'id'"));
        Assert.Equal(CopyDetail.To | CopyDetail.Program, Copy("COPY (SELECT 1) TO PROGRAM 'id'"));

        static CopyDetail Copy(string sql) =>
            SqlClassifier.Classify(Encoding.UTF8.GetBytes(sql), SqlLexSettings.Default, []).Copy;
    }

    [Theory]
    [InlineData("SELECT * FROM public.orders o JOIN \"Line Items\" li ON o.id = li.order_id", "R:public.orders", "R:\"Line Items\"")]
    [InlineData("SELECT count(*) FROM a, b x, s.c WHERE a.id = 1", "F:count", "R:a", "R:b", "R:s.c")]
    [InlineData("INSERT INTO s.t (a, b) VALUES (1, 2)", "R:s.t")]
    [InlineData("UPDATE t SET a = lower(b) WHERE id = 1", "R:t", "F:lower")]
    [InlineData("DELETE FROM ONLY t USING u WHERE t.id = u.id", "R:t", "R:u")]
    [InlineData("TRUNCATE TABLE a, b", "R:a", "R:b")]
    [InlineData("DROP TABLE IF EXISTS x.a, b", "R:x.a", "R:b")]
    [InlineData("TABLE db.s.t", "R:db.s.t")]
    [InlineData("SELECT * FROM generate_series(1, 3) g", "F:generate_series")]
    [InlineData("SELECT pg_catalog.pg_read_file('/etc/passwd')", "F:pg_catalog.pg_read_file")]
    [InlineData("SELECT x FROM t WHERE y IN (SELECT y FROM u)", "R:t", "R:u")]
    [InlineData("SELECT extract(year FROM d), cast(a AS varchar(10)) FROM t", "R:t")]
    [InlineData("COPY s.t (a) FROM STDIN", "R:s.t")]
    [InlineData("EXPLAIN ANALYZE DELETE FROM t", "R:t")]
    [InlineData("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", "R:t", "R:s")]
    [InlineData("INSERT INTO t SELECT * FROM vault.keys k, u", "R:t", "R:vault.keys", "R:u")]
    [InlineData("INSERT INTO t (a) SELECT a FROM u UNION SELECT b FROM v", "R:t", "R:u", "R:v")]
    [InlineData("UPDATE t SET a = u.a FROM u, s.v WHERE t.id = u.id", "R:t", "R:u", "R:s.v")]
    [InlineData("UPDATE t SET a = 1 WHERE id = 1 RETURNING (SELECT x FROM u)", "R:t", "R:u")]
    public void Extracts_referenced_relations_and_called_functions(string sql, params string[] expected)
    {
        byte[] text = Encoding.UTF8.GetBytes(sql);
        var objects = new SqlObjectRef[16];
        SqlStatementInfo info = SqlClassifier.Classify(text, SqlLexSettings.Default, objects);

        string[] actual = objects.Take(info.ObjectCount)
            .Select(o => (o.Kind == SqlObjectKind.Relation ? "R:" : "F:") + Encoding.UTF8.GetString(text, o.Start, o.Length))
            .ToArray();
        Assert.Equal(expected, actual);
        Assert.False(info.ObjectsTruncated);
    }

    [Fact]
    public void Objects_beyond_the_callers_span_are_counted_as_truncated()
    {
        byte[] text = Encoding.UTF8.GetBytes("SELECT * FROM a, b, c, d");
        var objects = new SqlObjectRef[2];
        SqlStatementInfo info = SqlClassifier.Classify(text, SqlLexSettings.Default, objects);

        Assert.Equal(2, info.ObjectCount);
        Assert.True(info.ObjectsTruncated);
    }

    [Fact]
    public void Ten_thousand_nested_comment_openers_are_an_error_not_a_crash()
    {
        string sql = "SELECT 1 " + string.Concat(Enumerable.Repeat("/*", 10_000)) + string.Concat(Enumerable.Repeat("*/", 10_000));
        byte[] text = Encoding.UTF8.GetBytes(sql);

        var lexer = new SqlLexer<PostgresDialect>(text, SqlLexSettings.Default);
        SqlTokenKind last = SqlTokenKind.End;
        while (lexer.Next(out SqlToken token))
        {
            last = token.Kind;
        }

        Assert.Equal(SqlTokenKind.Error, last);
        Assert.Equal(SqlLexError.CommentTooDeep, lexer.Error);
        Assert.Equal(C.Read | C.Unknown, SqlClassifier.ClassifyScript(text, SqlLexSettings.Default).Class);
    }

    [Fact]
    public void Deep_parentheses_are_unknown_not_a_crash()
    {
        byte[] text = Encoding.UTF8.GetBytes("SELECT " + new string('(', 10_000) + "1" + new string(')', 10_000));
        Assert.Equal(C.Read | C.Unknown, SqlClassifier.ClassifyScript(text, SqlLexSettings.Default).Class);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Every_truncated_prefix_never_throws(bool standardConformingStrings)
    {
        string[] statements =
        [
            "WITH x AS (DELETE FROM t WHERE a = E'\\'' RETURNING *) SELECT * FROM x; DROP TABLE \"a\"\"b\"",
            "DO $body$ BEGIN PERFORM set_config('role', 'x', false); END $body$; /* a /* b */ c */ SELECT U&'\\0061' -- x",
            "COPY (SELECT 'a\\'b', $1, 1.5e3, 0x1f FROM s.t) TO PROGRAM 'x'; EXPLAIN (ANALYZE) UPDATE t SET a = b'1'",
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN 1 = 1 THEN 1 END; END; SELECT 'é' AS ü",
        ];
        var settings = new SqlLexSettings(standardConformingStrings);
        var objects = new SqlObjectRef[4];
        foreach (string sql in statements)
        {
            byte[] text = Encoding.UTF8.GetBytes(sql);
            for (int length = 0; length <= text.Length; length++)
            {
                ReadOnlySpan<byte> prefix = text.AsSpan(0, length);
                SqlClassifier.ClassifyScript(prefix, settings);
                foreach (SqlStatementRange range in new SqlSplitter<PostgresDialect>(prefix, settings))
                {
                    Assert.InRange(range.End, 0, length);
                    SqlClassifier.Classify(prefix.Slice(range.Start, range.Length), settings, objects);
                }
            }
        }
    }

    [Fact]
    public void Random_bytes_never_throw()
    {
        var random = new Random(12345);
        byte[] alphabet = "'\"$;()/*-\\EeUu&BbXx019 \n._aZ\u00e9"u8.ToArray();
        var buffer = new byte[64];
        var objects = new SqlObjectRef[4];
        for (int i = 0; i < 20_000; i++)
        {
            int length = random.Next(buffer.Length);
            for (int j = 0; j < length; j++)
            {
                buffer[j] = alphabet[random.Next(alphabet.Length)];
            }

            bool scs = (i & 1) == 0;
            SqlClassifier.ClassifyScript(buffer.AsSpan(0, length), new SqlLexSettings(scs));
            SqlClassifier.Classify(buffer.AsSpan(0, length), new SqlLexSettings(scs), objects);
        }
    }

    [Fact]
    public void Classification_does_not_allocate()
    {
        byte[] text = Encoding.UTF8.GetBytes("WITH x AS (DELETE FROM s.t RETURNING *) SELECT set_config('role', 'a', false), pg_read_file('/x') FROM x JOIN y ON x.a = y.a; COPY t TO STDOUT");
        var objects = new SqlObjectRef[8];
        Run(text, objects);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            Run(text, objects);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);

        static void Run(byte[] text, SqlObjectRef[] objects)
        {
            SqlClassifier.ClassifyScript(text, SqlLexSettings.Default);
            foreach (SqlStatementRange range in new SqlSplitter<PostgresDialect>(text, SqlLexSettings.Default))
            {
                SqlClassifier.Classify(text.AsSpan(range.Start, range.Length), SqlLexSettings.Default, objects);
            }
        }
    }
}
