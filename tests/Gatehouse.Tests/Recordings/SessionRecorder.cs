using System.Buffers;
using Gatehouse.Engine.Recording;
using Gatehouse.Protocols.Postgres.Wire;
using Gatehouse.Tests.Support;

namespace Gatehouse.Tests.Recordings;

/// <summary>A clock the test sets by hand: event times in the recording are exactly what the test says.</summary>
internal sealed class SetClock(DateTimeOffset start) : TimeProvider
{
    private long _ticks = start.UtcTicks;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    public override long GetTimestamp() => Interlocked.Read(ref _ticks);

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public void Set(DateTimeOffset time) => Interlocked.Exchange(ref _ticks, time.UtcTicks);
}

/// <summary>
/// Writes a real recording file (RecordingService, RecordingWriter) with the records a PostgreSQL session writes,
/// as docs/recording-format.md ("PostgreSQL sessions") lists them: SessionStart, Statement, Decision, ClientMessage,
/// ServerMessage (chunks of the backend stream), ResultMeta, SessionEnd. Each call appends one record at the time
/// last set with <see cref="At"/>.
/// </summary>
internal sealed class SessionRecorder : IAsyncDisposable
{
    public static readonly DateTimeOffset DefaultStart = new(2025, 3, 14, 15, 9, 26, TimeSpan.Zero);

    private readonly SetClock _clock;
    private readonly RecordingService _service;
    private readonly RecordingWriter _writer;
    private readonly DateTimeOffset _start;

    private SessionRecorder(string directory, RecordingKey key, string sessionId, string? identity, string? connection, string? role,
        DateTimeOffset start, int blockSize)
    {
        _start = start;
        _clock = new SetClock(start);
        _service = new RecordingService(new RecordingOptions
        {
            Directory = directory,
            Key = key,
            BlockSize = blockSize,
            MaxBufferedBytes = 4 * 1024 * 1024,
            GatewayVersion = "test",
        }, timeProvider: _clock);
        var attributes = new Dictionary<string, string> { ["database_user"] = "app", ["listener"] = "main", ["upstream_user"] = "gh_orders" };
        if (role is not null)
        {
            attributes["role"] = role;
        }

        _writer = _service.Start(new RecordingSessionInfo(sessionId, "postgresql")
        {
            Identity = identity,
            Connection = connection,
            ClientAddress = "192.0.2.7:51234",
            StartTime = start,
            Attributes = attributes,
        });
        Assert.Equal(RecordingWriterState.Open, _writer.State);
    }

    public static SessionRecorder Start(string directory, RecordingKey key, string sessionId, string? identity = "alice", string? connection = "orders",
        string? role = "analyst", DateTimeOffset? start = null, int blockSize = 64 * 1024)
        => new(directory, key, sessionId, identity, connection, role, start ?? DefaultStart, blockSize);

    public string Path => _writer.Path!;

    /// <summary>Sets the time of the next records, in seconds since the session started.</summary>
    public SessionRecorder At(double seconds)
    {
        _clock.Set(_start + TimeSpan.FromMicroseconds(Math.Round(seconds * 1_000_000)));
        return this;
    }

    public void Query(string sql) => Statement('Q', w => w.WriteText(StatementFields.Text, sql));

    public void Parse(string name, string sql) => Statement('P', w =>
    {
        w.WriteText(StatementFields.Name, name);
        w.WriteText(StatementFields.Text, sql);
    });

    /// <summary>A Bind: each parameter is text (a string), NULL (null) or binary (a byte array).</summary>
    public void Bind(string portal, string statement, params object?[] parameters) => Statement('B', w =>
    {
        w.WriteText(7, portal);
        w.WriteText(StatementFields.Name, statement);
        foreach (var parameter in parameters)
        {
            _ = parameter switch
            {
                null => w.Write(StatementFields.NullParameter, default),
                byte[] binary => w.Write(8, binary),
                _ => w.WriteText(StatementFields.Parameter, (string)parameter),
            };
        }
    });

    public void Decision(RecordedDecision outcome, string? rule = null, string? approver = null, string? reason = null, string? ticket = null)
        => Fields(RecordKind.Decision, RecordDirection.None, w =>
        {
            w.Write(DecisionFields.Outcome, [(byte)outcome]);
            Optional(w, DecisionFields.Rule, rule);
            Optional(w, DecisionFields.Approver, approver);
            Optional(w, DecisionFields.Reason, reason);
            Optional(w, DecisionFields.Ticket, ticket);
        });

    /// <summary>Frontend messages the client sent (Describe, Execute, Sync, ...), whole, in one record.</summary>
    public void Client(params byte[][] messages) => Append(RecordKind.ClientMessage, RecordDirection.ClientToServer, PgMessages.Concat(messages));

    /// <summary>Backend messages the client received, in one ServerMessage record.</summary>
    public void Server(params byte[][] messages) => Append(RecordKind.ServerMessage, RecordDirection.ServerToClient, PgMessages.Concat(messages));

    /// <summary>Backend messages the client received, cut into records of <paramref name="chunk"/> bytes (not on message boundaries).</summary>
    public void ServerChunked(int chunk, params byte[][] messages)
    {
        byte[] stream = PgMessages.Concat(messages);
        for (int at = 0; at < stream.Length; at += chunk)
        {
            Append(RecordKind.ServerMessage, RecordDirection.ServerToClient, stream.AsSpan(at, Math.Min(chunk, stream.Length - at)));
        }
    }

    public void ResultMeta(string tag, ulong masked) => Fields(RecordKind.ResultMeta, RecordDirection.ServerToClient, w =>
    {
        w.WriteText(ResultMetaFields.CommandTag, tag);
        w.WriteNumber(ResultMetaFields.MaskedValues, masked);
    });

    public void End(string reason, string side, string? detail, ulong fromClient, ulong fromServer, ulong masked)
        => Fields(RecordKind.SessionEnd, RecordDirection.None, w =>
        {
            w.WriteText(SessionEndFields.Reason, reason);
            w.WriteText(SessionEndFields.Side, side);
            Optional(w, SessionEndFields.Detail, detail);
            w.WriteNumber(SessionEndFields.BytesFromClient, fromClient);
            w.WriteNumber(SessionEndFields.BytesFromServer, fromServer);
            w.WriteNumber(6, masked);
        });

    /// <summary>Any record, as given (for records a reader must survive).</summary>
    public void Raw(RecordKind kind, RecordDirection direction, byte[] payload) => Append(kind, direction, payload);

    /// <summary>Writes what was recorded so far, leaving the recording open (as a live session's is).</summary>
    public Task FlushAsync() => _writer.FlushAsync();

    /// <summary>Writes the final seal and returns the file.</summary>
    public async Task<string> CloseAsync()
    {
        await _writer.DisposeAsync();
        Assert.Equal(RecordingWriterState.Closed, _writer.State);
        return _writer.Path!;
    }

    public async ValueTask DisposeAsync()
    {
        await _writer.DisposeAsync();
        await _service.DisposeAsync();
    }

    private void Statement(char message, Action<RecordFieldWriterBox> fields) => Fields(RecordKind.Statement, RecordDirection.ClientToServer, w =>
    {
        w.Write(6, [(byte)message]);
        fields(w);
    });

    private void Fields(RecordKind kind, RecordDirection direction, Action<RecordFieldWriterBox> fields)
    {
        var box = new RecordFieldWriterBox();
        fields(box);
        var buffer = new byte[1024 * 1024];
        var writer = new RecordFieldWriter(buffer);
        box.Replay(ref writer);
        Assert.False(writer.Overflowed);
        Append(kind, direction, writer.WrittenSpan);
    }

    private static void Optional(RecordFieldWriterBox w, byte tag, string? value)
    {
        if (value is not null)
        {
            w.WriteText(tag, value);
        }
    }

    private void Append(RecordKind kind, RecordDirection direction, ReadOnlySpan<byte> payload)
        => Assert.Equal(RecordingStatus.Recorded, _writer.Append(kind, direction, payload));

    /// <summary>Collects fields in a lambda (a ref struct cannot be captured), then writes them with the real field writer.</summary>
    private sealed class RecordFieldWriterBox
    {
        private readonly List<(byte Tag, byte[] Value, bool Number, ulong N)> _fields = [];

        public bool Write(byte tag, ReadOnlySpan<byte> value)
        {
            _fields.Add((tag, value.ToArray(), false, 0));
            return true;
        }

        public bool WriteText(byte tag, string text)
        {
            _fields.Add((tag, System.Text.Encoding.UTF8.GetBytes(text), false, 0));
            return true;
        }

        public bool WriteNumber(byte tag, ulong value)
        {
            _fields.Add((tag, [], true, value));
            return true;
        }

        public void Replay(ref RecordFieldWriter writer)
        {
            foreach (var (tag, value, number, n) in _fields)
            {
                if (number)
                {
                    writer.WriteNumber(tag, n);
                }
                else
                {
                    writer.Write(tag, value);
                }
            }
        }
    }
}

/// <summary>Backend messages as the gateway writes them (PgWriter) and as a server sends them (PgMessages, from the spec).</summary>
internal static class Backend
{
    public static byte[] AuthenticationOk() => Write(w => PgWriter.WriteAuthentication(w, AuthenticationCode.Ok));

    public static byte[] KeyData(int processId, int secret) => Write(w => PgWriter.WriteBackendKeyData(w, processId, secret));

    public static byte[] Ready(char status = 'I') => Write(w => PgWriter.WriteReadyForQuery(w, (byte)status));

    public static byte[] Error(string sqlState, string message, string severity = "ERROR", string? detail = null)
        => Write(w => PgWriter.WriteError(w, severity, sqlState, message, detail));

    public static byte[] Notice(string sqlState, string message)
        => Write(w => PgWriter.WriteError(w, "NOTICE", sqlState, message, code: (byte)BackendCode.NoticeResponse));

    public static byte[] ParseComplete() => PgMessages.Message('1');

    public static byte[] BindComplete() => PgMessages.Message('2');

    public static byte[] NoData() => PgMessages.Message('n');

    public static byte[] CopyDone() => PgMessages.Message('c');

    /// <summary>The start-up messages after AuthenticationOk.</summary>
    public static byte[][] Startup() =>
    [
        AuthenticationOk(), PgMessages.ParameterStatus("server_version", "16.2"), PgMessages.ParameterStatus("client_encoding", "UTF8"),
        KeyData(4242, 0x5EC2E7), Ready(),
    ];

    private static byte[] Write(Action<ArrayBufferWriter<byte>> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        write(buffer);
        return buffer.WrittenSpan.ToArray();
    }
}
