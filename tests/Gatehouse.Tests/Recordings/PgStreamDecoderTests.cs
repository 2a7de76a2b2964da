using System.Buffers.Binary;
using System.Text;
using Gatehouse.Host.Recordings;
using Gatehouse.Tests.Support;
using static Gatehouse.Tests.Support.PgMessages;

namespace Gatehouse.Tests.Recordings;

/// <summary>
/// The backend stream decoder: every message type a replay shows, the same messages whatever the chunk boundaries,
/// and a clear error (never an exception or a wait) for a stream that is not backend messages.
/// </summary>
public sealed class PgStreamDecoderTests
{
    /// <summary>One of every backend message a recording holds, in a plausible order.</summary>
    private static byte[] Stream() => Concat(
    [
        .. Backend.Startup(),
        ParameterDescription(23, 25),
        Message('T', I16(2), Str("id"), I32(16384), I16(1), I32(23), I16(4), I32(-1), I16(0), Str("photo"), I32(16384), I16(2), I32(17), I16(-1), I32(-1), I16(1)),
        Message('D', I16(2), I32(2), Bytes("42"), I32(3), B(0x00, 0xFF, 0x10)),
        Message('D', I16(2), I32(-1), I32(0)),
        Message('D', I16(2), I32(6), Bytes("héllo"), I32(-1)),
        CommandComplete("SELECT 3"),
        Backend.Notice("00000", "table \"t\" does not exist, skipping"),
        Backend.Error("42501", "permission denied for table secrets", detail: "rule no-secrets"),
        Backend.ParseComplete(), Backend.BindComplete(), Backend.NoData(), Message('3'), Message('s'), Message('I'),
        CopyOutResponse(2),
        CopyData("1\talice\n"),
        Message('d', B(0xC3, 0x28)),
        Backend.CopyDone(),
        Notification(77, "jobs", "done"),
        FunctionCallResponse("7"),
        Message('V', I32(-1)),
        ReadyForQuery('T'),
    ]);

    /// <summary>Each message as one line, every field included: two decodes are equal when their lines are.</summary>
    private static List<string> Lines(IEnumerable<PgBackendMessage> messages) => messages.Select(m => m switch
    {
        PgRowDescription t => $"{m.Offset} T {string.Join(",", t.Columns.Select(c => $"{c.Name}:{c.TypeOid}:{c.Format}"))}",
        PgDataRow d => $"{m.Offset} D {string.Join(",", d.Values.Select(v => v ?? "<null>"))}",
        PgCommandComplete c => $"{m.Offset} C {c.Tag}",
        PgNoticeMessage n => $"{m.Offset} {n.Code} {n} detail={n.Detail}",
        PgReadyForQuery z => $"{m.Offset} Z {z.Status}",
        PgCopyResponse h => $"{m.Offset} {h.Code} {h.Format} {string.Join(",", h.ColumnFormats)}",
        PgCopyData c => $"{m.Offset} d {c.Data}",
        PgParameterStatus s => $"{m.Offset} S {s.Parameter}={s.Value}",
        PgParameterDescription t => $"{m.Offset} t {string.Join(",", t.TypeOids)}",
        PgNotification a => $"{m.Offset} A {a.ProcessId} {a.Channel} {a.Payload}",
        PgFunctionCallResponse v => $"{m.Offset} V {v.Value ?? "<null>"}",
        PgBackendKeyData k => $"{m.Offset} K {k.ProcessId}",
        PgAuthentication r => $"{m.Offset} R {r.AuthenticationCode}",
        _ => $"{m.Offset} {m.Name}",
    }).ToList();

    [Fact]
    public void Every_message_type_decodes_with_its_fields()
    {
        byte[] stream = Stream();
        var decoder = new PgStreamDecoder();
        var messages = new List<PgBackendMessage>();
        int count = decoder.Decode(stream, messages);

        Assert.Null(decoder.Error);
        Assert.Null(decoder.Complete());
        Assert.Equal(stream.Length, decoder.Offset);
        Assert.Equal(27, count);
        var lines = Lines(messages);
        Assert.Equal("0 R 0", lines[0]);
        Assert.Equal("9 S server_version=16.2", lines[1]);
        Assert.EndsWith(" K 4242", lines[3]);
        Assert.EndsWith(" Z I", lines[4]);
        Assert.EndsWith(" t 23,25", lines[5]);
        Assert.EndsWith(" T id:23:0,photo:17:1", lines[6]);
        // Column 2 is binary (format 1): hex, and an empty value is \\x, not NULL.
        Assert.EndsWith(@" D 42,\x00ff10", lines[7]);
        Assert.EndsWith(@" D <null>,\x", lines[8]);
        Assert.EndsWith(" D héllo,<null>", lines[9]);
        Assert.EndsWith(" C SELECT 3", lines[10]);
        Assert.EndsWith(" N NOTICE 00000: table \"t\" does not exist, skipping detail=", lines[11]);
        Assert.EndsWith(" E ERROR 42501: permission denied for table secrets detail=rule no-secrets", lines[12]);
        Assert.Equal(["ParseComplete", "BindComplete", "NoData", "CloseComplete", "PortalSuspended", "EmptyQueryResponse"],
            messages.Skip(13).Take(6).Select(m => m.Name));
        Assert.EndsWith(" H 0 0,0", lines[19]);
        Assert.EndsWith(" d 1\talice\n", lines[20]);
        Assert.EndsWith(@" d \xc328", lines[21]);
        Assert.Equal("CopyDone", messages[22].Name);
        Assert.EndsWith(" A 77 jobs done", lines[23]);
        Assert.EndsWith(" V 7", lines[24]);
        Assert.EndsWith(" V <null>", lines[25]);
        Assert.EndsWith(" Z T", lines[26]);
        var error = Assert.IsType<PgNoticeMessage>(messages[12]);
        Assert.True(error.IsError);
        Assert.Equal("ERROR", error.Severity);
        Assert.Equal("42501", error.SqlState);
        Assert.Equal('C', error.Fields.Keys.ElementAt(2));
    }

    [Fact]
    public void Splitting_the_stream_at_any_offset_gives_the_same_messages()
    {
        byte[] stream = Stream();
        var whole = new List<PgBackendMessage>();
        new PgStreamDecoder().Decode(stream, whole);
        var expected = Lines(whole);

        for (int split = 0; split <= stream.Length; split++)
        {
            var decoder = new PgStreamDecoder();
            var messages = new List<PgBackendMessage>();
            decoder.Decode(stream.AsSpan(0, split), messages);
            decoder.Decode(stream.AsSpan(split), messages);
            Assert.Null(decoder.Error);
            Assert.Null(decoder.Complete());
            Assert.Equal(expected, Lines(messages));
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(64)]
    public void Fixed_size_chunks_and_random_cuts_give_the_same_messages(int size)
    {
        byte[] stream = Stream();
        var whole = new List<PgBackendMessage>();
        new PgStreamDecoder().Decode(stream, whole);

        var decoder = new PgStreamDecoder();
        var messages = new List<PgBackendMessage>();
        for (int at = 0; at < stream.Length; at += size)
        {
            decoder.Decode(stream.AsSpan(at, Math.Min(size, stream.Length - at)), messages);
        }

        Assert.Equal(Lines(whole), Lines(messages));

        var random = new Random(size);
        for (int round = 0; round < 50; round++)
        {
            var cuts = new PgStreamDecoder();
            var decoded = new List<PgBackendMessage>();
            int at = 0;
            while (at < stream.Length)
            {
                int n = Math.Min(random.Next(0, 40), stream.Length - at);
                cuts.Decode(stream.AsSpan(at, n), decoded);
                at += n;
            }

            Assert.Equal(Lines(whole), Lines(decoded));
        }
    }

    [Fact]
    public void A_stream_cut_inside_a_message_says_so_at_the_end()
    {
        byte[] stream = Concat(CommandComplete("SELECT 1"), DataRow("a", "b"));
        var decoder = new PgStreamDecoder();
        var messages = new List<PgBackendMessage>();
        decoder.Decode(stream.AsSpan(0, stream.Length - 3), messages);

        Assert.Single(messages);
        Assert.Null(decoder.Error);
        Assert.Equal(stream.Length - 3 - 14, decoder.Pending);
        Assert.Equal("the stream ends inside a DataRow message of 17 bytes at stream offset 14 (14 bytes of it were received)", decoder.Complete());
    }

    [Theory]
    [InlineData(new byte[] { 0x00, 0, 0, 0, 4 }, "byte 0x00 at stream offset 0 is not the type of a PostgreSQL backend message: the stream is not in step")]
    [InlineData(new byte[] { (byte)'Q', 0, 0, 0, 9 }, "byte 0x51 at stream offset 0 is not the type of a PostgreSQL backend message: the stream is not in step")]
    [InlineData(new byte[] { (byte)'C', 0, 0, 0, 3 }, "the CommandComplete message at stream offset 0 has length 3, outside 4 to 1073741823: the stream is not in step")]
    [InlineData(new byte[] { (byte)'C', 0xFF, 0xFF, 0xFF, 0xF0 }, "the CommandComplete message at stream offset 0 has length -16, outside 4 to 1073741823: the stream is not in step")]
    [InlineData(new byte[] { (byte)'C', 0x7F, 0, 0, 0 }, "the CommandComplete message at stream offset 0 has length 2130706432, outside 4 to 1073741823: the stream is not in step")]
    [InlineData(new byte[] { (byte)'C', 0, 0, 0, 6, (byte)'a', (byte)'b' }, "the CommandComplete message at stream offset 0 is malformed: a string has no terminating zero")]
    [InlineData(new byte[] { (byte)'D', 0, 0, 0, 10, 0, 1, 0, 0, 0, 9 }, "the DataRow message at stream offset 0 is malformed: a field of 9 bytes runs past its end (0 bytes left)")]
    [InlineData(new byte[] { (byte)'D', 0, 0, 0, 6, 0xFF, 0xFF }, "the DataRow message at stream offset 0 is malformed: negative column count -1")]
    [InlineData(new byte[] { (byte)'Z', 0, 0, 0, 5, (byte)'X' }, "the ReadyForQuery message at stream offset 0 is malformed: transaction status 0x58 is not I, T or E")]
    [InlineData(new byte[] { (byte)'1', 0, 0, 0, 5, 0 }, "the ParseComplete message at stream offset 0 is malformed: 1 bytes are left after its last field")]
    [InlineData(new byte[] { (byte)'D', 0, 0, 0, 10, 0, 1, 0xFF, 0xFF, 0xFF, 0xFE }, "the DataRow message at stream offset 0 is malformed: a field has negative length -2")]
    public void A_stream_that_is_not_backend_messages_stops_with_a_clear_error(byte[] garbage, string error)
    {
        // After a good message, so the offset in the error is checked too.
        byte[] good = CommandComplete("BEGIN");
        byte[] stream = Concat(good, garbage);
        var decoder = new PgStreamDecoder();
        var messages = new List<PgBackendMessage>();
        decoder.Decode(stream, messages);

        Assert.Single(messages);
        Assert.Equal(error.Replace("stream offset 0", $"stream offset {good.Length}", StringComparison.Ordinal), decoder.Error);
        Assert.Equal(decoder.Error, decoder.Complete());
        // Stopped: more input is ignored, until a reset.
        Assert.Equal(0, decoder.Decode(CommandComplete("COMMIT"), messages));
        decoder.Reset();
        Assert.Equal(1, decoder.Decode(CommandComplete("COMMIT"), messages));
        Assert.Null(decoder.Error);
    }

    [Fact]
    public void The_length_limit_is_a_clear_error_not_a_wait()
    {
        var decoder = new PgStreamDecoder(maxMessageLength: 1024);
        var messages = new List<PgBackendMessage>();
        decoder.Decode(Message('D', I16(1), I32(2000), new byte[2000]), messages);
        Assert.Empty(messages);
        Assert.Equal("the DataRow message at stream offset 0 has length 2010, outside 4 to 1023: the stream is not in step", decoder.Error);
    }

    [Fact]
    public void Random_bytes_and_mutated_streams_never_throw_and_never_hang()
    {
        byte[] stream = Stream();
        var random = new Random(20250314);
        int errors = 0;
        for (int round = 0; round < 3000; round++)
        {
            byte[] input;
            if (round % 2 == 0)
            {
                input = new byte[random.Next(0, 300)];
                random.NextBytes(input);
            }
            else
            {
                input = (byte[])stream.Clone();
                for (int flips = random.Next(1, 4); flips > 0; flips--)
                {
                    input[random.Next(input.Length)] = (byte)random.Next(256);
                }
            }

            var decoder = new PgStreamDecoder(maxMessageLength: 1 << 20);
            var messages = new List<PgBackendMessage>();
            int at = 0;
            while (at < input.Length)
            {
                int n = Math.Min(random.Next(1, 50), input.Length - at);
                decoder.Decode(input.AsSpan(at, n), messages);
                at += n;
            }

            // Either it decoded, or it says why (an error, or a message cut off at the end).
            Assert.True(decoder.Offset + decoder.Pending <= input.Length || decoder.Error is not null);
            if (decoder.Complete() is not null)
            {
                errors++;
            }
        }

        Assert.True(errors > 1500, $"{errors} of 3000 damaged inputs reported");
    }

    [Fact]
    public void Client_messages_split_with_their_names()
    {
        byte[] payload = Concat(Describe('P', "p1"), Execute("p1", 10), Close('S', "s1"), Sync(), CopyData("x\n"), CopyFail("stop"), Terminate());
        var messages = PgFrontendMessage.Split(payload, out string? problem);
        Assert.Null(problem);
        Assert.Equal(["Describe P p1", "Execute p1 10", "Close S s1", "Sync", "CopyData x\n", "CopyFail stop", "Terminate"],
            messages.Select(m => string.Join(" ", new object?[] { m.MessageName, m.Kind, m.Name, m.MaxRows, m.Text }.Where(x => x is not null))));

        var broken = PgFrontendMessage.Split([.. Sync(), (byte)'E', 0, 0], out problem);
        Assert.Single(broken);
        Assert.Equal("3 bytes at the end are not a whole message", problem);
        broken = PgFrontendMessage.Split([(byte)'~', 0, 0, 0, 4], out problem);
        Assert.Empty(broken);
        Assert.Equal("5 bytes starting with 0x7e are not a whole frontend message", problem);
    }

    [Fact]
    public void An_execute_of_a_portal_whose_name_is_not_utf8_keeps_its_row_limit()
    {
        // 0xFF decodes to U+FFFD, three bytes in UTF-8: the limit must be found after the name's NUL, not by its text.
        byte[] execute = Message('E', [(byte)'p', 0xFF, 0], I32(25));
        var messages = PgFrontendMessage.Split(execute, out string? problem);
        Assert.Null(problem);
        Assert.Equal(25, Assert.Single(messages).MaxRows);
    }

    [Fact]
    public void Text_values_that_are_not_text_are_shown_as_hex()
    {
        Assert.Equal("plain\ttext\n", PgText.TextValue(Encoding.UTF8.GetBytes("plain\ttext\n")));
        Assert.Equal(@"\x000102", PgText.TextValue([0, 1, 2]));
        Assert.Equal(@"\xff", PgText.TextValue([0xFF]));
        var int4 = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(int4, 7);
        Assert.Equal(@"\x00000007", PgText.TextValue(int4));
    }
}
