using BenchmarkDotNet.Attributes;
using Gatehouse.Protocols.Postgres.Masking;

namespace Gatehouse.Benchmarks;

/// <summary>
/// What masking asks the catalog for each RowDescription field: the relation by table OID, the column's origin
/// (through a view) and name, and whether the type is text-like. A snapshot of 10,000 tables and 2,000 views; each
/// invocation resolves <see cref="Fields"/> fields, so the table reads per field. The target is 0 B.
/// </summary>
[MemoryDiagnoser]
public class PgCatalogBenchmarks
{
    public const int Fields = 100;

    private const uint FirstTable = 20_000;
    private const uint FirstView = 40_000;

    private readonly PgCatalogSnapshot _snapshot = Build();
    private readonly (uint Table, short Attnum, uint Type)[] _fields = Enumerable.Range(0, Fields)
        .Select(i => i % 2 == 0
            ? (FirstTable + (uint)(i * 97 % 10_000), (short)(1 + i % 20), 25u)
            : (FirstView + (uint)(i * 31 % 2_000), (short)(1 + i % 4), 23u))
        .ToArray();

    [Benchmark(OperationsPerInvoke = Fields)]
    public int ResolveFields()
    {
        int sensitive = 0;
        foreach (var (table, attnum, type) in _fields)
        {
            if (_snapshot.TryGetRelation(table, out var relation))
            {
                var origin = relation.Origin(attnum);
                if (origin.IsColumn && _snapshot.TryGetRelation(origin.Oid, out var baseTable) && baseTable.ColumnName(origin.Attnum) is { Length: > 2 })
                {
                    sensitive++;
                }

                if (_snapshot.IsTextType(type))
                {
                    sensitive++;
                }
            }
        }

        return sensitive;
    }

    private static PgCatalogSnapshot Build()
    {
        var relations = new List<PgRelation>();
        for (uint t = 0; t < 10_000; t++)
        {
            relations.Add(new PgRelation(FirstTable + t, "app", $"t{t}", 'r', Enumerable.Range(1, 20).Select(c => (string?)$"c{c}").ToArray()));
        }

        for (uint v = 0; v < 2_000; v++)
        {
            uint table = FirstTable + v * 5;
            relations.Add(new PgRelation(FirstView + v, "app", $"v{v}", 'v', ["id", "ssn", "u", "n"],
                [PgColumnOrigin.Column(table, 1), PgColumnOrigin.Column(table, 2), PgColumnOrigin.Expression, PgColumnOrigin.Unknown],
                [PgColumnOrigin.Column(table, 1), PgColumnOrigin.Column(table, 2), PgColumnOrigin.Column(table, 3)]));
        }

        return new PgCatalogSnapshot(1, DateTimeOffset.UnixEpoch, relations, [25, 1043, 1042, 19, 705], [114, 3802]);
    }
}
