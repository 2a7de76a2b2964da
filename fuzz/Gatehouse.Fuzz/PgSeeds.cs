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

    private static byte[] Records(byte control, params byte[][] records) => Concat([[control], .. records]);

    private static byte[] Client(byte[] frame) => Concat([0], frame);

    private static byte[] Server(byte[] frame) => Concat([1], frame);
}
