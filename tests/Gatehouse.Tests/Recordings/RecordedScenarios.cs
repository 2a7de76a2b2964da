using Gatehouse.Engine.Recording;
using Gatehouse.Tests.Support;
using static Gatehouse.Tests.Support.PgMessages;

namespace Gatehouse.Tests.Recordings;

/// <summary>Recorded PostgreSQL sessions the tests read back, written record by record as the relay writes them.</summary>
internal static class RecordedScenarios
{
    /// <summary>
    /// A session of alice on orders, 30 s long: a masked SELECT, a refused two-statement write, a held and approved
    /// extended-protocol UPDATE, a syntax error in a Parse, a held and rejected DROP, a COPY out, a two-statement
    /// SELECT, a notice, and the client's Terminate. <paramref name="chunk"/> cuts the server stream into records of
    /// that many bytes (0: one record per reply).
    /// </summary>
    public static async Task<string> FullSessionAsync(string directory, RecordingKey key, string sessionId = "sess-full-0001", int chunk = 0,
        bool metaAfterChunk = false)
    {
        await using var r = SessionRecorder.Start(directory, key, sessionId);
        void Server(params byte[][] messages)
        {
            if (chunk > 0)
            {
                r.ServerChunked(chunk, messages);
            }
            else
            {
                r.Server(messages);
            }
        }

        r.At(0.010);
        Server(Backend.Startup());

        // 0: a SELECT whose email column is masked; the ResultMeta is written at its CommandComplete.
        r.At(1.000);
        r.Query("SELECT id, email FROM customers WHERE id < 3");
        r.Decision(RecordedDecision.Allowed);
        r.At(1.020);
        byte[][] select = [RowDescription("id", "email"), DataRow("1", "a***@example.com"), DataRow("2", null), CommandComplete("SELECT 2"), Backend.Ready()];
        if (metaAfterChunk)
        {
            Server(select);
            r.ResultMeta("SELECT 2", 1);
        }
        else
        {
            r.ResultMeta("SELECT 2", 1);
            Server(select);
        }

        // 1: refused by policy; the gateway answers in the server's place.
        r.At(2.000);
        r.Query("UPDATE orders SET status = 'x'; DELETE FROM audit.log");
        r.Decision(RecordedDecision.Denied, rule: "no-unbounded-writes", reason: "writes without WHERE are refused");
        Server(Backend.Error("42501", "statement refused by rule no-unbounded-writes"), Backend.Ready());

        // 2: Parse (allowed: it runs nothing), Bind held, approved, run.
        r.At(3.000);
        r.Parse("s1", "UPDATE public.\"Orders\" SET status = $1 WHERE id = $2");
        r.Decision(RecordedDecision.Allowed);
        r.At(3.001);
        Server(Backend.ParseComplete());
        r.At(3.002);
        r.Bind("", "s1", "shipped", "42");
        r.Decision(RecordedDecision.Held, rule: "prod-writes", ticket: "ap_7");
        r.At(7.500);
        r.Decision(RecordedDecision.Approved, approver: "bob");
        r.Decision(RecordedDecision.Allowed);
        r.Client(Describe('P', ""), Execute("", 0), Sync());
        r.At(7.510);
        Server(Backend.BindComplete(), Backend.NoData(), CommandComplete("UPDATE 1"), Backend.Ready());

        // 3: a Parse the server refuses: the Bind after it is skipped until Sync.
        r.At(8.000);
        r.Parse("", "SELEC 1");
        r.Decision(RecordedDecision.Allowed);
        r.Bind("", "", null, new byte[] { 0, 0, 0, 7 });
        r.Decision(RecordedDecision.Allowed);
        r.Client(Execute("", 0), Sync());
        r.At(8.004);
        Server(Backend.Error("42601", "syntax error at or near \"SELEC\""), Backend.Ready());

        // 4: held, rejected, refused.
        r.At(9.000);
        r.Query("DROP TABLE customers");
        r.Decision(RecordedDecision.Held, rule: "ddl-needs-approval", ticket: "ap_8");
        r.At(20.000);
        r.Decision(RecordedDecision.Rejected, approver: "carol", reason: "not during business hours");
        r.Decision(RecordedDecision.Denied, rule: "ddl-needs-approval");
        Server(Backend.Error("42501", "approval request ap_8 was rejected by carol"), Backend.Ready());

        // 5: COPY out.
        r.At(21.000);
        r.Query("COPY customers TO STDOUT");
        r.Decision(RecordedDecision.Allowed);
        r.At(21.050);
        Server(CopyOutResponse(2), CopyData("1\ta***@example.com\n"), CopyData("2\t\\N\n"), CopyData("3\tc***@example.com\n"), Backend.CopyDone(),
            CommandComplete("COPY 3"), Backend.Ready());

        // 6: two statements in one Query, and a notice with it.
        r.At(22.000);
        r.Query("SELECT 1; SELECT 2");
        r.Decision(RecordedDecision.Allowed);
        r.At(22.001);
        Server(RowDescription("?column?"), DataRow("1"), CommandComplete("SELECT 1"), Backend.Notice("01000", "second statement follows"),
            RowDescription("?column?"), DataRow("2"), CommandComplete("SELECT 1"), Backend.Ready());

        r.At(30.000);
        r.Client(Terminate());
        r.End("ClientTerminated", "client", null, 1234, 5678, 1);
        return await r.CloseAsync();
    }

    /// <summary>A short session: one query per item, allowed or as the decision says, with a one-row result.</summary>
    public static async Task<string> ShortSessionAsync(string directory, RecordingKey key, string sessionId, string identity, string connection,
        DateTimeOffset start, params (string Sql, RecordedDecision Decision)[] statements)
    {
        await using var r = SessionRecorder.Start(directory, key, sessionId, identity, connection, "analyst", start);
        r.At(0.001);
        r.Server(Backend.Startup());
        double t = 1;
        foreach (var (sql, decision) in statements)
        {
            r.At(t);
            r.Query(sql);
            if (decision == RecordedDecision.Held)
            {
                r.Decision(RecordedDecision.Held, rule: "hold-all", ticket: "ap_" + sessionId);
                r.At(t += 1);
                r.Decision(RecordedDecision.Approved, approver: "bob");
                r.Decision(RecordedDecision.Allowed);
            }
            else
            {
                r.Decision(decision, rule: decision == RecordedDecision.Denied ? "no-writes" : null);
            }

            r.At(t += 0.5);
            r.Server(decision == RecordedDecision.Denied
                ? [Backend.Error("42501", "refused by rule no-writes"), Backend.Ready()]
                : [RowDescription("n"), DataRow("1"), CommandComplete("SELECT 1"), Backend.Ready()]);
            t += 1;
        }

        r.At(t);
        r.End("ClientDisconnected", "client", "connection reset", 100, 200, 0);
        return await r.CloseAsync();
    }

    /// <summary>A long session (many blocks of 4 KiB) for tampering: <paramref name="queries"/> queries with 5 rows each.</summary>
    public static async Task<string> LongSessionAsync(string directory, RecordingKey key, string sessionId, int queries = 120)
    {
        await using var r = SessionRecorder.Start(directory, key, sessionId, blockSize: 4096);
        r.At(0.001);
        r.Server(Backend.Startup());
        for (int i = 0; i < queries; i++)
        {
            r.At(1 + i);
            r.Query($"SELECT id, name FROM items WHERE batch = {i}");
            r.Decision(RecordedDecision.Allowed);
            r.At(1.5 + i);
            r.Server([RowDescription("id", "name"), .. Enumerable.Range(0, 5).Select(j => DataRow($"{i * 5 + j}", $"item number {i * 5 + j} of batch {i}")),
                CommandComplete("SELECT 5"), Backend.Ready()]);
        }

        r.At(queries + 1);
        r.End("ClientTerminated", "client", null, 1, 2, 0);
        return await r.CloseAsync();
    }
}
