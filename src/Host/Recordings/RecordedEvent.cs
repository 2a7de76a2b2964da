using Gatehouse.Engine.Recording;

namespace Gatehouse.Host.Recordings;

/// <summary>
/// One event of a recorded session as replay and export show it, in recording order: a record of the recording
/// decoded (statement, decision, result metadata, session start and end), or one backend message of the server
/// stream (<see cref="ServerMessageEvent"/>: a ServerMessage record holds chunks of the stream, not messages), or a
/// note the reader adds (<see cref="GapEvent"/>, <see cref="StreamProblemEvent"/>). Built by
/// <see cref="RecordingDigest.ReadEventsAsync"/>.
/// </summary>
public abstract record RecordedEvent
{
    /// <summary>0, 1, 2, ... over the events of one recording.</summary>
    public long Sequence { get; init; }

    /// <summary>Microseconds since the session started (for a backend message: the time of the record that completed it).</summary>
    public ulong TimeMicros { get; init; }

    /// <summary>The record's kind (for notes the reader adds: the kind of the record where it noticed).</summary>
    public RecordKind Kind { get; init; }

    /// <summary>The record's direction.</summary>
    public RecordDirection Direction { get; init; }

    /// <summary>The block the record came from (-1 for notes).</summary>
    public long Block { get; init; } = -1;

    /// <summary>The time since the session started.</summary>
    public TimeSpan At => TimeSpan.FromMicroseconds(TimeMicros);
}

/// <summary>The SessionStart record (JSON): who, where, from where.</summary>
public sealed record SessionStartEvent : RecordedEvent
{
    public string? SessionId { get; init; }

    public string? Protocol { get; init; }

    public string? Identity { get; init; }

    public string? Connection { get; init; }

    public string? ClientAddress { get; init; }

    public string? GatewayVersion { get; init; }

    public string? StartTime { get; init; }

    public IReadOnlyDictionary<string, string> Attributes { get; init; } = new Dictionary<string, string>();

    /// <summary>Set when the JSON could not be read: why.</summary>
    public string? Problem { get; init; }
}

/// <summary>A Statement record: a Query, Parse, Bind or FunctionCall as the client sent it.</summary>
public sealed record StatementEvent : RecordedEvent
{
    /// <summary>Index in <see cref="RecordedSession.Statements"/>, or -1 for a Parse that is not listed there (only refused Parses are).</summary>
    public required int StatementIndex { get; init; }

    /// <summary><c>Q</c>, <c>P</c>, <c>B</c> or <c>F</c>.</summary>
    public required char Message { get; init; }

    /// <summary>The text (for a Bind: the text of the last Parse of its statement name).</summary>
    public required string Text { get; init; }

    /// <summary>Bind parameters as text: <c>NULL</c> values are null, binary values <c>\x</c> hex.</summary>
    public IReadOnlyList<string?> Parameters { get; init; } = [];

    /// <summary>The prepared statement's name (Parse, Bind); empty for the unnamed one.</summary>
    public string? StatementName { get; init; }

    /// <summary>The portal's name (Bind); empty for the unnamed one.</summary>
    public string? Portal { get; init; }

    /// <summary>The classifier's class names, joined with <c>|</c>.</summary>
    public required string Class { get; init; }

    /// <summary>Tables and views the text names.</summary>
    public IReadOnlyList<string> Tables { get; init; } = [];

    /// <summary>A Bind whose statement name no earlier Parse in the recording defined (its text is then empty).</summary>
    public bool UnknownStatement { get; init; }
}

/// <summary>A Decision record.</summary>
public sealed record DecisionEvent : RecordedEvent
{
    /// <summary>The statement decided (index in <see cref="RecordedSession.Statements"/>), or -1.</summary>
    public required int StatementIndex { get; init; }

    /// <summary>The outcome; null when the record's outcome byte is not one this reader knows (see <see cref="OutcomeCode"/>).</summary>
    public RecordedDecision? Outcome { get; init; }

    /// <summary>The outcome byte as recorded.</summary>
    public required byte OutcomeCode { get; init; }

    public string? Rule { get; init; }

    public string? Approver { get; init; }

    public string? Reason { get; init; }

    public string? Ticket { get; init; }

    /// <summary>The outcome's name: <c>allowed</c>, <c>denied</c>, <c>held</c>, <c>approved</c>, <c>rejected</c>, <c>expired</c>.</summary>
    public string OutcomeName => Outcome?.ToString().ToLowerInvariant() ?? $"unknown({OutcomeCode})";
}

/// <summary>A ResultMeta record: written at a CommandComplete when values were masked since the previous one.</summary>
public sealed record ResultMetaEvent : RecordedEvent
{
    /// <summary>The statement whose result it describes, as matched (see <see cref="RecordingDigest"/>), or -1.</summary>
    public int StatementIndex { get; init; } = -1;

    public string? CommandTag { get; init; }

    public long? Rows { get; init; }

    public IReadOnlyList<string> Columns { get; init; } = [];

    public long MaskedValues { get; init; }

    public long? DurationMicros { get; init; }
}

/// <summary>An Error record (a failure the gateway noted; the direction says whose).</summary>
public sealed record ErrorEvent : RecordedEvent
{
    public string? Code { get; init; }

    public string? Message { get; init; }

    public string? Severity { get; init; }
}

/// <summary>The SessionEnd record.</summary>
public sealed record SessionEndEvent : RecordedEvent
{
    public string? Reason { get; init; }

    public string? Side { get; init; }

    public string? Detail { get; init; }

    public long? BytesFromClient { get; init; }

    public long? BytesFromServer { get; init; }

    public long? MaskedValues { get; init; }
}

/// <summary>One backend message decoded from the server stream.</summary>
public sealed record ServerMessageEvent : RecordedEvent
{
    public required PgBackendMessage Message { get; init; }

    /// <summary>The statement the message answers (index in <see cref="RecordedSession.Statements"/>), or -1 (session messages, start-up, unmatched).</summary>
    public required int StatementIndex { get; init; }

    /// <summary>Whether the message answers a request of the client (possibly one that is not a listed statement: a Parse, a Sync).</summary>
    public bool Answers { get; init; }
}

/// <summary>One frontend message of a ClientMessage record (Describe, Execute, Sync, CopyData, ...).</summary>
public sealed record ClientMessageEvent : RecordedEvent
{
    public required PgFrontendMessage Message { get; init; }

    /// <summary>For Execute: the statement bound to the portal (index in <see cref="RecordedSession.Statements"/>), else -1.</summary>
    public int StatementIndex { get; init; } = -1;
}

/// <summary>A Recovery record: crash recovery sealed the recording here (JSON text as recorded).</summary>
public sealed record RecoveryEvent : RecordedEvent
{
    public required string Json { get; init; }
}

/// <summary>A record of a kind this reader does not know (skipped, as the format says).</summary>
public sealed record UnknownRecordEvent : RecordedEvent
{
    public required int PayloadLength { get; init; }
}

/// <summary>
/// A note: events are missing here, because blocks failed verification or are missing. What follows is verified,
/// but the server stream and the statements it answers may be out of step until the stream resynchronises.
/// </summary>
public sealed record GapEvent : RecordedEvent
{
    public required string Detail { get; init; }
}

/// <summary>A note: the server stream could not be decoded here (see <see cref="Detail"/>); decoding resumes at a later record that starts a message.</summary>
public sealed record StreamProblemEvent : RecordedEvent
{
    public required string Detail { get; init; }
}
