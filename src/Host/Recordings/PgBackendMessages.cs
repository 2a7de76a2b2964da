using System.Text;
using System.Text.Unicode;
using Gatehouse.Protocols.Postgres.Wire;

namespace Gatehouse.Host.Recordings;

/// <summary>
/// One PostgreSQL 3.0 backend message as a replay shows it (PostgreSQL docs, "Message Formats"), decoded by
/// <see cref="PgStreamDecoder"/> from the bytes a client received.
/// </summary>
public abstract record PgBackendMessage
{
    /// <summary>The message's type byte (<c>D</c> DataRow, <c>C</c> CommandComplete, ...).</summary>
    public required char Code { get; init; }

    /// <summary>Where the message starts in the decoded stream (bytes from the stream's first byte).</summary>
    public required long Offset { get; init; }

    /// <summary>Bytes of the whole message: type byte, length word and body.</summary>
    public required int Length { get; init; }

    /// <summary>The message's name as the protocol documentation spells it (<c>DataRow</c>, <c>ReadyForQuery</c>, ...).</summary>
    public string Name => PgMessageNames.Backend(Code);
}

/// <summary>A message whose body says nothing a replay shows (ParseComplete, BindComplete, NoData, CopyDone, ...).</summary>
public sealed record PgSimpleMessage : PgBackendMessage;

/// <summary>One column of a RowDescription.</summary>
/// <param name="Name">The column's name (its label).</param>
/// <param name="TableOid">The table it comes from, or 0.</param>
/// <param name="ColumnNumber">Its attribute number in that table, or 0.</param>
/// <param name="TypeOid">The data type's OID.</param>
/// <param name="TypeSize">The type's size (negative: variable).</param>
/// <param name="TypeModifier">The type modifier.</param>
/// <param name="Format">0 text, 1 binary (0 also when a statement, not a portal, was described: the format is not known yet).</param>
public sealed record PgColumn(string Name, int TableOid, short ColumnNumber, int TypeOid, short TypeSize, int TypeModifier, short Format);

/// <summary>RowDescription (<c>T</c>): the columns of the rows that follow.</summary>
public sealed record PgRowDescription : PgBackendMessage
{
    public required IReadOnlyList<PgColumn> Columns { get; init; }
}

/// <summary>DataRow (<c>D</c>): one row's values.</summary>
public sealed record PgDataRow : PgBackendMessage
{
    /// <summary>
    /// The values as text: text-format values as UTF-8, binary-format values (and text that is not valid UTF-8) as
    /// <c>\x</c> and hex digits, NULL as null. The format of each column is the last RowDescription's.
    /// </summary>
    public required IReadOnlyList<string?> Values { get; init; }
}

/// <summary>CommandComplete (<c>C</c>).</summary>
public sealed record PgCommandComplete : PgBackendMessage
{
    /// <summary>The command tag: <c>SELECT 3</c>, <c>INSERT 0 1</c>, <c>BEGIN</c>.</summary>
    public required string Tag { get; init; }
}

/// <summary>ErrorResponse (<c>E</c>) or NoticeResponse (<c>N</c>).</summary>
public sealed record PgNoticeMessage : PgBackendMessage
{
    /// <summary>True for ErrorResponse, false for NoticeResponse.</summary>
    public bool IsError => Code == 'E';

    /// <summary>The severity, not localized when the server sent field <c>V</c> (ERROR, FATAL, NOTICE, WARNING, ...).</summary>
    public required string Severity { get; init; }

    /// <summary>The SQLSTATE code (field <c>C</c>).</summary>
    public required string SqlState { get; init; }

    /// <summary>The primary message (field <c>M</c>).</summary>
    public required string Message { get; init; }

    /// <summary>Field <c>D</c>, when sent.</summary>
    public string? Detail { get; init; }

    /// <summary>Field <c>H</c>, when sent.</summary>
    public string? Hint { get; init; }

    /// <summary>Every field, by its code, in the order sent (a repeated code keeps its last value).</summary>
    public required IReadOnlyDictionary<char, string> Fields { get; init; }

    /// <summary>The way replays and digests show it: <c>ERROR 42501: permission denied ...</c>.</summary>
    public override string ToString() => $"{Severity} {SqlState}: {Message}";
}

/// <summary>ReadyForQuery (<c>Z</c>).</summary>
public sealed record PgReadyForQuery : PgBackendMessage
{
    /// <summary><c>I</c> idle, <c>T</c> in a transaction, <c>E</c> in a failed transaction.</summary>
    public required char Status { get; init; }
}

/// <summary>CopyInResponse (<c>G</c>), CopyOutResponse (<c>H</c>) or CopyBothResponse (<c>W</c>).</summary>
public sealed record PgCopyResponse : PgBackendMessage
{
    /// <summary>0 text, 1 binary, for the whole copy.</summary>
    public required byte Format { get; init; }

    public required IReadOnlyList<short> ColumnFormats { get; init; }
}

/// <summary>CopyData (<c>d</c>).</summary>
public sealed record PgCopyData : PgBackendMessage
{
    /// <summary>The data as text when it is UTF-8 (a text-format COPY row, newline included), else <c>\x</c> hex.</summary>
    public required string Data { get; init; }
}

/// <summary>ParameterStatus (<c>S</c>).</summary>
public sealed record PgParameterStatus : PgBackendMessage
{
    public required string Parameter { get; init; }

    public required string Value { get; init; }
}

/// <summary>ParameterDescription (<c>t</c>).</summary>
public sealed record PgParameterDescription : PgBackendMessage
{
    public required IReadOnlyList<int> TypeOids { get; init; }
}

/// <summary>NotificationResponse (<c>A</c>).</summary>
public sealed record PgNotification : PgBackendMessage
{
    public required int ProcessId { get; init; }

    public required string Channel { get; init; }

    public required string Payload { get; init; }
}

/// <summary>FunctionCallResponse (<c>V</c>).</summary>
public sealed record PgFunctionCallResponse : PgBackendMessage
{
    /// <summary>The result as text when it is UTF-8, else <c>\x</c> hex; null for NULL.</summary>
    public required string? Value { get; init; }
}

/// <summary>
/// BackendKeyData (<c>K</c>). Only the process id: the secret key lets whoever has it cancel the session's
/// queries, so it is not kept (a replay or export must not print it).
/// </summary>
public sealed record PgBackendKeyData : PgBackendMessage
{
    public required int ProcessId { get; init; }
}

/// <summary>An Authentication message (<c>R</c>); a recording has only AuthenticationOk (code 0).</summary>
public sealed record PgAuthentication : PgBackendMessage
{
    public required int AuthenticationCode { get; init; }
}

/// <summary>NegotiateProtocolVersion (<c>v</c>).</summary>
public sealed record PgNegotiateProtocolVersion : PgBackendMessage
{
    public required int MinorVersion { get; init; }

    public required IReadOnlyList<string> UnrecognizedOptions { get; init; }
}

/// <summary>
/// Names of protocol messages, as the PostgreSQL documentation spells them: the names of the wire's
/// <see cref="BackendCode"/> and <see cref="FrontendCode"/>.
/// </summary>
public static class PgMessageNames
{
    /// <summary>A backend message's name; <c>Unknown(0x..)</c> for a type byte the protocol does not define.</summary>
    public static string Backend(char code) => code <= byte.MaxValue && IsBackend((byte)code) ? ((BackendCode)code).ToString() : Unknown(code);

    /// <summary>Whether a type byte is a backend message of protocol 3.0.</summary>
    public static bool IsBackend(byte code) => Enum.IsDefined((BackendCode)code);

    /// <summary>A frontend message's name; <c>Unknown(0x..)</c> for a type byte the protocol does not define.</summary>
    public static string Frontend(char code) => code <= byte.MaxValue && IsFrontend((byte)code) ? ((FrontendCode)code).ToString() : Unknown(code);

    /// <summary>
    /// Whether a type byte is a frontend message of protocol 3.0 that a ClientMessage record can hold: any but
    /// <see cref="FrontendCode.Password"/>, which belongs to the login, over before recording starts.
    /// </summary>
    public static bool IsFrontend(byte code) => Enum.IsDefined((FrontendCode)code) && code != (byte)FrontendCode.Password;

    private static string Unknown(char code) => $"Unknown(0x{(int)code:x2})";
}

/// <summary>How recorded bytes are shown as text.</summary>
public static class PgText
{
    /// <summary>The bytes as <c>\x</c> and lowercase hex digits (PostgreSQL's bytea output).</summary>
    public static string Hex(ReadOnlySpan<byte> bytes) => @"\x" + Convert.ToHexStringLower(bytes);

    /// <summary>The bytes as UTF-8 text when they are valid UTF-8, else as <see cref="Hex"/>.</summary>
    public static string Utf8OrHex(ReadOnlySpan<byte> bytes) => Utf8.IsValid(bytes) ? Encoding.UTF8.GetString(bytes) : Hex(bytes);

    /// <summary>
    /// A text-format value: UTF-8, unless it is not valid UTF-8 or holds control characters other than tab, newline
    /// and carriage return; such a value was most likely sent in binary (a format the stream did not announce) and
    /// is shown as <see cref="Hex"/>.
    /// </summary>
    public static string TextValue(ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes)
        {
            if (b < 0x20 && b is not ((byte)'\t' or (byte)'\n' or (byte)'\r') || b == 0x7F)
            {
                return Hex(bytes);
            }
        }

        return Utf8OrHex(bytes);
    }
}
