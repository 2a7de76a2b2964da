using System.Text;
using BenchmarkDotNet.Attributes;
using Gatehouse.Policy.Sql;

namespace Gatehouse.Benchmarks;

/// <summary>
/// Statement policy groundwork: lex + split + classify (with object extraction) of one simple-query text, the
/// cost a Query message will pay once enforcement is in the relay. The target is 0 B and under 1 µs for a point select.
/// </summary>
[MemoryDiagnoser]
public class SqlBenchmarks
{
    private readonly SqlObjectRef[] _objects = new SqlObjectRef[16];
    private byte[] _text = [];

    public static IEnumerable<string> Statements() => ["PointSelect", "Join", "Large"];

    [ParamsSource(nameof(Statements))]
    public string Statement { get; set; } = "PointSelect";

    [GlobalSetup]
    public void Setup()
    {
        _text = Encoding.UTF8.GetBytes(Statement switch
        {
            "PointSelect" => PointSelect,
            "Join" => Join,
            _ => Large(),
        });
    }

    // 60 bytes.
    private const string PointSelect = "SELECT id, name, email FROM public.users WHERE id = $1 /* */";

    private const string Join =
        "SELECT o.id, o.created_at, c.name AS customer, sum(li.quantity * li.unit_price) AS total, count(*) AS lines "
        + "FROM sales.orders o JOIN sales.customers c ON c.id = o.customer_id "
        + "LEFT JOIN sales.line_items li ON li.order_id = o.id "
        + "WHERE o.created_at >= $1 AND o.created_at < $2 AND c.region = 'EMEA' AND o.status <> 'cancelled' "
        + "GROUP BY o.id, o.created_at, c.name HAVING sum(li.quantity) > 0 ORDER BY total DESC LIMIT 50 -- report";

    private static string Large()
    {
        var sb = new StringBuilder("WITH recent AS (SELECT id, customer_id FROM sales.orders WHERE created_at > now() - interval '7 days') SELECT r.id");
        int i = 0;
        while (sb.Length < 3900)
        {
            sb.Append(", coalesce(r.c").Append(i).Append(", 'n/a') AS \"col ").Append(i).Append("\" /* c */");
            i++;
        }

        sb.Append(" FROM recent r JOIN sales.customers c ON c.id = r.customer_id WHERE c.name LIKE E'A\\'%'");
        return sb.ToString();
    }

    public int Length => _text.Length;

    [Benchmark]
    public StatementClass LexSplitClassify()
    {
        StatementClass result = StatementClass.None;
        ReadOnlySpan<byte> text = _text;
        foreach (SqlStatementRange range in new SqlSplitter<PostgresDialect>(text, SqlLexSettings.Default))
        {
            result |= SqlClassifier.Classify(text.Slice(range.Start, range.Length), SqlLexSettings.Default, _objects).Class;
        }

        return result;
    }

    [Benchmark]
    public int LexOnly()
    {
        var lexer = new SqlLexer<PostgresDialect>(_text, SqlLexSettings.Default);
        int count = 0;
        while (lexer.Next(out _))
        {
            count++;
        }

        return count;
    }
}
