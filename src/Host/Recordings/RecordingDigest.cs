using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Gatehouse.Engine.Recording;
using Gatehouse.Policy.Rules;
using Gatehouse.Policy.Sql;
using Gatehouse.Protocols.Postgres.Policy;

namespace Gatehouse.Host.Recordings;

/// <summary>
/// Reads a session recording into what the recording commands show: <see cref="ReadAsync"/> gives the digest
/// (<see cref="RecordedSession"/>: who, when, every statement with its decision, result and masked values), and
/// <see cref="ReadEventsAsync"/> the events in recording order, with the server stream decoded into backend messages.
/// Both verify as they read (<see cref="RecordingReader"/>): only events of verified blocks are used, and a damaged
/// recording gives what verified with <see cref="RecordedSession.Integrity"/> and <see cref="RecordedSession.Problems"/>
/// saying what is wrong; tampering never throws. Only I/O failures do (a missing or unreadable file).
/// </summary>
/// <remarks>
/// How results are matched to statements (docs/recording-format.md, "PostgreSQL sessions"): the client's requests
/// are queued in recording order (Query, Parse, Bind and FunctionCall from Statement records; Describe, Execute,
/// Close and Sync from ClientMessage records with direction 1), and each backend message decoded from the server
/// stream answers the request at the head of the queue, as the server answers them in order:
/// <list type="bullet">
/// <item>A simple Query owns everything up to its ReadyForQuery: each CommandComplete, EmptyQueryResponse and
/// ErrorResponse is one result (a multi-statement query has several, joined with "; ").</item>
/// <item>Parse, Bind, Describe and Close end at ParseComplete, BindComplete, RowDescription or NoData, CloseComplete;
/// an Execute at CommandComplete, EmptyQueryResponse or PortalSuspended, and its result belongs to the statement
/// last bound to its portal; Sync ends at ReadyForQuery. An ErrorResponse belongs to the request at the head; the
/// server then skips every request up to the next Sync, and so does the digest (their statements' result is
/// <c>skipped: ERROR ...</c>).</item>
/// <item>NoticeResponse, ParameterStatus and NotificationResponse can come at any time; they are shown with the
/// request at the head but end nothing.</item>
/// </list>
/// Known limits: messages the gateway sent upstream in the client's stead (ClientMessage with direction 4) are not
/// requests of the client and are not queued (what the client saw is complete without them). A message that
/// does not fit the request at the head (the stream and the requests out of step) is shown without a statement;
/// a ReadyForQuery then ends every request up to the next Sync or Query. After a gap (blocks that failed
/// verification) or a stream that does not decode, the queue is emptied and the stream is decoded again from the
/// start of a later ServerMessage record that starts with a whole message; results in between are lost.
/// ResultMeta records (written at a CommandComplete whose result had masked values) are matched by command tag:
/// to a CommandComplete of the ServerMessage record just before, when no client record came in between, or else
/// to the next CommandComplete with that tag in the stream, before the second ReadyForQuery. Two results with the
/// same tag in one pipelined response where only the second was masked can be confused.
/// </remarks>
public static class RecordingDigest
{
    /// <summary>Reads and verifies a recording, and sums it up. Throws only for I/O (the file cannot be opened or read).</summary>
    /// <param name="path">The recording file.</param>
    /// <param name="key">The key to check seal signatures with; null checks the hash chain only (<see cref="RecordedSession.SignaturesChecked"/> is then false).</param>
    /// <param name="cancellationToken">Stops reading.</param>
    public static async Task<RecordedSession> ReadAsync(string path, RecordingKey? key, CancellationToken cancellationToken = default)
    {
        var builder = new DigestBuilder(path, keepMessages: false);
        await foreach (var _ in builder.RunAsync(key, cancellationToken).ConfigureAwait(false))
        {
        }

        return builder.Session!;
    }

    /// <summary>
    /// The recording's events in order, as they are read and verified (the server stream as one event per backend
    /// message). Throws only for I/O. Events of blocks that failed verification are left out; a
    /// <see cref="GapEvent"/> says where.
    /// </summary>
    public static IAsyncEnumerable<RecordedEvent> ReadEventsAsync(string path, RecordingKey? key, CancellationToken cancellationToken = default)
        => new DigestBuilder(path, keepMessages: true).RunAsync(key, cancellationToken);

    /// <summary>The class names of a statement class, as the policy spells them (<c>read</c>, <c>write|ddl</c>; <c>none</c> for nothing).</summary>
    public static string ClassName(StatementClass value)
    {
        if (value == StatementClass.None)
        {
            return "none";
        }

        var names = PolicyCompiler.ClassNames
            .Where(c => c.Key != "all" && (value & c.Value) == c.Value && System.Numerics.BitOperations.IsPow2((uint)c.Value))
            .OrderBy(c => (ushort)c.Value)
            .Select(c => c.Key);
        return string.Join('|', names);
    }

    /// <summary>
    /// Classifies a statement text as the policy does (each statement of a multi-statement text, classes united) and
    /// lists the relations it names, as written but with unquoted names folded to lower case as the server does.
    /// </summary>
    public static (StatementClass Class, IReadOnlyList<string> Tables) Classify(string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        var settings = SqlLexSettings.Default;
        StatementClass cls = StatementClass.None;
        var tables = new List<string>();
        Span<SqlObjectRef> objects = stackalloc SqlObjectRef[64];
        foreach (SqlStatementRange range in new SqlSplitter<PostgresDialect>(bytes, settings))
        {
            ReadOnlySpan<byte> statement = bytes.AsSpan(range.Start, range.Length);
            var info = SqlClassifier.Classify(statement, settings, objects);
            cls |= info.Class | (range.HasError ? StatementClass.Unknown : StatementClass.None);
            foreach (var reference in objects[..info.ObjectCount])
            {
                if (reference.Kind == SqlObjectKind.Relation)
                {
                    string name = NormalizeName(Encoding.UTF8.GetString(statement.Slice(reference.Start, reference.Length)));
                    if (!tables.Contains(name, StringComparer.Ordinal))
                    {
                        tables.Add(name);
                    }
                }
            }
        }

        return (cls, tables);
    }

    /// <summary>
    /// A relation name as written, each dotted part as the server reads it: unquoted parts folded to lower case,
    /// quoted parts unquoted when they need no quotes (<c>Public."orders"</c> is <c>public.orders</c>), kept quoted
    /// otherwise (<c>"Orders"</c>).
    /// </summary>
    public static string NormalizeName(string name)
    {
        var parts = new List<string>();
        var part = new StringBuilder();
        bool quoted = false;
        bool wasQuoted = false;
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            if (quoted)
            {
                if (c == '"')
                {
                    if (i + 1 < name.Length && name[i + 1] == '"')
                    {
                        part.Append('"');
                        i++;
                    }
                    else
                    {
                        quoted = false;
                    }
                }
                else
                {
                    part.Append(c);
                }
            }
            else if (c == '"')
            {
                quoted = true;
                wasQuoted = true;
            }
            else if (c == '.')
            {
                parts.Add(Part(part.ToString(), wasQuoted));
                part.Clear();
                wasQuoted = false;
            }
            else if (!char.IsWhiteSpace(c))
            {
                part.Append(char.ToLowerInvariant(c));
            }
        }

        parts.Add(Part(part.ToString(), wasQuoted));
        return string.Join('.', parts);

        static string Part(string text, bool wasQuoted)
        {
            bool plain = text.Length > 0 && (char.IsAsciiLetterLower(text[0]) || text[0] == '_')
                && text.All(ch => char.IsAsciiLetterLower(ch) || char.IsAsciiDigit(ch) || ch is '_' or '$');
            return !wasQuoted || plain ? text : "\"" + text.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
        }
    }
}

/// <summary>One pass over a recording: decodes every record, follows the server stream and builds the digest.</summary>
internal sealed class DigestBuilder(string path, bool keepMessages)
{
    private readonly string _path = path;
    private readonly bool _keepMessages = keepMessages;

    // Events not yet handed out: held back while one of them waits for something a later record says.
    private readonly List<RecordedEvent> _out = [];
    private int _unresolved;
    private long _sequence;

    // Session.
    private RecordingHeader? _header;
    private SessionStartEvent? _start;
    private SessionEndEvent? _end;
    private ulong _lastTime;
    private long _metaMasked;
    private readonly List<StatementState> _statements = [];
    private readonly List<string> _decodeProblems = [];

    // Statements and the extended protocol's names.
    private readonly Dictionary<string, string> _prepared = new(StringComparer.Ordinal);
    private readonly Dictionary<string, StatementState> _portals = new(StringComparer.Ordinal);
    private StatementState? _undecided;
    private StatementState? _unresolvedParse;

    // Requests waiting for the server's answer, in order.
    private readonly LinkedList<Request> _requests = new();
    private bool _skipUntilSync;
    private string? _skipReason;
    private HashSet<StatementState> _skipTold = new(ReferenceEqualityComparer.Instance);
    private StatementState? _lastRun;

    // The server stream.
    private readonly PgStreamDecoder _decoder = new();
    private readonly List<PgBackendMessage> _decoded = [];
    private bool _resyncing;
    private long _resyncSkipped;
    private long _streamSeen;
    private long _lastBlock = -1;
    private bool _unverifiedSkipped;

    // ResultMeta matching.
    private readonly List<(string Tag, StatementState? Statement)> _lastChunkCompletes = [];
    private readonly List<PendingMeta> _pendingMeta = [];

    public RecordedSession? Session { get; private set; }

    public async IAsyncEnumerable<RecordedEvent> RunAsync(RecordingKey? key, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var reader = RecordingReader.Open(_path, key, new RecordingReaderOptions { IncludeUnverified = true });
        await foreach (var e in reader.ReadEventsAsync(cancellationToken).ConfigureAwait(false))
        {
            _header ??= reader.Header;
            Process(e);
            if (_unresolved == 0 && _out.Count > 0)
            {
                foreach (var ready in _out)
                {
                    yield return ready;
                }

                _out.Clear();
            }
        }

        _header ??= reader.Header;
        FinishStream();
        foreach (var ready in _out)
        {
            yield return ready;
        }

        _out.Clear();
        Session = Build(reader.Verification!);
    }

    private void Process(in RecordingEvent e)
    {
        if (!e.Verified)
        {
            _unverifiedSkipped = true;
            return;
        }

        if (_unverifiedSkipped || (_lastBlock < 0 ? e.Block != 0 : e.Block != _lastBlock && e.Block != _lastBlock + 1))
        {
            Gap(e);
        }

        _lastBlock = e.Block;
        _lastTime = Math.Max(_lastTime, e.TimeMicros);
        if (e.Kind != RecordKind.Decision && _unresolvedParse is { } parse && parse.LastOutcome != RecordedDecision.Held)
        {
            ResolveParse(parse, listed: false);
        }

        if (e.Kind is RecordKind.Statement or RecordKind.ClientMessage)
        {
            // The client has moved on: a ResultMeta from now on is not about a result sent before.
            _lastChunkCompletes.Clear();
        }

        switch (e.Kind)
        {
            case RecordKind.SessionStart:
                _start = Stamp(ReadSessionStart(e), e);
                Add(_start);
                break;
            case RecordKind.Statement:
                OnStatement(e);
                break;
            case RecordKind.Decision:
                OnDecision(e);
                break;
            case RecordKind.ResultMeta:
                OnResultMeta(e);
                break;
            case RecordKind.ServerMessage:
                OnServerChunk(e);
                break;
            case RecordKind.ClientMessage:
                OnClientMessage(e);
                break;
            case RecordKind.Error:
                OnError(e);
                break;
            case RecordKind.SessionEnd:
                OnSessionEnd(e);
                break;
            case RecordKind.Recovery:
                Add(new RecoveryEvent { Json = Encoding.UTF8.GetString(e.Payload.Span) }, e);
                break;
            default:
                Add(new UnknownRecordEvent { PayloadLength = e.Payload.Length }, e);
                break;
        }
    }

    /// <summary>Appends an event with the next sequence number; returns its place in <see cref="_out"/>.</summary>
    private int Add(RecordedEvent e)
    {
        _out.Add(e with { Sequence = _sequence++ });
        return _out.Count - 1;
    }

    /// <summary>Appends an event made from record <paramref name="from"/>, with that record's time, kind, direction and block.</summary>
    private int Add(RecordedEvent e, in RecordingEvent from) => Add(Stamp(e, from));

    private static T Stamp<T>(T e, in RecordingEvent from)
        where T : RecordedEvent =>
        (T)(e with { TimeMicros = from.TimeMicros, Kind = from.Kind, Direction = from.Direction, Block = from.Block });

    private void Gap(in RecordingEvent e)
    {
        string detail = _unverifiedSkipped
            ? $"events before block {e.Block} were left out: their block failed verification"
            : _lastBlock < 0
                ? $"blocks before block {e.Block} are missing or failed verification"
                : e.Block == _lastBlock + 2
                    ? $"the events of block {_lastBlock + 1} are missing or failed verification (block {e.Block} follows block {_lastBlock})"
                    : $"the events of blocks {_lastBlock + 1} to {e.Block - 1} are missing or failed verification (block {e.Block} follows block {_lastBlock})";
        _unverifiedSkipped = false;
        Add(new GapEvent { TimeMicros = e.TimeMicros, Kind = e.Kind, Direction = RecordDirection.None, Detail = detail });
        _decodeProblems.Add($"{detail}: results around it may be missing or shown without their statement");
        LoseStep();
    }

    /// <summary>The stream and the requests are out of step: forget the requests, decode again from a later record.</summary>
    private void LoseStep()
    {
        _requests.Clear();
        _skipUntilSync = false;
        _resyncing = true;
        _lastChunkCompletes.Clear();
        AbandonPendingMeta();
    }

    private SessionStartEvent ReadSessionStart(in RecordingEvent e)
    {
        var start = new SessionStartEvent();
        try
        {
            using var json = JsonDocument.Parse(e.Payload);
            var root = json.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return start with { Problem = "the SessionStart record is not a JSON object" };
            }

            var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
            if (root.TryGetProperty("attributes", out var attrs) && attrs.ValueKind == JsonValueKind.Object)
            {
                foreach (var attribute in attrs.EnumerateObject())
                {
                    attributes[attribute.Name] = attribute.Value.ValueKind == JsonValueKind.String ? attribute.Value.GetString()! : attribute.Value.GetRawText();
                }
            }

            return start with
            {
                SessionId = Text(root, "session_id"),
                Protocol = Text(root, "protocol"),
                Identity = Text(root, "identity"),
                Connection = Text(root, "connection"),
                ClientAddress = Text(root, "client_address"),
                GatewayVersion = Text(root, "gateway_version"),
                StartTime = Text(root, "start_time"),
                Attributes = attributes,
            };
        }
        catch (JsonException ex)
        {
            _decodeProblems.Add($"the SessionStart record is not valid JSON: {ex.Message}");
            return start with { Problem = $"not valid JSON: {ex.Message}" };
        }

        static string? Text(JsonElement root, string name) =>
            root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
    }

    private void OnStatement(in RecordingEvent e)
    {
        char message = '?';
        string? text = null;
        string? name = null;
        string? portal = null;
        string? recordedClass = null;
        var parameters = new List<string?>();
        var fields = new RecordFieldReader(e.Payload.Span);
        while (fields.TryRead(out byte tag, out var value))
        {
            switch (tag)
            {
                case StatementFields.Text:
                    text = RecordFieldReader.GetText(value);
                    break;
                case StatementFields.Parameter:
                    parameters.Add(RecordFieldReader.GetText(value));
                    break;
                case StatementFields.NullParameter:
                    parameters.Add(null);
                    break;
                case StatementFields.Name:
                    name = RecordFieldReader.GetText(value);
                    break;
                case StatementFields.Class:
                    recordedClass = RecordFieldReader.GetText(value);
                    break;
                case StatementFields.Message when value.Length == 1:
                    message = (char)value[0];
                    break;
                case StatementFields.Portal:
                    portal = RecordFieldReader.GetText(value);
                    break;
                case StatementFields.BinaryParameter:
                    parameters.Add(PgText.Hex(value));
                    break;
            }
        }

        if (fields.IsMalformed)
        {
            _decodeProblems.Add($"a Statement record at +{FormatTime(e.TimeMicros)} has a malformed field; the fields before it are used");
        }

        if (message == '?')
        {
            // No message code: a Bind has a portal or parameters, anything else with text is taken for a Query.
            message = portal is not null ? 'B' : name is not null ? 'P' : 'Q';
        }

        if (_unresolvedParse is { } held)
        {
            // A Parse still held when the next statement comes: its decision will not be told apart any more.
            ResolveParse(held, listed: false);
        }

        bool unknownStatement = false;
        if (message == 'P')
        {
            _prepared[name ?? ""] = text ?? "";
        }
        else if (message == 'B')
        {
            if (_prepared.TryGetValue(name ?? "", out var parsed))
            {
                text ??= parsed;
            }
            else
            {
                unknownStatement = text is null;
            }
        }

        text ??= "";
        StatementClass cls;
        IReadOnlyList<string> tables;
        if (message == 'F')
        {
            // A FunctionCall names a function by OID: opaque code, as the policy treats it.
            cls = StatementClass.OpaqueCode;
            tables = [];
        }
        else
        {
            (cls, tables) = RecordingDigest.Classify(text);
        }

        var state = new StatementState
        {
            At = e.TimeMicros,
            Message = message,
            Text = text,
            Parameters = parameters,
            Name = name,
            Portal = portal,
            Class = cls == StatementClass.None && recordedClass is not null ? recordedClass : RecordingDigest.ClassName(cls),
            Tables = tables,
        };

        // Queries, Binds and FunctionCalls are statements of the session; a Parse only when it is refused (decided below).
        if (message != 'P')
        {
            List(state);
        }

        _undecided = state;
        var ev = new StatementEvent
        {
            StatementIndex = state.Index,
            Message = message,
            Text = text,
            Parameters = parameters,
            StatementName = name,
            Portal = portal,
            Class = state.Class,
            Tables = tables,
            UnknownStatement = unknownStatement,
        };
        int slot = Add(ev, e);
        if (message == 'P')
        {
            state.EventSlot = slot;
            _unresolvedParse = state;
            _unresolved++;
        }

        if (e.Direction == RecordDirection.GatewayToServer)
        {
            return; // sent upstream in the client's stead: not a request of the client
        }

        switch (message)
        {
            case 'Q':
                Enqueue(new Request(PgRequestKind.Query, state));
                break;
            case 'F':
                Enqueue(new Request(PgRequestKind.FunctionCall, state));
                break;
            case 'P':
                Enqueue(new Request(PgRequestKind.Parse, state));
                break;
            case 'B':
                _portals[portal ?? ""] = state;
                Enqueue(new Request(PgRequestKind.Bind, state));
                break;
        }
    }

    private void List(StatementState state)
    {
        state.Index = _statements.Count;
        _statements.Add(state);
    }

    /// <summary>A Parse's decision is known (or it will not come): list it if refused, and let its event out.</summary>
    private void ResolveParse(StatementState parse, bool listed)
    {
        if (listed)
        {
            List(parse);
            _out[parse.EventSlot] = ((StatementEvent)_out[parse.EventSlot]) with { StatementIndex = parse.Index };
        }

        _unresolvedParse = null;
        _unresolved--;
    }

    private void OnDecision(in RecordingEvent e)
    {
        byte code = 0;
        string? rule = null;
        string? approver = null;
        string? reason = null;
        string? ticket = null;
        var fields = new RecordFieldReader(e.Payload.Span);
        while (fields.TryRead(out byte tag, out var value))
        {
            switch (tag)
            {
                case DecisionFields.Outcome when value.Length == 1:
                    code = value[0];
                    break;
                case DecisionFields.Rule:
                    rule = RecordFieldReader.GetText(value);
                    break;
                case DecisionFields.Approver:
                    approver = RecordFieldReader.GetText(value);
                    break;
                case DecisionFields.Reason:
                    reason = RecordFieldReader.GetText(value);
                    break;
                case DecisionFields.Ticket:
                    ticket = RecordFieldReader.GetText(value);
                    break;
            }
        }

        RecordedDecision? outcome = Enum.IsDefined((RecordedDecision)code) ? (RecordedDecision)code : null;
        var target = _undecided;
        if (target is not null && outcome is { } known)
        {
            target.Apply(known, rule, approver, reason, ticket);
            if (target.Final is not null)
            {
                _undecided = null;
                if (ReferenceEquals(target, _unresolvedParse))
                {
                    ResolveParse(target, listed: target.Final == RecordedDecision.Denied);
                }
            }
        }

        Add(new DecisionEvent
        {
            StatementIndex = target?.Index ?? -1,
            Outcome = outcome,
            OutcomeCode = code,
            Rule = rule,
            Approver = approver,
            Reason = reason,
            Ticket = ticket,
        }, e);
    }

    private void OnResultMeta(in RecordingEvent e)
    {
        string? tag = null;
        long? rows = null;
        long masked = 0;
        long? duration = null;
        var columns = new List<string>();
        var fields = new RecordFieldReader(e.Payload.Span);
        while (fields.TryRead(out byte field, out var value))
        {
            switch (field)
            {
                case ResultMetaFields.CommandTag:
                    tag = RecordFieldReader.GetText(value);
                    break;
                case ResultMetaFields.Rows when TryGetNumber(value, out long n):
                    rows = n;
                    break;
                case ResultMetaFields.Column:
                    columns.Add(RecordFieldReader.GetText(value));
                    break;
                case ResultMetaFields.MaskedValues when TryGetNumber(value, out long n):
                    masked = n;
                    break;
                case ResultMetaFields.DurationMicros when TryGetNumber(value, out long n):
                    duration = n;
                    break;
            }
        }

        _metaMasked += masked;
        var ev = new ResultMetaEvent
        {
            CommandTag = tag,
            Rows = rows,
            Columns = columns,
            MaskedValues = masked,
            DurationMicros = duration,
        };

        // Written after the ServerMessage record holding its CommandComplete: one of the last record's.
        int match = _lastChunkCompletes.FindIndex(c => c.Tag == tag);
        if (match >= 0)
        {
            var statement = _lastChunkCompletes[match].Statement;
            _lastChunkCompletes.RemoveRange(0, match + 1);
            statement?.AddMasked(masked);
            Add(ev with { StatementIndex = statement?.Index ?? -1 }, e);
            return;
        }

        // Written before it: the next CommandComplete with that tag, in the record that follows.
        int slot = Add(ev, e);
        _pendingMeta.Add(new PendingMeta(tag, masked, slot));
        _unresolved++;
    }

    private void AbandonPendingMeta()
    {
        _unresolved -= _pendingMeta.Count;
        _pendingMeta.Clear();
    }

    private void OnCommandComplete(string tag, StatementState? statement)
    {
        if (_pendingMeta.Count > 0)
        {
            if (_pendingMeta[0].Tag == tag)
            {
                var meta = _pendingMeta[0];
                _pendingMeta.RemoveAt(0);
                _unresolved--;
                statement?.AddMasked(meta.Masked);
                _out[meta.Slot] = ((ResultMetaEvent)_out[meta.Slot]) with { StatementIndex = statement?.Index ?? -1 };
            }

            return;
        }

        _lastChunkCompletes.Add((tag, statement));
    }

    private void OnClientMessage(in RecordingEvent e)
    {
        var messages = PgFrontendMessage.Split(e.Payload.Span, out string? problem);
        bool client = e.Direction != RecordDirection.GatewayToServer;
        foreach (var message in messages)
        {
            StatementState? statement = null;
            if (client)
            {
                switch (message.Code)
                {
                    case 'D':
                        statement = message.Kind == 'P' ? _portals.GetValueOrDefault(message.Name ?? "") : null;
                        Enqueue(new Request(PgRequestKind.Describe, statement));
                        break;
                    case 'E':
                        statement = _portals.GetValueOrDefault(message.Name ?? "");
                        Enqueue(new Request(PgRequestKind.Execute, statement));
                        break;
                    case 'C':
                        if (message.Kind == 'P')
                        {
                            _portals.Remove(message.Name ?? "");
                        }

                        Enqueue(new Request(PgRequestKind.Close, null));
                        break;
                    case 'S':
                        Enqueue(new Request(PgRequestKind.Sync, null));
                        break;
                }
            }

            if (_keepMessages)
            {
                Add(new ClientMessageEvent
                {
                    Message = message,
                    StatementIndex = message.Code == 'E' ? statement?.Index ?? -1 : -1,
                }, e);
            }
        }

        if (problem is not null)
        {
            _decodeProblems.Add($"a ClientMessage record at +{FormatTime(e.TimeMicros)}: {problem}");
        }
    }

    private void Enqueue(Request request)
    {
        if (_skipUntilSync)
        {
            if (request.Kind != PgRequestKind.Sync)
            {
                // Sent after an error the server had already answered: it skips these until the Sync.
                if (request.Statement is not null && _skipTold.Add(request.Statement))
                {
                    request.Statement.AddResult("skipped: " + _skipReason);
                }

                return;
            }

            _skipUntilSync = false;
        }

        _requests.AddLast(request);
    }

    private void OnServerChunk(in RecordingEvent e)
    {
        _lastChunkCompletes.Clear();
        ReadOnlySpan<byte> chunk = e.Payload.Span;
        long chunkStart = _streamSeen;
        _streamSeen += chunk.Length;
        if (_decoder.Error is not null || _resyncing)
        {
            // Out of step: try this record as the start of a message; if it is not one, wait for the next record.
            // Stream offsets count the bytes read (a gap's bytes are not known).
            _resyncSkipped += chunkStart - _decoder.Offset;
            _decoder.Reset(skipped: chunkStart - _decoder.Offset - _decoder.Pending);
            _resyncing = true;
        }

        _decoded.Clear();
        _decoder.Decode(chunk, _decoded);
        if (_decoder.Error is not null && _resyncing)
        {
            return; // not a message start either: wait for the next record
        }

        if (_resyncing)
        {
            _resyncing = false;
            if (_resyncSkipped > 0)
            {
                Problem($"the server stream decodes again from stream offset {chunkStart}, after {_resyncSkipped} bytes that did not", e);
                _resyncSkipped = 0;
            }
        }

        // The messages before an error are whole and in step: they count.
        foreach (var message in _decoded)
        {
            OnServerMessage(message, e);
        }

        if (_decoder.Error is not null)
        {
            Problem($"the server stream does not decode: {_decoder.Error}", e);
            LoseStep();
        }
    }

    private void Problem(string detail, in RecordingEvent e)
    {
        _decodeProblems.Add(detail);
        Add(new StreamProblemEvent { Detail = detail }, e);
    }

    private void OnServerMessage(PgBackendMessage message, in RecordingEvent e)
    {
        if (message is PgReadyForQuery && _pendingMeta.Count > 0)
        {
            // A ResultMeta is written just before the record with its CommandComplete, which may follow the
            // ReadyForQuery of an earlier request in that record; past a second ReadyForQuery its CommandComplete
            // is not coming (a tag that does not match), and it stays without a statement.
            for (int i = _pendingMeta.Count - 1; i >= 0; i--)
            {
                if (++_pendingMeta[i].ReadyCount >= 2)
                {
                    _pendingMeta.RemoveAt(i);
                    _unresolved--;
                }
            }
        }

        bool answers = _requests.First is not null;
        var statement = Answer(message);
        if (_keepMessages)
        {
            Add(new ServerMessageEvent
            {
                Answers = answers,
                Message = message,
                StatementIndex = statement?.Index ?? -1,
            }, e);
        }
    }

    /// <summary>Matches a backend message to the request at the head of the queue; returns the statement it answers.</summary>
    private StatementState? Answer(PgBackendMessage message)
    {
        var head = _requests.First?.Value;
        if (message is PgNoticeMessage { IsError: false } or PgParameterStatus or PgNotification or PgAuthentication
            or PgBackendKeyData or PgNegotiateProtocolVersion)
        {
            return head?.Statement;
        }

        if (head is null)
        {
            return null; // start-up, or a message the session did not ask for (a FATAL error at the end)
        }

        var statement = head.Statement;
        switch (head.Kind, message)
        {
            case (PgRequestKind.Query or PgRequestKind.FunctionCall, PgReadyForQuery):
                Pop();
                return statement;
            case (PgRequestKind.Query or PgRequestKind.FunctionCall, PgCommandComplete complete):
                statement?.AddResult(complete.Tag);
                OnCommandComplete(complete.Tag, statement);
                return statement;
            case (PgRequestKind.Query or PgRequestKind.FunctionCall, PgNoticeMessage error):
                statement?.AddResult(error.ToString());
                return statement;
            case (PgRequestKind.Query, PgSimpleMessage { Code: 'I' }):
                statement?.AddResult("(empty query)");
                return statement;
            case (PgRequestKind.FunctionCall, PgFunctionCallResponse):
                statement?.AddResult("(function result)");
                return statement;
            case (PgRequestKind.Query, PgRowDescription or PgDataRow or PgCopyResponse or PgCopyData or PgSimpleMessage { Code: 'c' }):
                return statement;

            case (PgRequestKind.Parse, PgSimpleMessage { Code: '1' }):
            case (PgRequestKind.Bind, PgSimpleMessage { Code: '2' }):
            case (PgRequestKind.Close, PgSimpleMessage { Code: '3' }):
            case (PgRequestKind.Describe, PgRowDescription or PgSimpleMessage { Code: 'n' }):
                Pop();
                return statement;
            case (PgRequestKind.Describe, PgParameterDescription):
                return statement;
            case (PgRequestKind.Execute, PgCommandComplete complete):
                statement?.AddResult(complete.Tag);
                OnCommandComplete(complete.Tag, statement);
                Pop();
                return statement;
            case (PgRequestKind.Execute, PgSimpleMessage { Code: 'I' }):
                statement?.AddResult("(empty query)");
                Pop();
                return statement;
            case (PgRequestKind.Execute, PgSimpleMessage { Code: 's' }):
                statement?.AddResult("(portal suspended)");
                Pop();
                return statement;
            case (PgRequestKind.Execute, PgDataRow or PgCopyResponse or PgCopyData or PgSimpleMessage { Code: 'c' }):
                return statement;
            case (PgRequestKind.Parse or PgRequestKind.Bind or PgRequestKind.Describe or PgRequestKind.Execute or PgRequestKind.Close, PgNoticeMessage error):
                ExtendedError(error);
                return statement;
            case (PgRequestKind.Sync, PgReadyForQuery):
                Pop();
                return null;
            case (PgRequestKind.Sync, PgNoticeMessage error):
                // The implicit COMMIT at Sync failed: the last statement run is the one it concerns.
                _lastRun?.AddResult(error.ToString());
                return _lastRun;
            case (_, PgReadyForQuery):
                // Out of step: this ReadyForQuery ends everything up to the next Sync or Query.
                while (_requests.First?.Value is { } request)
                {
                    _requests.RemoveFirst();
                    if (request.Kind is PgRequestKind.Sync or PgRequestKind.Query or PgRequestKind.FunctionCall)
                    {
                        break;
                    }
                }

                return null;
            default:
                return null;
        }
    }

    private void Pop()
    {
        var head = _requests.First!.Value;
        if (head.Statement is not null)
        {
            _lastRun = head.Statement;
        }

        _requests.RemoveFirst();
    }

    /// <summary>An ErrorResponse in the extended protocol: the request fails, and the server skips the others up to Sync.</summary>
    private void ExtendedError(PgNoticeMessage error)
    {
        string text = error.ToString();
        var head = _requests.First!.Value;
        head.Statement?.AddResult(text);
        _requests.RemoveFirst();
        var told = new HashSet<StatementState>(ReferenceEqualityComparer.Instance);
        if (head.Statement is not null)
        {
            told.Add(head.Statement);
        }

        while (_requests.First?.Value is { Kind: not PgRequestKind.Sync } skipped)
        {
            // A Bind and the Execute of its portal are one statement: it is told once.
            if (skipped.Statement is not null && told.Add(skipped.Statement))
            {
                skipped.Statement.AddResult("skipped: " + text);
            }

            _requests.RemoveFirst();
        }

        if (_requests.First is null)
        {
            _skipUntilSync = true;
            _skipReason = text;
            _skipTold = told;
        }
    }

    private void OnError(in RecordingEvent e)
    {
        string? code = null, message = null, severity = null;
        var fields = new RecordFieldReader(e.Payload.Span);
        while (fields.TryRead(out byte tag, out var value))
        {
            switch (tag)
            {
                case ErrorFields.Code:
                    code = RecordFieldReader.GetText(value);
                    break;
                case ErrorFields.Message:
                    message = RecordFieldReader.GetText(value);
                    break;
                case ErrorFields.Severity:
                    severity = RecordFieldReader.GetText(value);
                    break;
            }
        }

        Add(new ErrorEvent { Code = code, Message = message, Severity = severity }, e);
    }

    private void OnSessionEnd(in RecordingEvent e)
    {
        string? reason = null, side = null, detail = null;
        long? fromClient = null, fromServer = null, masked = null;
        var fields = new RecordFieldReader(e.Payload.Span);
        while (fields.TryRead(out byte tag, out var value))
        {
            long n;
            switch (tag)
            {
                case SessionEndFields.Reason:
                    reason = RecordFieldReader.GetText(value);
                    break;
                case SessionEndFields.Side:
                    side = RecordFieldReader.GetText(value);
                    break;
                case SessionEndFields.Detail:
                    detail = RecordFieldReader.GetText(value);
                    break;
                case SessionEndFields.BytesFromClient when TryGetNumber(value, out n):
                    fromClient = n;
                    break;
                case SessionEndFields.BytesFromServer when TryGetNumber(value, out n):
                    fromServer = n;
                    break;
                case SessionEndFields.MaskedValues when TryGetNumber(value, out n):
                    masked = n;
                    break;
            }
        }

        _end = Stamp(new SessionEndEvent
        {
            Reason = reason,
            Side = side,
            Detail = detail,
            BytesFromClient = fromClient,
            BytesFromServer = fromServer,
            MaskedValues = masked,
        }, e);
        Add(_end);
    }

    /// <summary>A number field as a count: <see cref="RecordFieldReader.TryGetNumber"/>, held at <see cref="long.MaxValue"/>.</summary>
    private static bool TryGetNumber(ReadOnlySpan<byte> value, out long number)
    {
        bool ok = RecordFieldReader.TryGetNumber(value, out ulong n);
        number = (long)Math.Min(n, long.MaxValue);
        return ok;
    }

    /// <summary>The end of the recording: a message cut off, ResultMetas and a Parse still waiting.</summary>
    private void FinishStream()
    {
        if (_unresolvedParse is { } parse)
        {
            ResolveParse(parse, listed: parse.Final == RecordedDecision.Denied);
        }

        AbandonPendingMeta();
        if (!_resyncing && _decoder.Complete() is { } problem && _decoder.Error is null)
        {
            _decodeProblems.Add($"the server stream is cut off: {problem}");
            Add(new StreamProblemEvent { TimeMicros = _lastTime, Kind = RecordKind.ServerMessage, Direction = RecordDirection.ServerToClient, Detail = problem });
        }
    }

    private RecordedSession Build(RecordingVerification verification)
    {
        var start = _header?.StartTime
                    ?? (DateTimeOffset.TryParse(_start?.StartTime, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? (DateTimeOffset?)t : null)
                    ?? RecordingService.StartFromFileName(_path)
                    ?? DateTimeOffset.UnixEpoch;
        ulong endTime = _end?.TimeMicros ?? _lastTime;
        var statements = _statements.Select(s => s.ToRecorded()).ToList();
        var byClass = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var statement in _statements.Where(s => s.Final is not null))
        {
            foreach (string name in statement.Class.Split('|'))
            {
                byClass[name] = byClass.GetValueOrDefault(name) + 1;
            }
        }

        var attributes = _start?.Attributes ?? new Dictionary<string, string>();
        return new RecordedSession
        {
            Path = _path,
            SessionId = _start?.SessionId ?? _header?.SessionId ?? RecordingService.SessionIdFromFileName(_path),
            Protocol = _start?.Protocol ?? "unknown",
            Identity = _start?.Identity,
            Connection = _start?.Connection,
            Role = attributes.GetValueOrDefault("role"),
            ClientAddress = _start?.ClientAddress,
            Start = start,
            End = start + TimeSpan.FromMicroseconds(endTime),
            Integrity = verification.Integrity,
            Problems = verification.Problems.Select(p => p.Detail).ToList(),
            EndReason = _end?.Reason,
            EndDetail = _end?.Detail,
            EndSide = _end?.Side,
            MaskedValues = _end?.MaskedValues ?? _metaMasked,
            Statements = statements,
            StatementsByClass = byClass,
            Tables = _statements.SelectMany(s => s.Tables).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList(),
            Attributes = attributes,
            KeyId = _header?.KeyId,
            SignaturesChecked = verification.SignaturesChecked,
            DecodeProblems = [.. _decodeProblems],
            Verification = verification,
        };
    }

    private static string FormatTime(ulong micros) => (micros / 1e6).ToString("0.000", CultureInfo.InvariantCulture) + "s";

    /// <summary>A request of the client waiting for the server's answer, and the statement the answer belongs to.</summary>
    private sealed record Request(PgRequestKind Kind, StatementState? Statement);

    /// <summary>A ResultMeta written before its CommandComplete was seen in the stream.</summary>
    private sealed record PendingMeta(string? Tag, long Masked, int Slot)
    {
        /// <summary>ReadyForQuery messages decoded since it was written.</summary>
        public int ReadyCount { get; set; }
    }

    /// <summary>A statement as it is being read: decisions and results arrive after it.</summary>
    private sealed class StatementState
    {
        public int Index { get; set; } = -1;
        public int EventSlot { get; set; } = -1;
        public required ulong At { get; init; }
        public required char Message { get; init; }
        public required string Text { get; init; }
        public required List<string?> Parameters { get; init; }
        public string? Name { get; init; }
        public string? Portal { get; init; }
        public required string Class { get; init; }
        public required IReadOnlyList<string> Tables { get; init; }
        public RecordedDecision? Final { get; private set; }
        public RecordedDecision? LastOutcome { get; private set; }
        public bool Held { get; private set; }
        public string? Rule { get; private set; }
        public string? Approver { get; private set; }
        public string? Reason { get; private set; }
        public string? Ticket { get; private set; }
        public List<string> Results { get; } = [];
        public long Masked { get; private set; }

        public void Apply(RecordedDecision outcome, string? rule, string? approver, string? reason, string? ticket)
        {
            LastOutcome = outcome;
            switch (outcome)
            {
                case RecordedDecision.Allowed:
                    Final = outcome;
                    break;
                case RecordedDecision.Denied:
                    Final = outcome;
                    Rule = rule ?? Rule;
                    Reason = reason ?? Reason;
                    break;
                case RecordedDecision.Held:
                    Held = true;
                    Rule = rule ?? Rule;
                    Ticket = ticket ?? Ticket;
                    break;
                default:
                    // Approved, rejected, expired: the final allowed or denied follows.
                    Approver = approver ?? Approver;
                    Reason = reason ?? Reason;
                    Ticket = ticket ?? Ticket;
                    break;
            }
        }

        public void AddResult(string result) => Results.Add(result);

        public void AddMasked(long masked) => Masked += masked;

        public RecordedStatement ToRecorded() => new()
        {
            At = TimeSpan.FromMicroseconds(At),
            Message = Message,
            Text = Text,
            Parameters = Parameters.Select(p => p ?? "NULL").ToList(),
            Class = Class,
            Outcome = Final ?? (LastOutcome is RecordedDecision.Rejected or RecordedDecision.Expired ? RecordedDecision.Denied : LastOutcome) ?? RecordedDecision.Allowed,
            Decided = Final is not null,
            Rule = Rule,
            WasHeld = Held,
            Approver = Approver,
            Ticket = Ticket,
            Reason = Reason,
            Result = Results.Count == 0 ? null : string.Join("; ", Results),
            Results = [.. Results],
            MaskedValues = Masked,
            StatementName = Name,
            Portal = Portal,
            Tables = Tables,
            Index = Index,
        };
    }
}
