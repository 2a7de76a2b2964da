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
}

/// <summary>One statement of a recorded session, as decided.</summary>
public sealed record RecordedStatement
{
    /// <summary>When the client sent it, from the session's start.</summary>
    public required TimeSpan At { get; init; }

    /// <summary>The protocol message: <c>Q</c> simple query, <c>B</c> bind of a prepared statement, <c>F</c> function call.</summary>
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
}
