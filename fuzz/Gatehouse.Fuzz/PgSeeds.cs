using static Gatehouse.Fuzz.PgMessages;

namespace Gatehouse.Fuzz;

/// <summary>
/// The seed corpus: valid traffic of the kinds real clients and servers send (psql, libpq, Npgsql, pgbench).
/// <c>Gatehouse.Fuzz write-seeds fuzz/corpus</c> writes it to <c>fuzz/corpus/&lt;target&gt;/&lt;name&gt;.bin</c>; the
/// files are checked in, so edit this and regenerate rather than editing the files.
/// </summary>
public static class PgSeeds
{
    private const string PgbenchSelect = "SELECT abalance FROM pgbench_accounts WHERE aid = $1;";

    public static IEnumerable<(string Target, string Name, byte[] Data)> All()
    {
        foreach (var (name, data) in Frontend())
        {
            yield return (nameof(FuzzTargets.PgFrontendMessages), name, data);
        }

        foreach (var (name, data) in Backend())
        {
            yield return (nameof(FuzzTargets.PgBackendMessages), name, data);
        }

        foreach (var (name, data) in Startup())
        {
            yield return (nameof(FuzzTargets.PgStartupPacket), name, data);
        }

        foreach (var (name, data) in Relay())
        {
            yield return (nameof(FuzzTargets.PgRelay), name, data);
        }

        foreach (var (name, data) in Sql())
        {
            yield return (nameof(FuzzTargets.SqlText), name, data);
        }

        foreach (var (name, data) in Gate())
        {
            yield return (nameof(FuzzTargets.PgPolicyGate), name, data);
        }

        foreach (var (name, data) in DetectorSeeds.All())
        {
            yield return (nameof(FuzzTargets.MaskingDetectors), name, data);
        }
    }

    private static IEnumerable<(string, byte[])> Frontend()
    {
        yield return ("simple-query", Query("SELECT abalance FROM pgbench_accounts WHERE aid = 12345;"));
        yield return ("extended-unnamed", Concat(
            Parse("", PgbenchSelect, 23),
            Bind("", "", [0], [Text("12345")], []),
            Describe('P', ""),
            Execute("", 0),
            Sync()));
        yield return ("pgbench-prepared", Concat(
            Parse("P0_1", PgbenchSelect, 23),
            Describe('S', "P0_1"),
            Sync(),
            Bind("", "P0_1", [1], [Int32(12345)], [1]),
            Execute("", 0),
            Sync(),
            Bind("", "P0_1", [1], [Int32(777)], [1]),
            Execute("", 0),
            Sync()));
        yield return ("bind-mixed", Concat(
            Bind("portal", "stmt", [0, 1], [Text("x"), null, Int32(-5)], [0, 1, 0]),
            Execute("portal", 10),
            Flush(),
            Close('P', "portal"),
            Close('S', "stmt"),
            Sync()));
        yield return ("copy-in", Concat(
            Query("COPY t (a, b) FROM STDIN"),
            CopyData("1\tone\n2\ttwo\n"),
            CopyData("3\tthree\n"),
            CopyDone()));
        yield return ("copy-fail", Concat(Query("COPY t FROM STDIN"), CopyData("1\n"), CopyFail("client gave up")));
        yield return ("function-call", Concat(FunctionCall(1598, [1], [Int32(42)], 1), Sync()));
        yield return ("terminate", Terminate());
    }

    private static IEnumerable<(string, byte[])> Backend()
    {
        yield return ("select-rows", Concat(
            RowDescription(
                Field("aid", 16390, 1, 23, 4, -1, 0),
                Field("bid", 16390, 2, 23, 4, -1, 0),
                Field("abalance", 16390, 3, 23, 4, -1, 0),
                Field("filler", 16390, 4, 1042, -1, 88, 0),
                Field("note", 0, 0, 25, -1, -1, 1)),
            DataRow(Text("12345"), Text("1"), Text("-2870"), Text("                    "), null),
            DataRow(Text("2"), Text("1"), Text("0"), Text(""), Text("two")),
            CommandComplete("SELECT 2"),
            ReadyForQuery('I')));
        yield return ("extended-reply", Concat(
            ParseComplete(),
            ParameterDescription(23),
            RowDescription(Field("abalance", 16390, 3, 23, 4, -1, 1)),
            ReadyForQuery('I'),
            BindComplete(),
            DataRow(Int32(-2870)),
            CommandComplete("SELECT 1"),
            ReadyForQuery('T'),
            NoData(),
            PortalSuspended(),
            EmptyQueryResponse(),
            CloseComplete(),
            ReadyForQuery('I')));
        yield return ("error-notice", Concat(
            Fields('N', ('S', "NOTICE"), ('V', "NOTICE"), ('C', "00000"), ('M', "table \"t\" does not exist, skipping")),
            Fields('E', ('S', "ERROR"), ('V', "ERROR"), ('C', "42P01"), ('M', "relation \"nope\" does not exist"), ('P', "15"),
                ('F', "parse_relation.c"), ('L', "1449"), ('R', "parserOpenTable")),
            ReadyForQuery('E')));
        yield return ("fatal", Fields('E', ('S', "FATAL"), ('V', "FATAL"), ('C', "57P01"), ('M', "terminating connection due to administrator command")));
        yield return ("async", Concat(
            ParameterStatus("standard_conforming_strings", "on"),
            ParameterStatus("application_name", "psql"),
            Notification(4242, "jobs", "{\"id\": 1}"),
            FunctionCallResponse(Int32(7)),
            FunctionCallResponse(null),
            ReadyForQuery('I')));
        yield return ("copy", Concat(
            CopyResponse('G', 0, 0, 0),
            CommandComplete("COPY 3"),
            ReadyForQuery('I'),
            CopyResponse('H', 1, 1, 1),
            Message('d', Text("PGCOPY\n\xff\r\n\0")),
            Message('c'),
            CommandComplete("COPY 1"),
            ReadyForQuery('I')));
    }

    private static IEnumerable<(string, byte[])> Startup()
    {
        yield return ("psql", PgMessages.Startup(("user", "alice"), ("database", "app"), ("application_name", "psql"), ("client_encoding", "UTF8")));
        yield return ("npgsql", PgMessages.Startup(("user", "svc"), ("database", "orders"), ("client_encoding", "UTF8"), ("DateStyle", "ISO, MDY"),
            ("TimeZone", "Europe/Paris"), ("search_path", "app, public"), ("extra_float_digits", "3")));
        yield return ("user-only", PgMessages.Startup(("user", "bob")));
        yield return ("protocol-option", PgMessages.Startup(("user", "carol"), ("_pq_.test_option", "1")));
        yield return ("replication-off", PgMessages.Startup(("user", "dave"), ("database", ""), ("replication", "false")));
        yield return ("refused-options", PgMessages.Startup(("user", "eve"), ("options", "-c role=admin")));
        yield return ("utf8", PgMessages.Startup(("user", "zoë"), ("database", "données"), ("application_name", "日本語")));
    }

    /// <summary>PgRelay input: a control byte (segmentation of the buffer), then (direction byte, frame) records.</summary>
    private static IEnumerable<(string, byte[])> Relay()
    {
        yield return ("select", Records(0,
            Client(Query("SELECT aid, abalance FROM pgbench_accounts LIMIT 2")),
            Server(RowDescription(Field("aid", 16390, 1, 23, 4, -1, 0), Field("abalance", 16390, 3, 23, 4, -1, 0))),
            Server(DataRow(Text("1"), Text("0"))),
            Server(DataRow(Text("2"), null)),
            Server(CommandComplete("SELECT 2")),
            Server(ReadyForQuery('I'))));
        yield return ("pgbench-prepared", Records(1,
            Client(Parse("P0_1", PgbenchSelect, 23)),
            Client(Describe('S', "P0_1")),
            Client(Sync()),
            Server(ParseComplete()),
            Server(ParameterDescription(23)),
            Server(RowDescription(Field("abalance", 16390, 3, 23, 4, -1, 0))),
            Server(ReadyForQuery('I')),
            Client(Bind("", "P0_1", [1], [Int32(12345)], [1])),
            Client(Execute("", 0)),
            Client(Sync()),
            Server(BindComplete()),
            Server(DataRow(Int32(-2870))),
            Server(CommandComplete("SELECT 1")),
            Server(ReadyForQuery('I'))));
        yield return ("copy-in", Records(2,
            Client(Query("COPY t FROM STDIN")),
            Server(CopyResponse('G', 0, 0)),
            Client(CopyData("1\n2\n")),
            Client(Sync()),
            Client(CopyDone()),
            Server(CommandComplete("COPY 2")),
            Server(ReadyForQuery('I')),
            Client(CopyData("late\n")),
            Client(CopyDone())));
        yield return ("transaction-error", Records(3,
            Client(Query("BEGIN; SELECT 1/0;")),
            Server(CommandComplete("BEGIN")),
            Server(ReadyForQuery('T')),
            Server(Fields('E', ('S', "ERROR"), ('V', "ERROR"), ('C', "22012"), ('M', "division by zero"))),
            Server(ReadyForQuery('E')),
            Server(ParameterStatus("standard_conforming_strings", "off")),
            Client(Query("ROLLBACK")),
            Server(CommandComplete("ROLLBACK")),
            Server(ReadyForQuery('I'))));
        yield return ("terminate", Records(4, Client(Query("SELECT 1")), Server(ReadyForQuery('I')), Client(Terminate())));
        yield return ("server-fatal", Records(5,
            Server(Fields('E', ('S', "FATAL"), ('V', "FATAL"), ('C', "57P01"), ('M', "terminating connection due to administrator command")))));
    }

    /// <summary>
    /// SqlText input: a settings byte (0: standard_conforming_strings on, 1: off), then the text. Statements of
    /// every class, the lexical forms the classifier must see through, and (error-*) texts the lexer rejects.
    /// </summary>
    private static IEnumerable<(string, byte[])> Sql()
    {
        yield return ("select-where", Sql(0, "SELECT a, b FROM public.t WHERE id = $1 AND name = 'x' ORDER BY 1 LIMIT 10;"));
        yield return ("transaction", Sql(0, "BEGIN; UPDATE t SET a = 1 WHERE id = 2; DELETE FROM t; COMMIT;"));
        yield return ("cte-delete", Sql(0, "WITH d AS (DELETE FROM t WHERE x < 0 RETURNING *) SELECT count(*) FROM d JOIN u USING (id)"));
        yield return ("comments", Sql(0, "/* outer /* nested */ still */ SELECT 1 -- trailing\n; -- only a comment\n/**/;"));
        yield return ("dollar-quotes", Sql(0, "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $body$ SELECT 1; $body$; DO $$ BEGIN PERFORM 1; END $$;"));
        yield return ("begin-atomic", Sql(0,
            "CREATE OR REPLACE FUNCTION g(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT x + 1; SELECT CASE WHEN x > 0 THEN 1 END; END; SELECT g(1)"));
        yield return ("string-forms", Sql(0, "SELECT E'it\\'s', U&'d\\0061t' UESCAPE '\\', B'101', X'1F', N'n', 'a'\n  'b', U&\"d!0061t\" FROM t"));
        yield return ("scs-off-backslash", Sql(1, "SELECT 'a\\'; DROP TABLE t; --'; SELECT 'a\\''; DROP TABLE t; --'"));
        yield return ("scs-on-backslash", Sql(0, "SELECT 'a\\'; DROP TABLE t; --'; SELECT 'a\\''; DROP TABLE t; --'"));
        yield return ("copy", Sql(0, "COPY t (a, b) FROM STDIN WITH (FORMAT csv); COPY (SELECT 1) TO '/tmp/x'; COPY t TO PROGRAM 'gzip > /tmp/t.gz'"));
        yield return ("explain", Sql(0, "EXPLAIN ANALYZE DELETE FROM t WHERE id = 1; EXPLAIN (ANALYZE, VERBOSE) SELECT 1; EXPLAIN UPDATE t SET a = 1"));
        yield return ("privilege", Sql(0,
            "SET ROLE admin; SELECT set_config('role', 'admin', false); GRANT ALL ON t TO bob; RESET session_authorization; ALTER TABLE t OWNER TO eve"));
        yield return ("functions", Sql(0,
            "SELECT pg_read_file('/etc/passwd'), lo_import('/tmp/x'), dblink('db', 'DELETE FROM t'), query_to_xml('select 1', true, true, ''), s.f(1)"));
        yield return ("utf8", Sql(0, "SELECT \"Größe\", '日本語' FROM données.tëst WHERE ü = 1"));
        yield return ("numbers-operators", Sql(0, "SELECT 0x1F, 1_000.5e-3, .5, a::text, b->>'k', c @> '{1}', -1, 2-- c\n+3, $1, arr[1:2] FROM t"));
        yield return ("select-into", Sql(0, "SELECT * INTO new_t FROM t; TABLE t; VALUES (1), (2); SHOW search_path; FETCH 10 FROM c"));
        yield return ("admin", Sql(0, "VACUUM ANALYZE t; CHECKPOINT; ALTER SYSTEM SET work_mem = '1GB'; CREATE DATABASE x; SELECT pg_terminate_backend(1)"));
        yield return ("ddl-lock", Sql(0, "TRUNCATE t, u; LOCK TABLE t IN ACCESS EXCLUSIVE MODE; PREPARE p AS SELECT 1; EXECUTE p; DROP TABLE IF EXISTS t CASCADE"));
        yield return ("secrets", Sql(0, "INSERT INTO secret_keys VALUES (1); UPDATE billing.invoices SET paid = true WHERE id = 1; MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN DELETE"));
        yield return ("error-unterminated-string", Sql(0, "SELECT 1; SELECT 'never closed"));
        yield return ("error-unterminated-comment", Sql(0, "DELETE FROM t WHERE id = 1; SELECT 1 /* never /* closed */"));
        yield return ("error-trailing-junk", Sql(0, "SELECT 123abc FROM t"));
    }

    private static byte[] Sql(byte settings, string text) => Concat([settings], Text(text));

    // PgPolicyGate ops (see PgGateConversation). Statement names: 0 "", 1 "s1", 2 "s2"; portals: 0 "", 1 "p1".
    private const int Select1 = 0, SelectRows = 1, DeleteAll = 2, UpdateWhere = 3, DropTable = 4, SyntaxError = 5, HidesDrop = 6,
        RevealsDrop = 7, ScsOff = 8, ScsOn = 9, FailsAtPlan = 10, FailsAtRun = 11, EmptyText = 12;

    private static byte[] P(int statement, int text) => [(byte)(statement << 4), (byte)text];

    private static byte[] B(int portal, int statement) => [(byte)((((statement << 1) | portal) << 4) | 1)];

    private static byte[] DescribeS(int statement) => [(byte)((statement << 1 << 4) | 2)];

    private static byte[] DescribeP(int portal) => [(byte)((((portal << 1) | 1) << 4) | 2)];

    private static byte[] E(int portal, int maxRows = 0) => [(byte)((((maxRows << 1) | portal) << 4) | 3)];

    private static byte[] CloseS(int statement) => [(byte)((statement << 1 << 4) | 4)];

    private static byte[] CloseP(int portal) => [(byte)((((portal << 1) | 1) << 4) | 4)];

    private static readonly byte[] S = [5];
    private static readonly byte[] H = [6];

    private static byte[] Q(int text) => [7, (byte)text];

    private static readonly byte[] F = [8];
    private static readonly byte[] Reload = [9];

    /// <summary>The server answers up to <paramref name="count"/> (1 to 5) messages.</summary>
    private static byte[] A(int count) => [(byte)(((count - 1) << 4) | 10)];

    private static readonly byte[] AnswerAll = [15];

    /// <summary>Decide the held (or last) approval request: approve, deny, or the sender tries to (refused).</summary>
    private static readonly byte[] Approve = [0x0B], Deny = [0x1B], DenyWithReason = [0x5B], SelfApprove = [0x2B], SelfDeny = [0x3B];

    private static readonly byte[] Cancel = [0x0C];
    private static readonly byte[] ExpireNow = [0x0D], ExpireLate = [0x1D];
    private static readonly byte[] Wake = [0x0E];

    /// <summary>
    /// PgPolicyGate input: a control byte (bits 0-1 and 2-3: segment layouts, bit 4: strict policy first, bit 5:
    /// standard_conforming_strings off), then ops. A seed has a refused message iff it is named denied-*.
    /// </summary>
    private static IEnumerable<(string, byte[])> Gate()
    {
        yield return ("extended-select", Concat([0x00], P(0, Select1), B(0, 0), DescribeP(0), E(0), S, AnswerAll));
        yield return ("denied-after-close", Concat([0x01],
            P(1, SelectRows), DescribeS(1), S, AnswerAll,
            B(0, 1), E(0), S, AnswerAll,
            B(1, 1), E(1, 1), E(1, 1), E(1, 1), S, AnswerAll,
            CloseS(1), CloseP(1), S, AnswerAll,
            B(0, 1), E(0), S, AnswerAll));
        yield return ("lagging-server", Concat([0x06],
            P(1, Select1), A(1), B(0, 1), A(1), DescribeP(0), E(0), A(2), S, P(2, UpdateWhere), A(3), B(1, 2), E(1), S, A(5), AnswerAll));
        yield return ("denied-update-reload-twice", Concat([0x00],
            P(1, UpdateWhere), S, AnswerAll, B(0, 1), E(0), S, AnswerAll, Reload, B(0, 1), E(0), S, AnswerAll, Reload, B(0, 1), E(0), S, AnswerAll));
        yield return ("denied-parse", Concat([0x00], P(0, DeleteAll), B(0, 0), E(0), S, AnswerAll, P(0, Select1), B(0, 0), E(0), S, AnswerAll));
        yield return ("denied-query", Concat([0x04], Q(DropTable), AnswerAll, Q(Select1), Q(DeleteAll), A(3), Q(EmptyText), AnswerAll));
        yield return ("denied-mid-pipeline", Concat([0x09],
            P(1, Select1), B(0, 1), E(0), S, P(2, DropTable), B(0, 2), E(0), S, P(0, SelectRows), B(0, 0), E(0), S, AnswerAll));
        yield return ("denied-bind-after-reload", Concat([0x00],
            P(1, UpdateWhere), P(2, Select1), S, AnswerAll, Reload, B(0, 1), E(0), B(1, 2), E(1), S, AnswerAll, Reload, B(0, 1), E(0), S, AnswerAll));
        yield return ("denied-function-call", Concat([0x10], F, AnswerAll, Reload, F, AnswerAll, F, Q(Select1), AnswerAll));
        yield return ("denied-scs-off", Concat([0x00],
            Q(ScsOff), AnswerAll, P(0, HidesDrop), B(0, 0), E(0), S, AnswerAll, Q(RevealsDrop), AnswerAll, Q(ScsOn), AnswerAll, Q(HidesDrop), AnswerAll));
        yield return ("denied-scs-pipelined", Concat([0x02], Q(ScsOff), P(0, HidesDrop), B(0, 0), E(0), S, Q(RevealsDrop), AnswerAll, Q(ScsOn), A(1), Q(Select1), AnswerAll));
        yield return ("scs-rolled-back", Concat([0x20],
            P(1, ScsOn), B(0, 1), E(0), P(0, FailsAtPlan), B(0, 0), S, AnswerAll, Q(HidesDrop), AnswerAll));
        yield return ("denied-errors", Concat([0x05],
            P(0, SyntaxError), B(0, 0), E(0), S,
            P(1, FailsAtPlan), B(0, 1), E(0), S,
            P(0, FailsAtRun), B(0, 0), E(0, 1), E(0, 1), S, AnswerAll,
            B(1, 2), DescribeS(2), DescribeP(1), E(1), S, AnswerAll));
        yield return ("parse-existing", Concat([0x03], P(1, Select1), S, AnswerAll, P(1, SelectRows), B(0, 1), E(0), S, AnswerAll, CloseS(1), P(1, SelectRows), S, AnswerAll));
        yield return ("empty-and-flush", Concat([0x0A], P(0, EmptyText), B(0, 0), DescribeS(0), DescribeP(0), E(0), H, AnswerAll, S, Q(EmptyText), AnswerAll));
        // Control bit 6: the approval policy (UPDATE of t requires approval); bit 7: a statement held at the end is approved.
        yield return ("approval-query-approved", Concat([0x40],
            Q(UpdateWhere), AnswerAll, SelfApprove, Approve, Wake, AnswerAll, Q(UpdateWhere), Q(Select1), Approve, Q(SelectRows), AnswerAll));
        yield return ("approval-bind-approved", Concat([0x41],
            P(1, UpdateWhere), B(0, 1), DescribeP(0), E(0), S, A(1), Wake, SelfDeny, Approve, A(2), Wake, AnswerAll,
            B(1, 1), E(1), S, Approve, AnswerAll));
        yield return ("approval-held-at-end", Concat([0xC6], P(0, Select1), B(0, 0), E(0), S, Q(UpdateWhere), Q(Select1), A(3)));
        yield return ("approval-lenient-reload", Concat([0x00], Q(UpdateWhere), AnswerAll, [0x89], Q(UpdateWhere), A(1), Approve, Wake, AnswerAll, [0x89], Q(UpdateWhere), AnswerAll));
        yield return ("denied-approval-denied", Concat([0x40],
            Q(UpdateWhere), Q(Select1), Deny, Wake, AnswerAll, Approve,
            P(0, UpdateWhere), B(0, 0), E(0), S, DenyWithReason, Wake, AnswerAll, Q(Select1), AnswerAll));
        yield return ("denied-approval-expired", Concat([0x48],
            Q(UpdateWhere), ExpireNow, Q(Select1), ExpireLate, Approve, Wake, AnswerAll,
            P(2, UpdateWhere), S, AnswerAll, B(1, 2), E(1), S, ExpireLate, Wake, AnswerAll));
        yield return ("denied-approval-cancelled", Concat([0x42],
            Q(UpdateWhere), Cancel, Cancel, Wake, AnswerAll, Cancel,
            P(0, UpdateWhere), B(0, 0), E(0), S, A(1), Cancel, Q(Select1), AnswerAll, Q(UpdateWhere), Approve, Wake, AnswerAll));
        yield return ("denied-approval-held-at-end", Concat([0x40], Q(UpdateWhere), Q(Select1), A(2)));
        yield return ("pipelined-syncs", Concat([0x0F],
            P(0, Select1), B(0, 0), E(0), S, B(0, 0), E(0), S, Q(SelectRows), B(0, 0), E(0), S, A(4), A(4), A(4), AnswerAll));
    }

    private static byte[] Records(byte control, params byte[][] records) => Concat([[control], .. records]);

    private static byte[] Client(byte[] frame) => Concat([0], frame);

    private static byte[] Server(byte[] frame) => Concat([1], frame);
}
