using System.Buffers;
using System.IO.Pipelines;
using BenchmarkDotNet.Attributes;
using Gatehouse.Engine.Transport;
using Gatehouse.Policy.Rules;
using Gatehouse.Protocols.Postgres;
using Gatehouse.Protocols.Postgres.Masking;
using Gatehouse.Protocols.Postgres.Relay;
using Microsoft.Extensions.Logging.Abstractions;
using static Gatehouse.Fuzz.PgMessages;

namespace Gatehouse.Benchmarks;

/// <summary>
/// The server direction's per-row work with masking on, as the relay does it for one read of 100 DataRows: validate,
/// look the row up against its mask plan, scan the unmasked text values with every built-in detector, write the row
/// anew with the masked values and recomputed lengths, then one flush. The row is <c>bench/pg.sh</c>'s big_rows row:
/// an integer id, a 96-character payload, an e-mail address and a note. The target is 0 B per row.
/// </summary>
[MemoryDiagnoser]
public class PgMaskingBenchmarks
{
    public const int Rows = 100;

    private const int TableOid = 16390;

    private LoopbackSession? _loopback;
    private Func<ValueTask>? _closeCatalog;
    private Pipe? _pipe;
    private BackendRelayHandler _backend;
    private ReadOnlySequence<byte> _rows;

    /// <summary>
    /// none: the plan has no work (masking on, no rule applies to these columns); detectors: every built-in detector
    /// scans the four values (no match); masked: payload (keep_last 8) and email (hash) masked by origin, detectors
    /// scan id and note.
    /// </summary>
    [Params("none", "detectors", "masked")]
    public string Mode { get; set; } = "masked";

    [GlobalSetup]
    public void Setup()
    {
        _loopback = LoopbackSession.Open();
        var limits = LoopbackSession.Limits;
        var state = new PgRelayState(_loopback.Session, limits.MaxClientMessageSize, limits.MaxServerMessageSize);
        var snapshot = new PgCatalogSnapshot(1, DateTimeOffset.UtcNow,
            [new PgRelation(TableOid, "public", "big_rows", 'r', ["id", "payload", "email", "note"])], [25, 1043], [114, 3802]);
        var target = new PgConnectionTarget { Name = "bench", Host = "127.0.0.1", Database = "bench", User = "bench" };
        var catalog = new PgCatalogCache(target, new PgCatalogOptions(), NullLogger.Instance, TimeProvider.System, new FixedSource(snapshot));
        catalog.GetAsync(CancellationToken.None).GetAwaiter().GetResult();
        _closeCatalog = catalog.DisposeAsync;

        var rules = Policy(Mode).Masking.For("alice", [], "app", "bench")!;
        var masking = new PgSessionMasking(rules, catalog);
        state.Masking = masking;
        masking.QueryRows(new ReadOnlySequence<byte>(RowDescription()), referencedRule: -1);
        _backend = new BackendRelayHandler(state);
        _pipe = new Pipe(TransportOptions.Pipes);
        _rows = new ReadOnlySequence<byte>(Concat([.. Enumerable.Range(1, Rows).Select(DataRow)]));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _pipe?.Writer.Complete();
        _pipe?.Reader.Complete();
        _closeCatalog?.Invoke().AsTask().GetAwaiter().GetResult();
        _loopback?.Dispose();
    }

    [Benchmark(OperationsPerInvoke = Rows)]
    public int DataRows() => RelayStep.Run(ref _backend, _rows, _pipe!);

    /// <summary>The big_rows row: id, 96 hex characters, an e-mail address, a note without sensitive values.</summary>
    public static byte[] DataRow(int id) => Message('D', Int16(4),
        Value(Text(id.ToString(System.Globalization.CultureInfo.InvariantCulture))),
        Value(Text(string.Concat(Enumerable.Repeat("9e107d9d372bb6826bd81d3542a419d6", 3)))),
        Value(Text($"customer{id}@example.com")),
        Value(Text($"order {id} shipped to the Lisbon warehouse, 3 parcels, signed on delivery")));

    public static byte[] RowDescription() => Message('T', Int16(4),
        Field("id", 1, 23, 4), Field("payload", 2, 25, -1), Field("email", 3, 25, -1), Field("note", 4, 25, -1));

    private static byte[] Field(string name, int column, int typeOid, int typeSize) =>
        Concat(CString(name), Int32(TableOid), Int16(column), Int32(typeOid), Int16(typeSize), Int32(-1), Int16(0));

    /// <summary>The policy of each mode; all built-in detectors in the last two.</summary>
    public static PolicySnapshot Policy(string mode)
    {
        var rules = new List<PolicyMaskRuleModel>();
        if (mode != "none")
        {
            rules.Add(new PolicyMaskRuleModel("detectors", default)
            {
                Detect = ["card", "ssn", "email", "phone", "iban", "aws_key", "secret_token", "jwt", "pem_private_key"],
            });
        }

        if (mode == "masked")
        {
            rules.Insert(0, new PolicyMaskRuleModel("payload", default) { Columns = ["public.big_rows.payload"], Style = "keep_last", Keep = "8" });
            rules.Insert(1, new PolicyMaskRuleModel("email", default) { Columns = ["public.big_rows.email"], Style = "hash" });
        }
        else if (mode == "none")
        {
            rules.Add(new PolicyMaskRuleModel("elsewhere", default) { Columns = ["public.other.secret"] });
        }

        return PolicyCompiler.Compile(new PolicyModel("bench", default)
        {
            Roles = [new PolicyRoleModel("app", ["all"])],
            Bindings = [new PolicyBindingModel("app", default) { Identities = ["alice"], Connections = ["*"] }],
            Masking = new PolicyMaskingModel(default) { Key = ("value", "bench-masking-key-0123456789"), Rules = rules },
        });
    }

    private sealed class FixedSource(PgCatalogSnapshot snapshot) : IPgCatalogSource
    {
        public Task<PgCatalogSnapshot> LoadAsync(long version, CancellationToken cancellationToken) => Task.FromResult(snapshot);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
