using System.Text;

namespace Gatehouse.Engine.Recording;

/// <summary>
/// Writes the fields of a structured event payload (Statement, Decision, ResultMeta, Error, SessionEnd): each field is
/// <c>tag (1 byte) | length (varint) | value</c>; numbers are varints, text is UTF-8. Writes into a caller's span
/// (stack or pooled), so recording a structured event allocates nothing. Unknown tags are skipped by readers.
/// </summary>
public ref struct RecordFieldWriter
{
    private readonly Span<byte> _destination;
    private int _written;
    private bool _overflowed;

    /// <param name="destination">Where the fields go; size it for the fields (a field that does not fit is not written).</param>
    public RecordFieldWriter(Span<byte> destination)
    {
        _destination = destination;
    }

    /// <summary>Bytes written so far.</summary>
    public readonly int Written => _written;

    /// <summary>True when a field did not fit; the fields written before it are whole, later ones were dropped.</summary>
    public readonly bool Overflowed => _overflowed;

    /// <summary>The fields written.</summary>
    public readonly ReadOnlySpan<byte> WrittenSpan => _destination[.._written];

    /// <summary>Writes a field of raw bytes.</summary>
    public bool Write(byte tag, scoped ReadOnlySpan<byte> value)
    {
        Span<byte> field = Reserve(tag, value.Length);
        if (_overflowed)
        {
            return false;
        }

        value.CopyTo(field);
        return true;
    }

    /// <summary>Writes a text field as UTF-8 (invalid UTF-16 becomes U+FFFD).</summary>
    public bool WriteText(byte tag, scoped ReadOnlySpan<char> text)
    {
        int length = Encoding.UTF8.GetByteCount(text);
        Span<byte> field = Reserve(tag, length);
        if (_overflowed)
        {
            return false;
        }

        Encoding.UTF8.GetBytes(text, field);
        return true;
    }

    /// <summary>Writes an unsigned number as a varint.</summary>
    public bool WriteNumber(byte tag, ulong value)
    {
        Span<byte> field = Reserve(tag, RecordingFormat.VarintLength(value));
        if (_overflowed)
        {
            return false;
        }

        RecordingFormat.WriteVarint(field, value);
        return true;
    }

    private Span<byte> Reserve(byte tag, int length)
    {
        int needed = 1 + RecordingFormat.VarintLength((uint)length) + length;
        if (_overflowed || _destination.Length - _written < needed)
        {
            _overflowed = true;
            return default;
        }

        _destination[_written] = tag;
        int n = 1 + RecordingFormat.WriteVarint(_destination[(_written + 1)..], (uint)length);
        Span<byte> field = _destination.Slice(_written + n, length);
        _written += needed;
        return field;
    }
}

/// <summary>Reads the fields of a structured event payload, in order (see <see cref="RecordFieldWriter"/>).</summary>
public ref struct RecordFieldReader
{
    private ReadOnlySpan<byte> _remaining;

    /// <param name="payload">A structured event's payload.</param>
    public RecordFieldReader(ReadOnlySpan<byte> payload)
    {
        _remaining = payload;
    }

    /// <summary>True when a field's length ran past the payload; reading stopped there.</summary>
    public bool IsMalformed { get; private set; }

    /// <summary>Reads the next field; false at the end of the payload or at a malformed field.</summary>
    public bool TryRead(out byte tag, out ReadOnlySpan<byte> value)
    {
        tag = 0;
        value = default;
        if (_remaining.IsEmpty)
        {
            return false;
        }

        if (!RecordingFormat.TryReadVarint(_remaining[1..], out ulong length, out int lengthLength)
            || length > (ulong)(_remaining.Length - 1 - lengthLength))
        {
            IsMalformed = true;
            _remaining = default;
            return false;
        }

        tag = _remaining[0];
        value = _remaining.Slice(1 + lengthLength, (int)length);
        _remaining = _remaining[(1 + lengthLength + (int)length)..];
        return true;
    }

    /// <summary>Decodes a number field; false when it is not one varint.</summary>
    public static bool TryGetNumber(ReadOnlySpan<byte> value, out ulong number)
        => RecordingFormat.TryReadVarint(value, out number, out int consumed) && consumed == value.Length;

    /// <summary>Decodes a text field.</summary>
    public static string GetText(ReadOnlySpan<byte> value) => Encoding.UTF8.GetString(value);
}

/// <summary>Field tags of <see cref="RecordKind.Statement"/> payloads.</summary>
public static class StatementFields
{
    /// <summary>The statement text (UTF-8).</summary>
    public const byte Text = 1;

    /// <summary>One decoded parameter value as text, in parameter order (repeated).</summary>
    public const byte Parameter = 2;

    /// <summary>A NULL parameter, in parameter order (repeated, empty value).</summary>
    public const byte NullParameter = 3;

    /// <summary>The prepared statement or portal name, when there is one.</summary>
    public const byte Name = 4;

    /// <summary>The statement's class as the policy saw it (read, write, ddl, ...).</summary>
    public const byte Class = 5;

    /// <summary>The protocol message that carried it (one byte: PostgreSQL <c>Q</c>, <c>P</c>, <c>B</c>, <c>F</c>).</summary>
    public const byte Message = 6;

    /// <summary>The portal a Bind creates (empty for the unnamed portal).</summary>
    public const byte Portal = 7;

    /// <summary>One parameter in binary format, raw bytes, in parameter order (repeated, with 2 and 3).</summary>
    public const byte BinaryParameter = 8;
}

/// <summary>Field tags of <see cref="RecordKind.Decision"/> payloads.</summary>
public static class DecisionFields
{
    /// <summary>The outcome: one byte, a <see cref="RecordedDecision"/>.</summary>
    public const byte Outcome = 1;

    /// <summary>The name of the rule that decided.</summary>
    public const byte Rule = 2;

    /// <summary>Who approved or denied a held statement.</summary>
    public const byte Approver = 3;

    /// <summary>A reason given by the approver or the policy.</summary>
    public const byte Reason = 4;

    /// <summary>The approval request's id.</summary>
    public const byte Ticket = 5;
}

/// <summary>The outcome in a <see cref="RecordKind.Decision"/> record.</summary>
public enum RecordedDecision : byte
{
    /// <summary>Allowed by policy.</summary>
    Allowed = 1,

    /// <summary>Refused by policy.</summary>
    Denied = 2,

    /// <summary>Held for approval.</summary>
    Held = 3,

    /// <summary>A held statement was approved and sent.</summary>
    Approved = 4,

    /// <summary>A held statement was refused by an approver.</summary>
    Rejected = 5,

    /// <summary>A held statement's request expired or was withdrawn.</summary>
    Expired = 6,
}

/// <summary>Field tags of <see cref="RecordKind.ResultMeta"/> payloads.</summary>
public static class ResultMetaFields
{
    /// <summary>The command tag (e.g. <c>SELECT 3</c>).</summary>
    public const byte CommandTag = 1;

    /// <summary>Rows returned or affected (number).</summary>
    public const byte Rows = 2;

    /// <summary>A column name, in order (repeated).</summary>
    public const byte Column = 3;

    /// <summary>How many values were masked (number).</summary>
    public const byte MaskedValues = 4;

    /// <summary>Time from the statement to its completion, in microseconds (number).</summary>
    public const byte DurationMicros = 5;
}

/// <summary>Field tags of <see cref="RecordKind.Error"/> payloads (the record's direction says which side it came from).</summary>
public static class ErrorFields
{
    /// <summary>The error code (SQLSTATE for PostgreSQL).</summary>
    public const byte Code = 1;

    /// <summary>The message (masked like everything else).</summary>
    public const byte Message = 2;

    /// <summary>The severity (ERROR, FATAL, ...).</summary>
    public const byte Severity = 3;
}

/// <summary>Field tags of <see cref="RecordKind.SessionEnd"/> payloads.</summary>
public static class SessionEndFields
{
    /// <summary>The end reason (the engine's <c>SessionEndReason</c> name).</summary>
    public const byte Reason = 1;

    /// <summary>The side that failed or ended it (client, server, gateway).</summary>
    public const byte Side = 2;

    /// <summary>A secret-free detail.</summary>
    public const byte Detail = 3;

    /// <summary>Bytes received from the client (number).</summary>
    public const byte BytesFromClient = 4;

    /// <summary>Bytes received from the server (number).</summary>
    public const byte BytesFromServer = 5;

    /// <summary>Values masked in the whole session (number).</summary>
    public const byte MaskedValues = 6;
}
