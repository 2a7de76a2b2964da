using System.Buffers.Binary;
using System.Text;

namespace Gatehouse.Fuzz;

/// <summary>
/// Builds protocol 3.0 messages byte by byte, independently of the gateway's own writer, for the seed corpus
/// (PostgreSQL docs, "Message Formats").
/// </summary>
public static class PgMessages
{
    /// <summary>A typed message: Byte1 code, Int32 length counting itself, then the body.</summary>
    public static byte[] Message(char code, params byte[][] parts)
    {
        var body = Concat(parts);
        var frame = new byte[5 + body.Length];
        frame[0] = (byte)code;
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(1), body.Length + 4);
        body.CopyTo(frame, 5);
        return frame;
    }

    public static byte[] Concat(params byte[][] parts)
    {
        var result = new byte[parts.Sum(p => p.Length)];
        int offset = 0;
        foreach (var part in parts)
        {
            part.CopyTo(result, offset);
            offset += part.Length;
        }

        return result;
    }

    public static byte[] CString(string value) => [.. Encoding.UTF8.GetBytes(value), 0];

    public static byte[] Byte(int value) => [(byte)value];

    public static byte[] Int16(int value)
    {
        var bytes = new byte[2];
        BinaryPrimitives.WriteInt16BigEndian(bytes, (short)value);
        return bytes;
    }

    public static byte[] Int32(int value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(bytes, value);
        return bytes;
    }

    /// <summary>An Int32 length and the bytes (a column or parameter value); null is length -1.</summary>
    public static byte[] Value(byte[]? value) => value is null ? Int32(-1) : Concat(Int32(value.Length), value);

    public static byte[] Text(string value) => Encoding.UTF8.GetBytes(value);

    // ---- Frontend -------------------------------------------------------------------------------------------

    public static byte[] Query(string sql) => Message('Q', CString(sql));

    public static byte[] Parse(string statement, string sql, params int[] parameterTypes) =>
        Message('P', CString(statement), CString(sql), Int16(parameterTypes.Length), Concat([.. parameterTypes.Select(Int32)]));

    public static byte[] Bind(string portal, string statement, short[] parameterFormats, byte[]?[] values, short[] resultFormats) =>
        Message('B', CString(portal), CString(statement), Formats(parameterFormats), Int16(values.Length),
            Concat([.. values.Select(Value)]), Formats(resultFormats));

    public static byte[] Describe(char kind, string name) => Message('D', Byte(kind), CString(name));

    public static byte[] Close(char kind, string name) => Message('C', Byte(kind), CString(name));

    public static byte[] Execute(string portal, int maxRows) => Message('E', CString(portal), Int32(maxRows));

    public static byte[] Sync() => Message('S');

    public static byte[] Flush() => Message('H');

    public static byte[] Terminate() => Message('X');

    public static byte[] CopyData(string data) => Message('d', Text(data));

    public static byte[] CopyDone() => Message('c');

    public static byte[] CopyFail(string reason) => Message('f', CString(reason));

    public static byte[] FunctionCall(int oid, short[] argumentFormats, byte[]?[] arguments, short resultFormat) =>
        Message('F', Int32(oid), Formats(argumentFormats), Int16(arguments.Length), Concat([.. arguments.Select(Value)]), Int16(resultFormat));

    /// <summary>The startup packet: Int32 length, Int32 protocol version (3.0), name/value pairs, a final NUL.</summary>
    public static byte[] Startup(params (string Name, string Value)[] pairs)
    {
        var body = Concat([Int32(3 << 16), .. pairs.Select(p => Concat(CString(p.Name), CString(p.Value))), Byte(0)]);
        return Concat(Int32(body.Length + 4), body);
    }

    // ---- Backend --------------------------------------------------------------------------------------------

    /// <summary>A RowDescription field: name, table OID, column number, type OID, type size, type modifier, format.</summary>
    public static byte[] Field(string name, int tableOid, short column, int typeOid, short typeSize, int typeModifier, short format) =>
        Concat(CString(name), Int32(tableOid), Int16(column), Int32(typeOid), Int16(typeSize), Int32(typeModifier), Int16(format));

    public static byte[] RowDescription(params byte[][] fields) => Message('T', Int16(fields.Length), Concat(fields));

    public static byte[] DataRow(params byte[]?[] columns) => Message('D', Int16(columns.Length), Concat([.. columns.Select(Value)]));

    public static byte[] CommandComplete(string tag) => Message('C', CString(tag));

    public static byte[] ReadyForQuery(char status) => Message('Z', Byte(status));

    public static byte[] ParseComplete() => Message('1');

    public static byte[] BindComplete() => Message('2');

    public static byte[] CloseComplete() => Message('3');

    public static byte[] NoData() => Message('n');

    public static byte[] EmptyQueryResponse() => Message('I');

    public static byte[] PortalSuspended() => Message('s');

    public static byte[] ParameterDescription(params int[] types) => Message('t', Int16(types.Length), Concat([.. types.Select(Int32)]));

    public static byte[] ParameterStatus(string name, string value) => Message('S', CString(name), CString(value));

    /// <summary>ErrorResponse ('E') or NoticeResponse ('N'): (field code, string)* then a NUL.</summary>
    public static byte[] Fields(char code, params (char Field, string Value)[] fields) =>
        Message(code, Concat([.. fields.Select(f => Concat(Byte(f.Field), CString(f.Value))), Byte(0)]));

    public static byte[] CopyResponse(char code, int overallFormat, params short[] columnFormats) =>
        Message(code, Byte(overallFormat), Formats(columnFormats));

    public static byte[] Notification(int processId, string channel, string payload) =>
        Message('A', Int32(processId), CString(channel), CString(payload));

    public static byte[] FunctionCallResponse(byte[]? result) => Message('V', Value(result));

    private static byte[] Formats(short[] formats) => Concat([Int16(formats.Length), .. formats.Select(f => Int16(f))]);
}
