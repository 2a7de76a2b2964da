using System.Buffers;
using System.IO.Pipelines;
using BenchmarkDotNet.Attributes;
using Gatehouse.Engine.Relay;
using Gatehouse.Engine.Transport;
using Gatehouse.Policy.Rules;
using Gatehouse.Protocols.Postgres.Policy;
using Gatehouse.Protocols.Postgres.Relay;
using M = Gatehouse.Fuzz.PgMessages;

namespace Gatehouse.Benchmarks;

/// <summary>
/// The relay's per-message cost with statement policy on (<see cref="Policy"/> true) and off, over whole
/// exchanges in both directions, as a session sees them: the client's messages through the frontend handler (each
/// request decided and queued by <see cref="PgPolicyGate"/>), then the server's answers through the backend handler
/// (each matched to its request). Three client styles: Npgsql (unnamed Parse/Bind/Describe/Execute/Sync per query),
/// pgbench -M prepared (Bind/Execute/Sync of a named statement) and simple Query. Reported per message.
/// </summary>
[MemoryDiagnoser]
public class PgPolicyGateBenchmarks
{
    public const int Rounds = 16;

    /// <summary>Per round: P B D E S from the client, 1 2 T D C Z from the server.</summary>
    public const int UnnamedMessages = Rounds * 11;

    /// <summary>Per round: B E S, then 2 D C Z.</summary>
    public const int PreparedMessages = Rounds * 7;

    /// <summary>Per round: Q, then T D C Z.</summary>
    public const int SimpleMessages = Rounds * 5;

    private const string PointSelect = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";

    private LoopbackSession? _loopback;
    private Pipe? _pipe;
    private FrontendRelayHandler _frontend;
    private BackendRelayHandler _backend;
    private (ReadOnlySequence<byte> Client, ReadOnlySequence<byte> Server) _unnamed;
    private (ReadOnlySequence<byte> Client, ReadOnlySequence<byte> Server) _prepared;
    private (ReadOnlySequence<byte> Client, ReadOnlySequence<byte> Server) _simple;

    [Params(false, true)]
    public bool Policy { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _loopback = LoopbackSession.Open();
        var limits = LoopbackSession.Limits;
        var state = new PgRelayState(_loopback.Session, limits.MaxClientMessageSize, limits.MaxServerMessageSize);
        if (Policy)
        {
            var store = new PolicyStore(PolicyCompiler.Compile(BenchPolicy.Model()));
            var session = store.Current.Resolve(BenchPolicy.Identity, [], BenchPolicy.Connection)
                          ?? throw new InvalidOperationException("the bench policy has no binding for the bench identity");
            state.Gate = new PgPolicyGate(store, session, BenchPolicy.Identity, [], BenchPolicy.Connection, state);
        }

        _frontend = new FrontendRelayHandler(state);
        _backend = new BackendRelayHandler(state);
        _pipe = new Pipe(TransportOptions.Pipes);

        byte[] row = M.DataRow(M.Text("12345"), M.Text("1"), M.Text("0"), M.Text("filler"), null);
        byte[] rowDescription = M.RowDescription(M.Field("abalance", 16400, 3, 23, 4, -1, 0));
        byte[] complete = M.CommandComplete("SELECT 1");
        byte[] ready = M.ReadyForQuery('I');
        byte[] bind(string statement) => M.Bind("", statement, [], [M.Text("12345")], []);

        // The named statement pgbench prepares once per connection.
        Exchange(M.Concat(M.Parse("P0_1", PointSelect, 23), M.Sync()), M.Concat(M.ParseComplete(), ready));

        _unnamed = (Repeat(M.Parse("", PointSelect, 23), bind(""), M.Describe('P', ""), M.Execute("", 0), M.Sync()),
            Repeat(M.ParseComplete(), M.BindComplete(), rowDescription, row, complete, ready));
        _prepared = (Repeat(bind("P0_1"), M.Execute("", 0), M.Sync()), Repeat(M.BindComplete(), row, complete, ready));
        _simple = (Repeat(M.Query("SELECT abalance FROM pgbench_accounts WHERE aid = 12345;")), Repeat(rowDescription, row, complete, ready));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _pipe?.Writer.Complete();
        _pipe?.Reader.Complete();
        _loopback?.Dispose();
    }

    [Benchmark(OperationsPerInvoke = UnnamedMessages)]
    public int NpgsqlUnnamed() => Exchange(_unnamed.Client, _unnamed.Server);

    [Benchmark(OperationsPerInvoke = PreparedMessages)]
    public int PgbenchPrepared() => Exchange(_prepared.Client, _prepared.Server);

    [Benchmark(OperationsPerInvoke = SimpleMessages)]
    public int SimpleQuery() => Exchange(_simple.Client, _simple.Server);

    private int Exchange(byte[] client, byte[] server) => Exchange(new ReadOnlySequence<byte>(client), new ReadOnlySequence<byte>(server));

    private int Exchange(ReadOnlySequence<byte> client, ReadOnlySequence<byte> server) =>
        Relay(ref _frontend, client) + Relay(ref _backend, server);

    private int Relay<THandler>(ref THandler handler, ReadOnlySequence<byte> buffer)
        where THandler : struct, IRelayHandler => RelayStep.Run(ref handler, buffer, _pipe!);

    private static ReadOnlySequence<byte> Repeat(params byte[][] frames) => new(PgWire.Repeat(Rounds, frames));
}

/// <summary>
/// The realistic policy the relay benchmarks decide with (the same shape as bench/pg.sh's gatehouse+policy): global
/// deny rules, a role with a class allow-list, shape rules and object rules, so every statement is lexed,
/// classified, its objects extracted and matched.
/// </summary>
internal static class BenchPolicy
{
    public const string Identity = "bench";
    public const string Connection = "demo";

    public static PolicyModel Model()
    {
        static PolicyValue V(string text) => new(text);
        static IReadOnlyList<PolicyValue> L(params string[] items) => [.. items.Select(V)];
        var at = new PolicyPosition("bench", 0, 0);
        return new PolicyModel("bench", at)
        {
            Rules =
            [
                new PolicyRuleModel(V("no-file-access"), V("deny"), at) { Classes = L("file_access") },
                new PolicyRuleModel(V("no-copy-program"), V("deny"), at) { Copy = L("program", "file") },
            ],
            Roles =
            [
                new PolicyRoleModel(V("app"), L("read", "write", "copy", "transaction", "session"))
                {
                    Rules =
                    [
                        new PolicyRuleModel(V("no-unbounded-writes"), V("deny"), at) { Shapes = L("delete_without_where", "update_without_where") },
                        new PolicyRuleModel(V("payments-need-approval"), V("require_approval"), at) { Classes = L("write"), Tables = L("billing.*", "public.payments") },
                        new PolicyRuleModel(V("no-dblink"), V("deny"), at) { Functions = L("dblink*", "lo_*") },
                    ],
                },
            ],
            Bindings = [new PolicyBindingModel(V("app"), at) { Identities = L(Identity), Connections = L(Connection) }],
        };
    }
}
