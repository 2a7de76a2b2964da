using System.IO.Pipelines;
using Gatehouse.Engine.Relay;
using Gatehouse.Engine.Sessions;
using Gatehouse.Protocols.Postgres.Relay;
using Gatehouse.Tests.Support;
using static Gatehouse.Tests.Support.PgMessages;

namespace Gatehouse.Tests.Postgres;

/// <summary>
/// The PostgreSQL relay directions driven through the engine's real pump: every split of the input, every
/// truncated prefix, malformed frames from each side, limits, and the assembly of frames larger than a pipe window.
/// </summary>
public sealed class PgRelayTests
{
    /// <summary>Every frontend message type a client may send after login, valid.</summary>
    private static readonly byte[][] FrontendMessages =
    [
        Query("SELECT 1; SELECT 'x'"),
        Parse("s1", "SELECT $1::int", 23),
        Parse("", "SELECT 1"),
        Bind("p1", "s1", Bytes("42")),
        Bind("", "", null, Bytes("")),
        Describe('S', "s1"),
        Describe('P', "p1"),
        Execute("p1", 0),
        Execute("", 10),
        Flush(),
        Close('S', "s1"),
        Close('P', "p1"),
        FunctionCall(1598, Bytes("abc")),
        Sync(),
    ];

    /// <summary>Every backend message type a server sends after login, valid.</summary>
    private static readonly byte[][] BackendMessages =
    [
        Message('1'),
        Message('2'),
        ParameterDescription(23, 25),
        RowDescription("id", "name"),
        DataRow("1", "alice"),
        DataRow(null, ""),
        Message('s'),
        CommandComplete("SELECT 2"),
        Message('n'),
        Message('I'),
        Message('3'),
        Notice("something to know"),
        ParameterStatus("application_name", "psql"),
        Notification(42, "jobs", "payload"),
        Error("ERROR", "22012", "division by zero"),
        CopyOutResponse(2),
        CopyData("1\talice\n"),
        Message('c'),
        FunctionCallResponse("x"),
        FunctionCallResponse(null),
        ReadyForQuery('I'),
        ReadyForQuery('T'),
        ReadyForQuery('E'),
    ];

    public static TheoryData<string> Sides => new() { "client", "server" };

    [Theory]
    [MemberData(nameof(Sides))]
    public async Task Forwards_every_message_unchanged_whatever_the_split(string side)
    {
        var stream = Concat(side == "client" ? FrontendMessages : BackendMessages);
        for (int split = 0; split <= stream.Length; split++)
        {
            var run = await RunAsync(side, [stream[..split], stream[split..]]);
            Assert.Equal(PumpStop.PeerClosed, run.Outcome.Stop);
            Assert.Equal(stream, run.Output);
            Assert.Equal(SessionEndReason.None, run.EndReason);
        }
    }

    [Theory]
    [MemberData(nameof(Sides))]
    public async Task Forwards_every_message_unchanged_one_byte_at_a_time(string side)
    {
        var stream = Concat(side == "client" ? FrontendMessages : BackendMessages);
        var run = await RunAsync(side, stream.Select(b => new[] { b }).ToArray());
        Assert.Equal(PumpStop.PeerClosed, run.Outcome.Stop);
        Assert.Equal(stream, run.Output);
    }

    [Theory]
    [MemberData(nameof(Sides))]
    public async Task A_truncated_stream_forwards_only_the_complete_messages(string side)
    {
        var messages = side == "client" ? FrontendMessages : BackendMessages;
        var stream = Concat(messages);
        var boundaries = new HashSet<int> { 0 };
        int at = 0;
        foreach (var message in messages)
        {
            at += message.Length;
            boundaries.Add(at);
        }

        for (int cut = 1; cut < stream.Length; cut++)
        {
            var run = await RunAsync(side, [stream[..cut]]);
            int complete = boundaries.Where(b => b <= cut).Max();
            Assert.Equal(stream[..complete], run.Output);
            Assert.Equal(boundaries.Contains(cut) ? PumpStop.PeerClosed : PumpStop.PeerClosedMidFrame, run.Outcome.Stop);
        }
    }

    /// <summary>Malformed frontend frames: each ends the session as a client protocol violation, and none is forwarded.</summary>
    public static TheoryData<string, byte[]> MalformedFrontend => new()
    {
        { "length below 4", [(byte)'Q', 0, 0, 0, 3] },
        { "negative length", [(byte)'Q', 0xFF, 0xFF, 0xFF, 0xF0] },
        { "unknown code", Message('z', Str("x")) },
        { "password message after login", Message('p', Str("secret")) },
        { "query without terminator", Message('Q', Bytes("SELECT 1")) },
        { "query with data after terminator", Message('Q', Str("SELECT 1"), Bytes("x")) },
        { "parse with more types than bytes", Message('P', Str(""), Str("SELECT 1"), I16(3), I32(23)) },
        { "parse with negative type count", Message('P', Str(""), Str("SELECT 1"), I16(-1)) },
        { "bind with a value longer than the message", Message('B', Str(""), Str(""), I16(0), I16(1), I32(100), Bytes("ab"), I16(0)) },
        { "bind with length -2", Message('B', Str(""), Str(""), I16(0), I16(1), I32(-2), I16(0)) },
        { "bind with format code 7", Message('B', Str(""), Str(""), I16(1), I16(7), I16(0), I16(0)) },
        { "bind with trailing bytes", Concat(Message('B', Str(""), Str(""), I16(0), I16(0), I16(0), Bytes("zz"))) },
        { "describe of unknown kind", Message('D', B((byte)'X'), Str("s")) },
        { "execute without row count", Message('E', Str("")) },
        { "sync with a body", Message('S', B(1)) },
        { "terminate with a body", Message('X', B(1)) },
        { "function call truncated", Message('F', I32(1598), I16(0), I16(1), I32(10)) },
        { "close without name terminator", Message('C', B((byte)'S'), Bytes("s1")) },
    };

    [Theory]
    [MemberData(nameof(MalformedFrontend))]
    public async Task A_malformed_client_message_ends_the_session_and_is_not_forwarded(string name, byte[] malformed)
    {
        var valid = Query("SELECT 1");
        var run = await RunAsync("client", [Concat(valid, malformed, valid)]);
        Assert.True(run.Outcome.Stop == PumpStop.HandlerStopped, name);
        Assert.Equal(SessionEndReason.ClientProtocolViolation, run.EndReason);
        Assert.Equal(valid, run.Output);
    }

    /// <summary>Malformed backend frames: each ends the session as a server protocol violation.</summary>
    public static TheoryData<string, byte[]> MalformedBackend => new()
    {
        { "length below 4", [(byte)'D', 0, 0, 0, 2] },
        { "unknown code", Message('?', B(0)) },
        { "authentication request after login", Message('R', I32(0)) },
        { "backend key data after login", Message('K', I32(1), I32(2)) },
        { "copy both (replication only)", Message('W', B(0), I16(0)) },
        { "data row with fewer values than its count", Message('D', I16(2), I32(1), Bytes("1")) },
        { "data row with a value longer than the message", Message('D', I16(1), I32(50), Bytes("1")) },
        { "data row with trailing bytes", Message('D', I16(1), I32(1), Bytes("1"), Bytes("x")) },
        { "data row with length -5", Message('D', I16(1), I32(-5)) },
        { "row description truncated field", Message('T', I16(1), Str("id"), I32(0)) },
        { "row description bad format", Message('T', I16(1), Str("id"), I32(0), I16(0), I32(23), I16(4), I32(-1), I16(9)) },
        { "ready for query with bad status", ReadyForQuery('X') },
        { "ready for query without status", Message('Z') },
        { "error without terminator", Message('E', B((byte)'S'), Str("ERROR")) },
        { "command complete without terminator", Message('C', Bytes("SELECT 1")) },
        { "parse complete with a body", Message('1', B(0)) },
        { "notification truncated", Message('A', I32(1), Str("chan")) },
        { "copy in response with bad format", Message('G', B(2), I16(0)) },
    };

    [Theory]
    [MemberData(nameof(MalformedBackend))]
    public async Task A_malformed_server_message_ends_the_session_and_is_not_forwarded(string name, byte[] malformed)
    {
        var valid = CommandComplete("SELECT 1");
        var run = await RunAsync("server", [Concat(valid, malformed, valid)]);
        Assert.True(run.Outcome.Stop == PumpStop.HandlerStopped, name);
        Assert.Equal(SessionEndReason.ServerProtocolViolation, run.EndReason);
        Assert.Equal(valid, run.Output);
    }

    [Theory]
    [MemberData(nameof(Sides))]
    public async Task An_oversized_message_is_refused_from_its_header_before_it_is_buffered(string side)
    {
        // Only the header and a few body bytes arrive: the verdict must come from the declared length alone.
        byte[] header = [(byte)(side == "client" ? 'Q' : 'D'), 0x00, 0x10, 0x00, 0x01, 1, 2, 3];
        var run = await RunAsync(side, [header], maxMessage: 64 * 1024);
        Assert.Equal(PumpStop.FrameTooLarge, run.Outcome.Stop);
        Assert.Equal(SessionEndReason.MessageTooLarge, run.EndReason);
        Assert.Empty(run.Output);
    }

    [Fact]
    public async Task A_message_larger_than_the_pipe_window_is_assembled_and_forwarded_intact()
    {
        var big = DataRow(new string('x', 700_000), "tail");
        var stream = Concat(RowDescription("a", "b"), big, CommandComplete("SELECT 1"), ReadyForQuery('I'));
        var chunks = stream.Chunk(7_000).ToArray();
        var run = await RunAsync("server", chunks);
        Assert.Equal(PumpStop.PeerClosed, run.Outcome.Stop);
        Assert.Equal(stream, run.Output);
    }

    [Fact]
    public async Task A_message_at_exactly_the_limit_passes_and_one_byte_more_does_not()
    {
        const int limit = 300_000;
        var atLimit = DataRow(new string('y', limit - 1 - 4 - 2 - 4));
        Assert.Equal(limit, atLimit.Length);
        var pass = await RunAsync("server", atLimit.Chunk(16_384).ToArray(), maxMessage: limit);
        Assert.Equal(PumpStop.PeerClosed, pass.Outcome.Stop);
        Assert.Equal(atLimit, pass.Output);

        var over = DataRow(new string('y', limit - 1 - 4 - 2 - 4 + 1));
        var fail = await RunAsync("server", over.Chunk(16_384).ToArray(), maxMessage: limit);
        Assert.Equal(PumpStop.FrameTooLarge, fail.Outcome.Stop);
    }

    [Fact]
    public async Task Parameter_counts_above_32767_are_valid_because_the_wire_count_is_unsigned()
    {
        // libpq and Npgsql send up to 65535 parameters; PostgreSQL reads the count as UInt16.
        const int count = 40_000;
        var parse = Parse("", "INSERT INTO t VALUES ($1)", Enumerable.Repeat(23, count).ToArray());
        var bind = Bind("", "", Enumerable.Repeat<byte[]?>(null, count).ToArray());
        var stream = Concat(parse, bind, Execute("", 0), Sync());
        var run = await RunAsync("client", stream.Chunk(8192).ToArray());
        Assert.Equal(PumpStop.PeerClosed, run.Outcome.Stop);
        Assert.Equal(stream, run.Output);
    }

    [Fact]
    public async Task Terminate_is_forwarded_and_ends_the_client_direction()
    {
        var run = await RunAsync("client", [Concat(Query("SELECT 1"), Terminate(), Query("SELECT 2"))]);
        Assert.Equal(PumpStop.HandlerStopped, run.Outcome.Stop);
        Assert.Equal(SessionEndReason.ClientTerminated, run.EndReason);
        Assert.Equal(Concat(Query("SELECT 1"), Terminate()), run.Output);
    }

    [Fact]
    public async Task Copy_messages_outside_copy_in_are_dropped_as_the_server_would_ignore_them()
    {
        var run = await RunAsync("client", [Concat(CopyData("stray"), CopyDone(), Query("SELECT 1"))]);
        Assert.Equal(PumpStop.PeerClosed, run.Outcome.Stop);
        Assert.Equal(Query("SELECT 1"), run.Output);
    }

    [Fact]
    public async Task Copy_messages_during_copy_in_are_forwarded()
    {
        var stream = Concat(CopyData("1\ta\n"), CopyData("2\tb\n"), CopyDone());
        var run = await RunAsync("client", [stream], copyIn: true);
        Assert.Equal(stream, run.Output);
        Assert.False(run.State.CopyIn);
    }

    [Fact]
    public async Task The_server_direction_tracks_copy_in_pending_requests_and_transaction_status()
    {
        using var session = TestSessions.Create();
        var state = new PgRelayState(session, 1 << 20, 1 << 20);
        state.RequestSent();
        state.RequestSent();
        await PumpAsync("server", state, session, [Concat(CopyInResponse(1))]);
        Assert.True(state.CopyIn);
        await PumpAsync("server", state, session, [Concat(CommandComplete("COPY 1"), ReadyForQuery('T'))]);
        Assert.False(state.CopyIn);
        Assert.Equal((byte)'T', state.TransactionStatus);
        Assert.Equal(1, state.PendingSyncs);
        await PumpAsync("server", state, session, [ParameterStatus("standard_conforming_strings", "off")]);
        Assert.False(state.StandardConformingStrings);
    }

    [Fact]
    public async Task While_draining_the_session_ends_at_the_ready_for_query_that_leaves_it_idle()
    {
        using var session = TestSessions.Create();
        var state = new PgRelayState(session, 1 << 20, 1 << 20);
        state.RequestSent();
        state.RequestSent();
        session.RequestDrainNow();
        var stream = Concat(CommandComplete("SELECT 1"), ReadyForQuery('I'), CommandComplete("SELECT 1"), ReadyForQuery('I'), Notice("after"));
        var (outcome, output) = await PumpAsync("server", state, session, [stream]);
        Assert.Equal(PumpStop.HandlerStopped, outcome.Stop);
        Assert.Equal(SessionEndReason.Drained, session.EndReason);
        Assert.Equal(stream[..^Notice("after").Length], output);
    }

    [Fact]
    public async Task An_idle_session_woken_by_a_drain_ends_and_a_busy_one_does_not()
    {
        using var idle = TestSessions.Create();
        idle.RequestDrainNow();
        var idleState = new PgRelayState(idle, 1 << 20, 1 << 20);
        var handler = new FrontendRelayHandler(idleState);
        Assert.Equal(FrameAction.Stop, handler.OnWake(new Pipe().Writer));
        Assert.Equal(SessionEndReason.Drained, idle.EndReason);

        using var busy = TestSessions.Create();
        busy.RequestDrainNow();
        var busyState = new PgRelayState(busy, 1 << 20, 1 << 20);
        busyState.RequestSent();
        Assert.Equal(FrameAction.Handled, new FrontendRelayHandler(busyState).OnWake(new Pipe().Writer));
        Assert.Equal(SessionEndReason.None, busy.EndReason);
    }

    private sealed record RunResult(RelayOutcome Outcome, byte[] Output, SessionEndReason EndReason, PgRelayState State);

    private static async Task<RunResult> RunAsync(string side, byte[][] chunks, int maxMessage = 1 << 20, bool copyIn = false)
    {
        using var session = TestSessions.Create();
        var state = new PgRelayState(session, maxMessage, maxMessage) { CopyIn = copyIn };
        var (outcome, output) = await PumpAsync(side, state, session, chunks);
        return new RunResult(outcome, output, session.EndReason, state);
    }

    private static async Task<(RelayOutcome Outcome, byte[] Output)> PumpAsync(string side, PgRelayState state, Session session, byte[][] chunks)
    {
        var input = new ChunkedPipeReader(chunks);
        var output = new Pipe(new PipeOptions(pauseWriterThreshold: 0));
        var pumpState = new FrameRelay.PumpState(session, new RelayWaker());
        var outcome = side == "client"
            ? await FrameRelay.PumpAsync(input, output.Writer, new FrontendRelayHandler(state), pumpState, PeerSide.Client)
            : await FrameRelay.PumpAsync(input, output.Writer, new BackendRelayHandler(state), pumpState, PeerSide.Server);
        await output.Writer.CompleteAsync();
        var bytes = new List<byte>();
        while (true)
        {
            var read = await output.Reader.ReadAsync();
            foreach (var segment in read.Buffer)
            {
                bytes.AddRange(segment.ToArray());
            }

            output.Reader.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted)
            {
                break;
            }
        }

        return (outcome, bytes.ToArray());
    }
}
