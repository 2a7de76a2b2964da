using Gatehouse.Engine.Recording;

namespace Gatehouse.Host.Recordings;

/// <summary>
/// What one session recording says, read and verified (docs/recording-format.md): who, where, when, what ran and
/// how it was decided. Built by <c>RecordingDigest</c> from the recording alone; the list, replay, export and review
/// commands work from it.
/// </summary>
public sealed record RecordedSession
{
    /// <summary>The recording file.</summary>
    public required string Path { get; init; }

    public required string SessionId { get; init; }

    /// <summary>Wire protocol (<c>postgresql</c>).</summary>
    public required string Protocol { get; init; }

    public string? Identity { get; init; }

    public string? Connection { get; init; }

    /// <summary>The policy role the session ran under (SessionStart attribute <c>role</c>).</summary>
    public string? Role { get; init; }

    public string? ClientAddress { get; init; }

    public required DateTimeOffset Start { get; init; }

    /// <summary>The time of the last event read (the SessionEnd record's, when there is one).</summary>
    public required DateTimeOffset End { get; init; }

    public TimeSpan Duration => End - Start;

    /// <summary>Whether the recording verified: intact, recovered after a crash, or damaged (see <see cref="Problems"/>).</summary>
    public required RecordingIntegrity Integrity { get; init; }

    /// <summary>What verification found wrong, in words; empty when intact.</summary>
    public IReadOnlyList<string> Problems { get; init; } = [];

    /// <summary>The SessionEnd reason (<c>ClientTerminated</c>, <c>Killed</c>, ...); null when the recording has none (crash).</summary>
    public string? EndReason { get; init; }

    public string? EndDetail { get; init; }

    /// <summary>Values masked in results over the whole session.</summary>
    public long MaskedValues { get; init; }

    /// <summary>Every statement the client sent (Query, Parse+Bind, FunctionCall), in order, with its decision.</summary>
    public IReadOnlyList<RecordedStatement> Statements { get; init; } = [];

    /// <summary>Statements per class (read, write, ddl, ...), counted over <see cref="Statements"/> that ran or were refused.</summary>
    public IReadOnlyDictionary<string, int> StatementsByClass { get; init; } = new Dictionary<string, int>();

    /// <summary>Tables and views the statements named, schema-qualified when they were, sorted.</summary>
    public IReadOnlyList<string> Tables { get; init; } = [];

    public int Denied => Statements.Count(s => s.Outcome == RecordedDecision.Denied);

    public int Held => Statements.Count(s => s.WasHeld);

    /// <summary>Which side ended the session (SessionEnd field 2: client, server, gateway), when recorded.</summary>
    public string? EndSide { get; init; }

    /// <summary>The SessionStart attributes (<c>role</c>, <c>database_user</c>, <c>listener</c>, <c>upstream_user</c>, ...).</summary>
    public IReadOnlyDictionary<string, string> Attributes { get; init; } = new Dictionary<string, string>();

    /// <summary>The id of the key the recording is signed with (from its header), when the header was readable.</summary>
    public string? KeyId { get; init; }

    /// <summary>Whether seal signatures were checked: false when read without the key, or with a key of another id.</summary>
    public bool SignaturesChecked { get; init; }

    /// <summary>
    /// What could not be decoded or matched, in words (a server stream out of step, a gap left by damaged blocks, a
    /// malformed record); empty when everything read was understood. Not about integrity: see <see cref="Problems"/>.
    /// </summary>
    public IReadOnlyList<string> DecodeProblems { get; init; } = [];

    /// <summary>The verification in full (blocks, offsets, problem kinds).</summary>
    public RecordingVerification? Verification { get; init; }
}

/// <summary>One statement of a recorded session, as decided.</summary>
public sealed record RecordedStatement
{
    /// <summary>When the client sent it, from the session's start.</summary>
    public required TimeSpan At { get; init; }

    /// <summary>
    /// The protocol message: <c>Q</c> simple query, <c>B</c> bind of a prepared statement, <c>F</c> function call;
    /// <c>P</c> for a Parse that was refused (an allowed Parse runs nothing: its Binds are the statements).
    /// </summary>
    public required char Message { get; init; }

    /// <summary>The statement text (passwords redacted); for a Bind, the text of the statement it binds.</summary>
    public required string Text { get; init; }

    /// <summary>Bind parameters as text (<c>NULL</c> for null, <c>\x...</c> for binary values).</summary>
    public IReadOnlyList<string> Parameters { get; init; } = [];

    /// <summary>Class as the policy classifier reads the text (<c>read</c>, <c>write|ddl</c>, ...).</summary>
    public required string Class { get; init; }

    /// <summary>The final decision: allowed or denied.</summary>
    public required RecordedDecision Outcome { get; init; }

    /// <summary>The rule that denied or held it.</summary>
    public string? Rule { get; init; }

    /// <summary>Whether it waited for approval first.</summary>
    public bool WasHeld { get; init; }

    /// <summary>Who approved or rejected it, when it was held.</summary>
    public string? Approver { get; init; }

    /// <summary>The approval request id, when it was held.</summary>
    public string? Ticket { get; init; }

    /// <summary>The command tag of its result (<c>SELECT 3</c>) or the error it got (<c>ERROR 42501: ...</c>), when recorded.</summary>
    public string? Result { get; init; }

    /// <summary>Values masked in its results.</summary>
    public long MaskedValues { get; init; }

    /// <summary>
    /// Whether a final decision (allowed or denied) was recorded. False when the recording ends before it (a
    /// statement still held, a crash); <see cref="Outcome"/> is then the last decision recorded (held, approved),
    /// denied after a rejection or expiry, or allowed when none was.
    /// </summary>
    public bool Decided { get; init; } = true;

    /// <summary>Why it was denied (the rule's description) or rejected (the approver's reason).</summary>
    public string? Reason { get; init; }

    /// <summary>Each result on its own (<see cref="Result"/> joins them): one per statement of a multi-statement query.</summary>
    public IReadOnlyList<string> Results { get; init; } = [];

    /// <summary>The prepared statement's name (Bind, and a refused Parse); empty for the unnamed statement.</summary>
    public string? StatementName { get; init; }

    /// <summary>The portal a Bind created; empty for the unnamed portal.</summary>
    public string? Portal { get; init; }

    /// <summary>Tables and views the text names.</summary>
    public IReadOnlyList<string> Tables { get; init; } = [];

    /// <summary>Its place in <see cref="RecordedSession.Statements"/>.</summary>
    public int Index { get; init; }
}
