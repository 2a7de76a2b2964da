using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Gatehouse.Protocols.Postgres.Wire;

/// <summary>
/// Writes the query messages the gateway sends as a client of its own (the catalog connection): Query, Parse,
/// Bind, Describe, Execute, Sync (PostgreSQL docs, "Message Formats"). Lengths are computed from their terms
/// first, as the protocol puts the length up front. Not the relay path: the relay forwards the client's own bytes.
/// </summary>
internal static class PgFrontendWriter
{
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Query ('Q'): one or more statements as a simple query.</summary>
    public static void WriteQuery(IBufferWriter<byte> output, string sql)
    {
        int text = Utf8.GetByteCount(sql);
        // Length (4), the text and its terminator.
        var span = Begin(output, FrontendCode.Query, 4 + text + 1);
        int at = PutCString(span, 5, sql);
        output.Advance(at);
    }

    /// <summary>Parse ('P') without parameter types (the server infers them).</summary>
    public static void WriteParse(IBufferWriter<byte> output, string statement, string sql)
    {
        // Length (4), statement name and terminator, text and terminator, parameter type count (2).
        var span = Begin(output, FrontendCode.Parse, 4 + Utf8.GetByteCount(statement) + 1 + Utf8.GetByteCount(sql) + 1 + 2);
        int at = PutCString(span, 5, statement);
        at = PutCString(span, at, sql);
        BinaryPrimitives.WriteInt16BigEndian(span[at..], 0);
        output.Advance(at + 2);
    }

    /// <summary>Bind ('B') of a statement to the unnamed portal, with one text parameter and text results.</summary>
    public static void WriteBind(IBufferWriter<byte> output, string statement, ReadOnlySpan<byte> textParameter)
    {
        // Length (4), portal "" (1), statement and terminator, format code count 0 (2), parameter count 1 (2),
        // its length (4) and bytes, result format code count 0 (2).
        int length = 4 + 1 + Utf8.GetByteCount(statement) + 1 + 2 + 2 + 4 + textParameter.Length + 2;
        var span = Begin(output, FrontendCode.Bind, length);
        span[5] = 0;
        int at = PutCString(span, 6, statement);
        BinaryPrimitives.WriteInt16BigEndian(span[at..], 0);
        BinaryPrimitives.WriteInt16BigEndian(span[(at + 2)..], 1);
        BinaryPrimitives.WriteInt32BigEndian(span[(at + 4)..], textParameter.Length);
        textParameter.CopyTo(span[(at + 8)..]);
        at += 8 + textParameter.Length;
        BinaryPrimitives.WriteInt16BigEndian(span[at..], 0);
        output.Advance(at + 2);
    }

    /// <summary>Describe ('D') of a prepared statement ('S') or a portal ('P').</summary>
    public static void WriteDescribe(IBufferWriter<byte> output, byte kind, string name)
    {
        // Length (4), kind (1), name and terminator.
        var span = Begin(output, FrontendCode.Describe, 4 + 1 + Utf8.GetByteCount(name) + 1);
        span[5] = kind;
        output.Advance(PutCString(span, 6, name));
    }

    /// <summary>Execute ('E') of the unnamed portal, all rows.</summary>
    public static void WriteExecute(IBufferWriter<byte> output)
    {
        // Length (4), portal "" (1), row limit 0 = all (4).
        var span = Begin(output, FrontendCode.Execute, 4 + 1 + 4);
        span[5] = 0;
        BinaryPrimitives.WriteInt32BigEndian(span[6..], 0);
        output.Advance(10);
    }

    /// <summary>Sync ('S'): ends an extended-query pipeline; the server answers ReadyForQuery.</summary>
    public static void WriteSync(IBufferWriter<byte> output)
    {
        Begin(output, FrontendCode.Sync, 4);
        output.Advance(5);
    }

    private static Span<byte> Begin(IBufferWriter<byte> output, FrontendCode code, int length)
    {
        var span = output.GetSpan(length + 1);
        span[0] = (byte)code;
        BinaryPrimitives.WriteInt32BigEndian(span[1..], length);
        return span;
    }

    private static int PutCString(Span<byte> span, int at, string value)
    {
        at += Utf8.GetBytes(value, span[at..]);
        span[at++] = 0;
        return at;
    }
}
