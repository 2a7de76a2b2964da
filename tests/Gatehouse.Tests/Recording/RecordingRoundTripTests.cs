using System.Buffers;
using System.Text;
using System.Text.Json;
using Gatehouse.Engine.Recording;

namespace Gatehouse.Tests.Recording;

/// <summary>What is appended is what is read back, verified; and the file is plain LZ4 frames that the stock lz4 reads.</summary>
public sealed class RecordingRoundTripTests : IDisposable
{
    private readonly RecordingFixture _fixture = new();

    public void Dispose() => _fixture.Dispose();

    [Fact]
    public async Task Every_event_kind_round_trips_with_its_direction_payload_and_order()
    {
        var appended = new List<(RecordKind Kind, RecordDirection Direction, byte[] Payload)>
        {
            (RecordKind.ClientMessage, RecordDirection.ClientToServer, "Q\0\0\0\x0dSELECT 1\0"u8.ToArray()),
            (RecordKind.Statement, RecordDirection.ClientToServer, Fields((ref RecordFieldWriter w) =>
            {
                w.WriteText(StatementFields.Text, "SELECT * FROM orders WHERE id = $1 AND note = $2");
                w.WriteText(StatementFields.Parameter, "42");
                w.Write(StatementFields.NullParameter, []);
                w.WriteText(StatementFields.Name, "s1");
            })),
            (RecordKind.Decision, RecordDirection.None, Fields((ref RecordFieldWriter w) =>
            {
                w.Write(DecisionFields.Outcome, [(byte)RecordedDecision.Approved]);
                w.WriteText(DecisionFields.Rule, "writes-need-approval");
                w.WriteText(DecisionFields.Approver, "bob");
                w.WriteText(DecisionFields.Ticket, "apr-17");
            })),
            (RecordKind.ServerMessage, RecordDirection.ServerToClient, "D\0\0\0\x0b\0\x01\0\0\0\x01x"u8.ToArray()),
            (RecordKind.ServerMessage, RecordDirection.GatewayToClient, "E\0\0\0\x04"u8.ToArray()),
            (RecordKind.ResultMeta, RecordDirection.None, Fields((ref RecordFieldWriter w) =>
            {
                w.WriteText(ResultMetaFields.CommandTag, "SELECT 1");
                w.WriteNumber(ResultMetaFields.Rows, 1);
                w.WriteText(ResultMetaFields.Column, "id");
                w.WriteNumber(ResultMetaFields.MaskedValues, 0);
                w.WriteNumber(ResultMetaFields.DurationMicros, 1234567);
            })),
            (RecordKind.Error, RecordDirection.ServerToClient, Fields((ref RecordFieldWriter w) =>
            {
                w.WriteText(ErrorFields.Code, "42501");
                w.WriteText(ErrorFields.Message, "permission denied for table payroll");
                w.WriteText(ErrorFields.Severity, "ERROR");
            })),
            (RecordKind.ClientMessage, RecordDirection.GatewayToServer, []),
            ((RecordKind)0x7E, RecordDirection.None, "a kind from a later version"u8.ToArray()),
            (RecordKind.SessionEnd, RecordDirection.None, Fields((ref RecordFieldWriter w) =>
            {
                w.WriteText(SessionEndFields.Reason, "ClientClosed");
                w.WriteText(SessionEndFields.Side, "client");
                w.WriteNumber(SessionEndFields.BytesFromClient, 1234);
                w.WriteNumber(SessionEndFields.BytesFromServer, ulong.MaxValue);
            })),
        };

        await using var service = new RecordingService(_fixture.Options());
        var session = RecordingFixture.Session("pg-1") with { Attributes = new Dictionary<string, string> { ["database"] = "shop" } };
        var writer = service.Start(session);
        foreach (var (kind, direction, payload) in appended)
        {
            Assert.Equal(RecordingStatus.Recorded, writer.Append(kind, direction, payload));
        }

        await writer.DisposeAsync();
        Assert.Equal(RecordingWriterState.Closed, writer.State);
        Assert.EndsWith("20250314T150926Z_pg-1.ghrec.lz4", writer.Path, StringComparison.Ordinal);

        await using var reader = RecordingReader.Open(writer.Path!, RecordingFixture.Key);
        var events = new List<RecordingEvent>();
        await foreach (var e in reader.ReadEventsAsync())
        {
            events.Add(e);
        }

        var verification = reader.Verification!;
        Assert.Equal(RecordingIntegrity.Intact, verification.Integrity);
        Assert.True(verification.SignaturesChecked);
        Assert.Empty(verification.Problems);
        Assert.Equal("pg-1", verification.Header!.SessionId);
        Assert.Equal("test-key-1", verification.Header.KeyId);
        Assert.Equal(session.StartTime, verification.Header.StartTime);

        // SessionStart first, written by the service from the session info.
        Assert.Equal(RecordKind.SessionStart, events[0].Kind);
        using (var json = JsonDocument.Parse(events[0].Payload))
        {
            var root = json.RootElement;
            Assert.Equal("pg-1", root.GetProperty("session_id").GetString());
            Assert.Equal("postgresql", root.GetProperty("protocol").GetString());
            Assert.Equal("alice", root.GetProperty("identity").GetString());
            Assert.Equal("orders", root.GetProperty("connection").GetString());
            Assert.Equal("192.0.2.7:51234", root.GetProperty("client_address").GetString());
            Assert.Equal("test", root.GetProperty("gateway_version").GetString());
            Assert.Equal("2025-03-14T15:09:26.0000000+00:00", root.GetProperty("start_time").GetString());
            Assert.Equal("shop", root.GetProperty("attributes").GetProperty("database").GetString());
        }

        Assert.Equal(appended.Count, events.Count - 1);
        for (int i = 0; i < appended.Count; i++)
        {
            var e = events[i + 1];
            Assert.Equal(appended[i].Kind, e.Kind);
            Assert.Equal(appended[i].Direction, e.Direction);
            Assert.Equal(appended[i].Payload, e.Payload.ToArray());
            Assert.True(e.Verified);
            Assert.True(e.TimeMicros >= events[i].TimeMicros, "times never go back");
        }

        // The structured payloads read back field by field.
        var statement = new RecordFieldReader(events[2].Payload.Span);
        Assert.True(statement.TryRead(out byte tag, out var value));
        Assert.Equal((StatementFields.Text, "SELECT * FROM orders WHERE id = $1 AND note = $2"), (tag, RecordFieldReader.GetText(value)));
        Assert.True(statement.TryRead(out tag, out value));
        Assert.Equal((StatementFields.Parameter, "42"), (tag, RecordFieldReader.GetText(value)));
        Assert.True(statement.TryRead(out tag, out value));
        Assert.Equal((StatementFields.NullParameter, 0), (tag, value.Length));
        Assert.True(statement.TryRead(out tag, out _));
        Assert.False(statement.TryRead(out _, out _));
        Assert.False(statement.IsMalformed);

        var end = new RecordFieldReader(events[^1].Payload.Span);
        ulong fromServer = 0;
        while (end.TryRead(out tag, out value))
        {
            if (tag == SessionEndFields.BytesFromServer)
            {
                Assert.True(RecordFieldReader.TryGetNumber(value, out fromServer));
            }
        }

        Assert.Equal(ulong.MaxValue, fromServer);
    }

    [Fact]
    public async Task Many_blocks_split_payloads_and_records_larger_than_a_block_round_trip()
    {
        var events = RecordingFixture.Events(2000);
        byte[] large = new byte[300_000];
        new Random(3).NextBytes(large);
        await using var service = new RecordingService(_fixture.Options(blockSize: 4096));
        var writer = service.Start(RecordingFixture.Session("many"));
        for (int i = 0; i < events.Count; i++)
        {
            var (kind, direction, payload) = events[i];
            var status = i % 2 == 0
                ? writer.Append(kind, direction, payload)
                : writer.Append(kind, direction, Split(payload, 3)); // a frame across pipe segments
            Assert.Equal(RecordingStatus.Recorded, status);
            if (i == 1000)
            {
                Assert.Equal(RecordingStatus.Recorded, writer.Append(RecordKind.ServerMessage, RecordDirection.ServerToClient, large));
            }
        }

        await writer.DisposeAsync();
        var read = await RecordingFixture.ReadAllAsync(writer.Path!);
        var verification = await RecordingReader.VerifyAsync(writer.Path!, RecordingFixture.Key);
        Assert.Equal(RecordingIntegrity.Intact, verification.Integrity);
        Assert.True(verification.Blocks.Count > 50, $"{verification.Blocks.Count} blocks");
        Assert.Equal(verification.Blocks.Count, verification.VerifiedBlocks);
        Assert.Equal(events.Count + 2, read.Count); // SessionStart, the events, the large one
        var expected = events.Select(e => e.Payload).ToList();
        expected.Insert(1001, large);
        Assert.Equal(expected.Count, read.Count - 1);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i], read[i + 1].Payload.ToArray());
        }

        Assert.Contains(verification.Blocks, b => b.Length > large.Length);
    }

    [Fact]
    public async Task The_stock_lz4_tool_decompresses_a_recording_into_the_record_stream()
    {
        string path = await _fixture.RecordAsync("lz4-tool", count: 1500);
        var verification = await RecordingReader.VerifyAsync(path, RecordingFixture.Key);
        Assert.True(verification.Blocks.Count > 10);

        var (test, _, testErr) = RecordingFixture.Lz4("-t", path);
        Assert.True(test == 0, $"lz4 -t failed: {testErr}");
        var (exit, plain, stderr) = RecordingFixture.Lz4("-d", "-c", path);
        Assert.True(exit == 0, $"lz4 -d failed: {stderr}");
        Assert.Equal(verification.Blocks.Sum(b => (long)b.Length), plain.Length);

        // The plain stream is the records, end to end: header, SessionStart, events, a seal closing every block.
        Assert.Equal((byte)RecordKind.Header, plain[0]);
        Assert.Equal("GHRC", Encoding.ASCII.GetString(plain, 4, 4));
        var events = RecordingFixture.Events(1500);
        int position = 0, seals = 0, eventIndex = -1;
        while (position < plain.Length)
        {
            Assert.True(TryReadRecord(plain.AsSpan(position), out var kind, out int headerLength, out int length));
            if (kind == RecordKind.Seal)
            {
                seals++;
            }
            else if (kind is RecordKind.ClientMessage or RecordKind.ServerMessage)
            {
                Assert.Equal(events[++eventIndex].Payload, plain.AsSpan(position + headerLength, length).ToArray());
            }

            position += headerLength + length;
        }

        Assert.Equal(verification.Blocks.Count, seals);
        Assert.Equal(events.Count - 1, eventIndex);
    }

    [Fact]
    public async Task The_stock_lz4_tool_reads_incompressible_blocks_and_frames_of_several_lz4_blocks()
    {
        // Random bytes do not compress (the LZ4 blocks are stored as they are); records of 300 KB, random and
        // repetitive, are frames of several 64 KiB LZ4 blocks each.
        byte[] random = new byte[300_000];
        new Random(5).NextBytes(random);
        byte[] repetitive = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("order shipped to the Lisbon warehouse; ", 8000)));
        byte[] small = new byte[3000];
        new Random(6).NextBytes(small);
        await using var service = new RecordingService(_fixture.Options(blockSize: 4096));
        var writer = service.Start(RecordingFixture.Session("lz4-blocks"));
        foreach (byte[] payload in new[] { small, random, repetitive, small })
        {
            Assert.Equal(RecordingStatus.Recorded, writer.Append(RecordKind.ServerMessage, RecordDirection.ServerToClient, payload));
        }

        await writer.DisposeAsync();
        var verification = await RecordingReader.VerifyAsync(writer.Path!, RecordingFixture.Key);
        Assert.Equal(RecordingIntegrity.Intact, verification.Integrity);
        long fileLength = new FileInfo(writer.Path!).Length;
        Assert.True(fileLength > random.Length, $"random bytes cannot have shrunk: {fileLength} bytes on disk");
        Assert.True(fileLength < 2 * random.Length, $"the repetitive record must have compressed: {fileLength} bytes on disk");

        var (test, _, testErr) = RecordingFixture.Lz4("-t", writer.Path!);
        Assert.True(test == 0, $"lz4 -t failed: {testErr}");
        var (exit, plain, stderr) = RecordingFixture.Lz4("-d", "-c", writer.Path!);
        Assert.True(exit == 0, $"lz4 -d failed: {stderr}");
        Assert.Equal(verification.Blocks.Sum(b => (long)b.Length), plain.Length);
        Assert.True(plain.AsSpan().IndexOf(random) > 0, "the random record is in lz4's output");
        Assert.True(plain.AsSpan().IndexOf(repetitive) > 0, "the repetitive record is in lz4's output");
        var read = await RecordingFixture.ReadAllAsync(writer.Path!);
        Assert.Equal([small, random, repetitive, small], read.Skip(1).Select(e => e.Payload.ToArray()));
    }

    [Fact]
    public async Task The_independent_verifier_written_from_the_format_document_agrees()
    {
        // docs/recording-verify.py knows the format only from docs/recording-format.md, and reads the lz4 tool's output.
        string path = await _fixture.RecordAsync("second-opinion", count: 1500);
        string plain = Path.Combine(_fixture.Directory, "second-opinion.ghrec");
        var (exit, _, stderr) = RecordingFixture.Lz4("-d", "-q", path, plain);
        Assert.True(exit == 0, $"lz4 -d failed: {stderr}");
        string script = Path.Combine(RecordingFixture.RepositoryRoot(), "docs", "recording-verify.py");
        string key = Convert.ToHexString(Enumerable.Range(1, 32).Select(i => (byte)i).ToArray());
        var verification = await RecordingReader.VerifyAsync(path, RecordingFixture.Key);

        var (code, output, error) = RecordingFixture.Run("python3", "install python3 (scripts/test.sh does)", await File.ReadAllBytesAsync(plain), script, key);
        Assert.True(code == 0, $"recording-verify.py: {Encoding.UTF8.GetString(output)} {error}");
        Assert.Equal($"{verification.Blocks.Count} blocks, {verification.Events} events, sealed", Encoding.UTF8.GetString(output).Trim());

        // It finds an alteration too.
        byte[] bytes = await File.ReadAllBytesAsync(plain);
        bytes[bytes.Length / 2] ^= 1;
        (code, output, _) = RecordingFixture.Run("python3", "install python3", bytes, script, key);
        Assert.Equal(1, code);
        Assert.StartsWith("FAILED", Encoding.UTF8.GetString(output), StringComparison.Ordinal);
    }

    [Fact]
    public void Field_writer_reports_overflow_and_keeps_the_whole_fields_before_it()
    {
        Span<byte> buffer = stackalloc byte[16];
        var writer = new RecordFieldWriter(buffer);
        Assert.True(writer.WriteText(1, "abcdef"));
        Assert.True(writer.WriteNumber(2, 300));
        Assert.False(writer.WriteText(3, "too long for the rest"));
        Assert.True(writer.Overflowed);
        Assert.False(writer.WriteNumber(4, 1));

        var reader = new RecordFieldReader(writer.WrittenSpan);
        Assert.True(reader.TryRead(out byte tag, out var value));
        Assert.Equal((1, "abcdef"), (tag, RecordFieldReader.GetText(value)));
        Assert.True(reader.TryRead(out tag, out value));
        Assert.True(RecordFieldReader.TryGetNumber(value, out ulong number));
        Assert.Equal((2, 300UL), (tag, number));
        Assert.False(reader.TryRead(out _, out _));
        Assert.False(reader.IsMalformed);

        var malformed = new RecordFieldReader([1, 10, (byte)'x']);
        Assert.False(malformed.TryRead(out _, out _));
        Assert.True(malformed.IsMalformed);
    }

    [Fact]
    public async Task A_structured_payload_writes_itself_into_the_buffer()
    {
        await using var service = new RecordingService(_fixture.Options());
        var writer = service.Start(RecordingFixture.Session("payload"));
        Assert.Equal(RecordingStatus.Recorded, writer.Append(RecordKind.Decision, RecordDirection.None, new DecisionPayload(RecordedDecision.Denied, "no-ddl")));
        await writer.DisposeAsync();

        var events = await RecordingFixture.ReadAllAsync(writer.Path!);
        var reader = new RecordFieldReader(events[1].Payload.Span);
        Assert.True(reader.TryRead(out byte tag, out var value));
        Assert.Equal((DecisionFields.Outcome, (byte)RecordedDecision.Denied), (tag, value[0]));
        Assert.True(reader.TryRead(out tag, out value));
        Assert.Equal((DecisionFields.Rule, "no-ddl"), (tag, RecordFieldReader.GetText(value)));
    }

    [Fact]
    public async Task Framing_kinds_cannot_be_appended()
    {
        await using var service = new RecordingService(_fixture.Options());
        var writer = service.Start(RecordingFixture.Session("framing"));
        foreach (var kind in new[] { RecordKind.Header, RecordKind.Seal, RecordKind.Recovery, (RecordKind)0 })
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => writer.Append(kind, RecordDirection.None, [1]));
        }

        await writer.DisposeAsync();
        Assert.Equal(RecordingStatus.Closed, writer.Append(RecordKind.ClientMessage, RecordDirection.ClientToServer, [1]));
    }

    private readonly struct DecisionPayload(RecordedDecision outcome, string rule) : IRecordPayload
    {
        public int Length => 3 + 2 + Encoding.UTF8.GetByteCount(rule);

        public void WriteTo(Span<byte> destination)
        {
            var fields = new RecordFieldWriter(destination);
            fields.Write(DecisionFields.Outcome, [(byte)outcome]);
            fields.WriteText(DecisionFields.Rule, rule);
        }
    }

    private static byte[] Fields(FieldsAction write)
    {
        var buffer = new byte[1024];
        var writer = new RecordFieldWriter(buffer);
        write(ref writer);
        Assert.False(writer.Overflowed);
        return writer.WrittenSpan.ToArray();
    }

    private delegate void FieldsAction(ref RecordFieldWriter writer);

    private static ReadOnlySequence<byte> Split(byte[] payload, int parts)
    {
        var first = new Segment(payload.AsMemory(0, payload.Length / parts));
        var last = first;
        for (int i = 1; i < parts; i++)
        {
            int start = payload.Length * i / parts;
            int end = payload.Length * (i + 1) / parts;
            last = last.Append(payload.AsMemory(start, end - start));
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory) => Memory = memory;

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory) { RunningIndex = RunningIndex + Memory.Length };
            Next = next;
            return next;
        }
    }

    /// <summary>A record header as docs/recording-format.md describes it: kind, direction, time varint, length varint.</summary>
    private static bool TryReadRecord(ReadOnlySpan<byte> data, out RecordKind kind, out int headerLength, out int length)
    {
        kind = (RecordKind)data[0];
        int position = 2;
        SkipVarint(data, ref position);
        ulong value = 0;
        int shift = 0;
        while (true)
        {
            byte b = data[position++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                break;
            }

            shift += 7;
        }

        headerLength = position;
        length = (int)value;
        return data.Length >= headerLength + length;
    }

    private static void SkipVarint(ReadOnlySpan<byte> data, ref int position)
    {
        while (data[position++] >= 0x80)
        {
        }
    }
}
