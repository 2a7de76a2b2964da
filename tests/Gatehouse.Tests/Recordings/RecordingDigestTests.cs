using Gatehouse.Engine.Recording;
using Gatehouse.Host.Recordings;
using Gatehouse.Tests.Recording;
using Gatehouse.Tests.Support;
using static Gatehouse.Tests.Support.PgMessages;

namespace Gatehouse.Tests.Recordings;

/// <summary>
/// The digest of a recorded PostgreSQL session: statements with their final decisions, held and approved ones,
/// results followed from the server stream (simple and extended protocol), masked values, classes and tables; and
/// what is left of a damaged recording.
/// </summary>
public sealed class RecordingDigestTests : IDisposable
{
    private readonly RecordingFixture _fixture = new();

    public void Dispose() => _fixture.Dispose();

    private static RecordingKey Key => RecordingFixture.Key;

    [Fact]
    public async Task A_full_session_is_summed_up_statement_by_statement()
    {
        string path = await RecordedScenarios.FullSessionAsync(_fixture.Directory, Key);
        var session = await RecordingDigest.ReadAsync(path, Key);

        Assert.Equal(path, session.Path);
        Assert.Equal("sess-full-0001", session.SessionId);
        Assert.Equal("postgresql", session.Protocol);
        Assert.Equal("alice", session.Identity);
        Assert.Equal("orders", session.Connection);
        Assert.Equal("analyst", session.Role);
        Assert.Equal("192.0.2.7:51234", session.ClientAddress);
        Assert.Equal(SessionRecorder.DefaultStart, session.Start);
        Assert.Equal(TimeSpan.FromSeconds(30), session.Duration);
        Assert.Equal(RecordingIntegrity.Intact, session.Integrity);
        Assert.True(session.SignaturesChecked);
        Assert.Empty(session.Problems);
        Assert.Empty(session.DecodeProblems);
        Assert.Equal("ClientTerminated", session.EndReason);
        Assert.Equal("client", session.EndSide);
        Assert.Null(session.EndDetail);
        Assert.Equal(1, session.MaskedValues);
        Assert.Equal("gh_orders", session.Attributes["upstream_user"]);
        Assert.Equal(RecordingFixture.Key.Id, session.KeyId);

        var s = session.Statements;
        Assert.Equal(7, s.Count);
        Assert.Equal(["Q", "Q", "B", "B", "Q", "Q", "Q"], s.Select(x => x.Message.ToString()));
        Assert.Equal(Enumerable.Range(0, 7), s.Select(x => x.Index));
        Assert.Equal([1.0, 2.0, 3.002, 8.0, 9.0, 21.0, 22.0], s.Select(x => x.At.TotalSeconds));
        Assert.Equal(["read", "write", "write", "unknown", "ddl", "read|copy", "read"], s.Select(x => x.Class));
        Assert.Equal(
            [RecordedDecision.Allowed, RecordedDecision.Denied, RecordedDecision.Allowed, RecordedDecision.Allowed, RecordedDecision.Denied, RecordedDecision.Allowed, RecordedDecision.Allowed],
            s.Select(x => x.Outcome));
        Assert.All(s, x => Assert.True(x.Decided));
        Assert.Equal(
            [
                "SELECT 2",
                "ERROR 42501: statement refused by rule no-unbounded-writes",
                "UPDATE 1",
                "skipped: ERROR 42601: syntax error at or near \"SELEC\"",
                "ERROR 42501: approval request ap_8 was rejected by carol",
                "COPY 3",
                "SELECT 1; SELECT 1",
            ],
            s.Select(x => x.Result));
        Assert.Equal(["SELECT 1", "SELECT 1"], s[6].Results);
        Assert.Equal([1L, 0, 0, 0, 0, 0, 0], s.Select(x => x.MaskedValues));

        Assert.Equal("SELECT id, email FROM customers WHERE id < 3", s[0].Text);
        Assert.Equal(["customers"], s[0].Tables);

        Assert.Equal("no-unbounded-writes", s[1].Rule);
        Assert.Equal("writes without WHERE are refused", s[1].Reason);
        Assert.False(s[1].WasHeld);
        Assert.Equal(["orders", "audit.log"], s[1].Tables);

        // The Bind's text is its Parse's.
        Assert.Equal("UPDATE public.\"Orders\" SET status = $1 WHERE id = $2", s[2].Text);
        Assert.Equal(["shipped", "42"], s[2].Parameters);
        Assert.Equal("s1", s[2].StatementName);
        Assert.Equal("", s[2].Portal);
        Assert.True(s[2].WasHeld);
        Assert.Equal("prod-writes", s[2].Rule);
        Assert.Equal("ap_7", s[2].Ticket);
        Assert.Equal("bob", s[2].Approver);
        Assert.Equal(["public.\"Orders\""], s[2].Tables);

        Assert.Equal("SELEC 1", s[3].Text);
        Assert.Equal(["NULL", @"\x00000007"], s[3].Parameters);

        Assert.True(s[4].WasHeld);
        Assert.Equal("ddl-needs-approval", s[4].Rule);
        Assert.Equal("carol", s[4].Approver);
        Assert.Equal("not during business hours", s[4].Reason);
        Assert.Equal("ap_8", s[4].Ticket);

        Assert.Equal(2, session.Denied);
        Assert.Equal(2, session.Held);
        Assert.Equal(["audit.log", "customers", "orders", "public.\"Orders\""], session.Tables);
        Assert.Equal(new Dictionary<string, int> { ["copy"] = 1, ["ddl"] = 1, ["read"] = 3, ["unknown"] = 1, ["write"] = 2 }, session.StatementsByClass);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(13)]
    public async Task Server_records_cut_anywhere_give_the_same_digest(int chunk)
    {
        string whole = await RecordedScenarios.FullSessionAsync(_fixture.Directory, Key, "sess-whole");
        string cut = await RecordedScenarios.FullSessionAsync(_fixture.Directory, Key, $"sess-cut-{chunk}", chunk);
        var expected = await RecordingDigest.ReadAsync(whole, Key);
        var actual = await RecordingDigest.ReadAsync(cut, Key);

        Assert.Empty(actual.DecodeProblems);
        Assert.Equal(expected.Statements.Select(x => (x.Result, x.MaskedValues, x.Outcome)), actual.Statements.Select(x => (x.Result, x.MaskedValues, x.Outcome)));
    }

    [Fact]
    public async Task A_ResultMeta_written_after_its_CommandComplete_is_matched_too()
    {
        string path = await RecordedScenarios.FullSessionAsync(_fixture.Directory, Key, "sess-meta-after", metaAfterChunk: true);
        var session = await RecordingDigest.ReadAsync(path, Key);
        Assert.Equal([1L, 0, 0, 0, 0, 0, 0], session.Statements.Select(x => x.MaskedValues));

        var meta = Assert.Single((await ReadEventsAsync(path)).OfType<ResultMetaEvent>());
        Assert.Equal(0, meta.StatementIndex);
        Assert.Equal("SELECT 2", meta.CommandTag);
        Assert.Equal(1, meta.MaskedValues);
    }

    [Fact]
    public async Task Events_come_in_recording_order_with_the_server_stream_as_messages()
    {
        string path = await RecordedScenarios.FullSessionAsync(_fixture.Directory, Key);
        var events = await ReadEventsAsync(path);

        Assert.Equal(Enumerable.Range(0, events.Count).Select(i => (long)i), events.Select(e => e.Sequence));
        Assert.True(events.Zip(events.Skip(1)).All(p => p.First.TimeMicros <= p.Second.TimeMicros));
        var start = Assert.IsType<SessionStartEvent>(events[0]);
        Assert.Equal("sess-full-0001", start.SessionId);
        Assert.Equal("main", start.Attributes["listener"]);
        Assert.IsType<SessionEndEvent>(events[^1]);

        var server = events.OfType<ServerMessageEvent>().ToList();
        Assert.Equal(5 + 5 + 2 + 1 + 4 + 2 + 2 + 7 + 8, server.Count);
        Assert.All(server.Take(5), e => Assert.Equal(-1, e.StatementIndex));
        Assert.Equal(["ParseComplete", "BindComplete", "NoData", "CommandComplete"],
            server.Where(e => e.StatementIndex == 2 || e.Message is PgSimpleMessage { Code: '1' }).Select(e => e.Message.Name));
        var rows = server.Where(e => e.StatementIndex == 0).Select(e => e.Message).OfType<PgDataRow>().Select(r => string.Join("|", r.Values.Select(v => v ?? "NULL")));
        Assert.Equal(["1|a***@example.com", "2|NULL"], rows);

        // The refused Parse is not a statement; the Parse that failed in the server is shown as one event, unlisted.
        var parses = events.OfType<StatementEvent>().Where(e => e.Message == 'P').ToList();
        Assert.Equal([-1, -1], parses.Select(p => p.StatementIndex));
        var decisions = events.OfType<DecisionEvent>().Select(d => $"{d.StatementIndex}:{d.OutcomeName}");
        Assert.Equal(["0:allowed", "1:denied", "-1:allowed", "2:held", "2:approved", "2:allowed", "-1:allowed", "3:allowed", "4:held", "4:rejected", "4:denied", "5:allowed", "6:allowed"], decisions);
        var execute = events.OfType<ClientMessageEvent>().Where(c => c.Message.Code == 'E').Select(c => c.StatementIndex);
        Assert.Equal([2, 3], execute);
    }

    [Fact]
    public async Task A_refused_Parse_is_listed_as_a_statement()
    {
        await using var r = SessionRecorder.Start(_fixture.Directory, Key, "sess-parse-denied");
        r.At(0.01);
        r.Server(Backend.Startup());
        r.At(1);
        r.Parse("q1", "DELETE FROM orders");
        r.Decision(RecordedDecision.Denied, rule: "no-delete", reason: "deletes are refused");
        r.Bind("", "q1");
        r.Decision(RecordedDecision.Allowed);
        r.Client(Execute("", 0), Sync());
        r.At(1.001);
        r.Server(Backend.Error("42501", "statement refused by rule no-delete"), Backend.Ready());
        r.At(2);
        r.Query("SELECT 1");
        r.Decision(RecordedDecision.Allowed);
        r.Server(RowDescription("x"), DataRow("1"), CommandComplete("SELECT 1"), Backend.Ready());
        string path = await r.CloseAsync();

        var session = await RecordingDigest.ReadAsync(path, Key);
        Assert.Equal(["P DELETE FROM orders Denied ERROR 42501: statement refused by rule no-delete",
                "B DELETE FROM orders Allowed skipped: ERROR 42501: statement refused by rule no-delete",
                "Q SELECT 1 Allowed SELECT 1"],
            session.Statements.Select(x => $"{x.Message} {x.Text} {x.Outcome} {x.Result}"));
        Assert.Equal(1, session.Denied);
        Assert.Equal("no-delete", session.Statements[0].Rule);
        Assert.Null(session.EndReason);
        Assert.Equal([0, 1, 2], (await ReadEventsAsync(path)).OfType<StatementEvent>().Select(e => e.StatementIndex));
    }

    [Fact]
    public async Task Errors_in_the_extended_protocol_skip_to_Sync_even_across_records()
    {
        await using var r = SessionRecorder.Start(_fixture.Directory, Key, "sess-skip");
        r.At(0.01);
        r.Server(Backend.Startup());
        r.At(1);
        r.Parse("", "SELECT 1/0");
        r.Decision(RecordedDecision.Allowed);
        r.Bind("p", "");
        r.Decision(RecordedDecision.Allowed);
        r.Client(Execute("p", 0), Flush());
        r.At(1.1);
        r.Server(Backend.ParseComplete(), Backend.BindComplete(), Backend.Error("22012", "division by zero"));
        // Sent before the client saw the error: skipped by the server until the Sync.
        r.At(1.2);
        r.Parse("", "SELECT 2");
        r.Decision(RecordedDecision.Allowed);
        r.Bind("", "");
        r.Decision(RecordedDecision.Allowed);
        r.Client(Execute("", 0), Sync());
        r.At(1.3);
        r.Server(Backend.Ready('E'));
        r.At(2);
        r.Query("ROLLBACK");
        r.Decision(RecordedDecision.Allowed);
        r.Server(CommandComplete("ROLLBACK"), Backend.Ready());
        string path = await r.CloseAsync();

        var session = await RecordingDigest.ReadAsync(path, Key);
        Assert.Equal(["ERROR 22012: division by zero", "skipped: ERROR 22012: division by zero", "ROLLBACK"], session.Statements.Select(x => x.Result));
        Assert.Equal(["read", "read", "transaction"], session.Statements.Select(x => x.Class));
    }

    [Fact]
    public async Task A_statement_held_when_the_recording_ends_is_not_decided()
    {
        await using var r = SessionRecorder.Start(_fixture.Directory, Key, "sess-held-end");
        r.At(1);
        r.Query("TRUNCATE orders");
        r.Decision(RecordedDecision.Held, rule: "truncate", ticket: "ap_9");
        string path = await r.CloseAsync();

        var statement = Assert.Single((await RecordingDigest.ReadAsync(path, Key)).Statements);
        Assert.False(statement.Decided);
        Assert.Equal(RecordedDecision.Held, statement.Outcome);
        Assert.True(statement.WasHeld);
        Assert.Null(statement.Result);
    }

    [Fact]
    public async Task A_tampered_recording_gives_what_verified_and_says_what_is_wrong()
    {
        string path = await RecordedScenarios.LongSessionAsync(_fixture.Directory, Key, "sess-tamper");
        var verification = await RecordingReader.VerifyAsync(path, Key);
        Assert.Equal(RecordingIntegrity.Intact, verification.Integrity);
        Assert.True(verification.Blocks.Count > 6, $"{verification.Blocks.Count} blocks");
        var intact = await RecordingDigest.ReadAsync(path, Key);
        Assert.Equal(120, intact.Statements.Count);
        Assert.All(intact.Statements, x => Assert.Equal("SELECT 5", x.Result));

        // One byte of a statement's text changed, and the block compressed again: it decodes, but not to its seal.
        var block = verification.Blocks[3];
        int lost = (await RecordingFixture.ReadAllAsync(path)).Count(e => e.Block == 3 && e.Kind == RecordKind.Statement);
        Assert.True(lost > 0);
        byte[] bytes = await File.ReadAllBytesAsync(path);
        byte[] plain = Lz4Decode(bytes.AsSpan((int)block.FileOffset, block.FileLength));
        var statement = RecordingFixture.Records(plain).First(r => r.Kind == RecordKind.Statement);
        plain[statement.PayloadOffset + statement.PayloadLength - 2] ^= 0x01;
        await File.WriteAllBytesAsync(path, [.. bytes.AsSpan(0, (int)block.FileOffset), .. Lz4Encode(plain), .. bytes.AsSpan((int)(block.FileOffset + block.FileLength))]);

        var session = await RecordingDigest.ReadAsync(path, Key);
        Assert.Equal(RecordingIntegrity.Damaged, session.Integrity);
        Assert.Equal($"block 3 (file offset {block.FileOffset}) does not match its seal: its content was altered", Assert.Single(session.Problems));
        Assert.Equal(120 - lost, session.Statements.Count);
        Assert.Equal("ClientTerminated", session.EndReason);
        Assert.Contains(session.DecodeProblems, p => p.StartsWith("events before block 4 were left out: their block failed verification", StringComparison.Ordinal));

        var events = await ReadEventsAsync(path);
        var gap = Assert.Single(events.OfType<GapEvent>());
        Assert.Equal("events before block 4 were left out: their block failed verification", gap.Detail);
        // After the gap the stream decodes again, and later statements get their results.
        Assert.Equal("SELECT 5", session.Statements[^1].Result);
    }

    [Fact]
    public async Task Garbage_in_the_server_stream_is_a_stream_problem_and_decoding_resumes_at_a_later_record()
    {
        await using var r = SessionRecorder.Start(_fixture.Directory, Key, "sess-garbage");
        r.At(0.01);
        r.Server(Backend.Startup());
        r.At(1);
        r.Query("SELECT 1");
        r.Decision(RecordedDecision.Allowed);
        r.Server([.. RowDescription("a"), 0x00, 0x01, 0x02]);
        r.At(2);
        r.Query("SELECT 2");
        r.Decision(RecordedDecision.Allowed);
        r.Server(RowDescription("b"), DataRow("2"), CommandComplete("SELECT 1"), Backend.Ready());
        string path = await r.CloseAsync();

        var session = await RecordingDigest.ReadAsync(path, Key);
        Assert.Equal(RecordingIntegrity.Intact, session.Integrity);
        Assert.Equal(
            [
                "the server stream does not decode: byte 0x00 at stream offset 106 is not the type of a PostgreSQL backend message: the stream is not in step",
            ],
            session.DecodeProblems.Take(1));
        Assert.Equal([null, "SELECT 1"], session.Statements.Select(x => x.Result));
        var problems = (await ReadEventsAsync(path)).OfType<StreamProblemEvent>().Select(p => p.Detail).ToList();
        Assert.Equal(2, problems.Count);
        Assert.StartsWith("the server stream decodes again from stream offset 109, after 3 bytes that did not", problems[1]);
    }

    [Fact]
    public async Task A_deleted_block_is_a_gap_and_the_rest_still_reads()
    {
        string path = await RecordedScenarios.LongSessionAsync(_fixture.Directory, Key, "sess-deleted");
        var verification = await RecordingReader.VerifyAsync(path, Key);
        var block = verification.Blocks[4];
        int lost = (await RecordingFixture.ReadAllAsync(path)).Count(e => e.Block == 4 && e.Kind == RecordKind.Statement);
        byte[] bytes = await File.ReadAllBytesAsync(path);
        await File.WriteAllBytesAsync(path, [.. bytes.AsSpan(0, (int)block.FileOffset), .. bytes.AsSpan((int)(block.FileOffset + block.FileLength))]);

        var session = await RecordingDigest.ReadAsync(path, Key);
        Assert.Equal(RecordingIntegrity.Damaged, session.Integrity);
        Assert.Equal("block 4 is missing (deleted)", Assert.Single(session.Problems));
        Assert.Equal(120 - lost, session.Statements.Count);
        var gap = Assert.Single((await ReadEventsAsync(path)).OfType<GapEvent>());
        Assert.Equal("the events of block 4 are missing or failed verification (block 5 follows block 3)", gap.Detail);
        Assert.Equal("SELECT 5", session.Statements[^1].Result);
    }

    [Fact]
    public async Task A_file_that_is_not_a_recording_does_not_throw()
    {
        string path = Path.Combine(_fixture.Directory, "20250101T000000Z_junk.ghrec.lz4");
        await File.WriteAllBytesAsync(path, Enumerable.Range(0, 5000).Select(i => (byte)(i * 7)).ToArray());
        var session = await RecordingDigest.ReadAsync(path, Key);
        Assert.Equal(RecordingIntegrity.Damaged, session.Integrity);
        Assert.Equal("junk", session.SessionId);
        Assert.Equal(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero), session.Start);
        Assert.Empty(session.Statements);
        Assert.NotEmpty(session.Problems);
    }

    [Fact]
    public async Task Signed_records_full_of_garbage_never_throw()
    {
        var random = new Random(77);
        RecordKind[] kinds = [RecordKind.SessionStart, RecordKind.Statement, RecordKind.Decision, RecordKind.ResultMeta, RecordKind.ServerMessage,
            RecordKind.ClientMessage, RecordKind.Error, RecordKind.SessionEnd, (RecordKind)0x40];
        for (int round = 0; round < 20; round++)
        {
            await using var r = SessionRecorder.Start(_fixture.Directory, Key, $"sess-garbage-{round}");
            r.At(0.01);
            r.Server(Backend.Startup());
            int structured = 1; // the SessionStart the writer records
            for (int i = 0; i < 200; i++)
            {
                r.At(1 + i * 0.01);
                var payload = new byte[random.Next(0, 120)];
                random.NextBytes(payload);
                if (payload.Length > 2 && random.Next(3) == 0)
                {
                    payload[0] = (byte)random.Next(1, 9); // a plausible field tag
                    payload[1] = (byte)random.Next(0, payload.Length - 1);
                }

                var kind = kinds[random.Next(kinds.Length)];
                structured += kind is RecordKind.ServerMessage or RecordKind.ClientMessage ? 0 : 1;
                r.Raw(kind, (RecordDirection)random.Next(0, 5), payload);
            }

            string path = await r.CloseAsync();
            var session = await RecordingDigest.ReadAsync(path, Key);
            Assert.Equal(RecordingIntegrity.Intact, session.Integrity);
            Assert.Equal($"sess-garbage-{round}", session.SessionId);
            // Each structured record is one event, whatever its fields; the garbage stream is reported, not thrown.
            var events = await ReadEventsAsync(path);
            Assert.Equal(structured, events.Count(e => e is not (ServerMessageEvent or ClientMessageEvent or StreamProblemEvent)));
            Assert.Equal(Enumerable.Range(0, events.Count).Select(i => (long)i), events.Select(e => e.Sequence));
            Assert.Contains(events, e => e is StreamProblemEvent);
            using var sink = new StringWriter();
            await RecordingReplay.WriteAsync(session, RecordingDigest.ReadEventsAsync(path, Key), sink);
            await RecordingExport.WriteJsonLinesAsync(session, RecordingDigest.ReadEventsAsync(path, Key), sink);
        }
    }

    [Theory]
    [InlineData("public.\"Orders\"", "public.\"Orders\"")]
    [InlineData("Public.\"orders\"", "public.orders")]
    [InlineData("\"a\"\"b\"", "\"a\"\"b\"")]
    [InlineData("SALES . Q1", "sales.q1")]
    public void Relation_names_are_read_as_the_server_reads_them(string written, string expected)
        => Assert.Equal(expected, RecordingDigest.NormalizeName(written));

    [Fact]
    public void Class_names_are_the_policy_names()
    {
        Assert.Equal("none", RecordingDigest.ClassName(Gatehouse.Policy.Sql.StatementClass.None));
        Assert.Equal("write|ddl|opaque_code", RecordingDigest.ClassName(
            Gatehouse.Policy.Sql.StatementClass.Ddl | Gatehouse.Policy.Sql.StatementClass.Write | Gatehouse.Policy.Sql.StatementClass.OpaqueCode));
        var (cls, tables) = RecordingDigest.Classify("select * from a join s.b on true; insert into c values (1)");
        Assert.Equal("read|write", RecordingDigest.ClassName(cls));
        Assert.Equal(["a", "s.b", "c"], tables);
    }

    private static byte[] Lz4Decode(ReadOnlySpan<byte> frame)
    {
        var output = new System.Buffers.ArrayBufferWriter<byte>();
        K4os.Compression.LZ4.Streams.LZ4Frame.Decode(frame, output, 0);
        return output.WrittenSpan.ToArray();
    }

    private static byte[] Lz4Encode(byte[] plain)
    {
        var output = new System.Buffers.ArrayBufferWriter<byte>();
        K4os.Compression.LZ4.Streams.LZ4Frame.Encode(plain.AsSpan(), output, new K4os.Compression.LZ4.Streams.LZ4EncoderSettings { ChainBlocks = false, ContentChecksum = true });
        return output.WrittenSpan.ToArray();
    }

    private static async Task<List<RecordedEvent>> ReadEventsAsync(string path)
    {
        var events = new List<RecordedEvent>();
        await foreach (var e in RecordingDigest.ReadEventsAsync(path, Key))
        {
            events.Add(e);
        }

        return events;
    }
}
