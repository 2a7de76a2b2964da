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

    public static IEnumerable<string> Statements() => BenchStatements.Names();

    [ParamsSource(nameof(Statements))]
    public string Statement { get; set; } = "PointSelect";

    [GlobalSetup]
    public void Setup()
    {
        _text = BenchStatements.Get(Statement);
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
