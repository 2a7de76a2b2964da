using System.Buffers.Binary;
using System.Text;

namespace Gatehouse.Tests.Support;

/// <summary>Hand-written protocol 3.0 messages, built byte by byte from the spec (not from the gateway's writer).</summary>
internal static class PgMessages
{
    public static byte[] Message(char code, params byte[][] parts)
    {
        int bodyLength = parts.Sum(p => p.Length);
        var message = new byte[1 + 4 + bodyLength];
        message[0] = (byte)code;
        BinaryPrimitives.WriteInt32BigEndian(message.AsSpan(1), 4 + bodyLength);
        int at = 5;
        foreach (var part in parts)
        {
            part.CopyTo(message, at);
            at += part.Length;
        }

        return message;
    }

    public static byte[] I16(short value)
    {
        var bytes = new byte[2];
        BinaryPrimitives.WriteInt16BigEndian(bytes, value);
        return bytes;
    }

    public static byte[] I32(int value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(bytes, value);
        return bytes;
    }

    public static byte[] Str(string value) => [.. Encoding.UTF8.GetBytes(value), 0];

    public static byte[] Bytes(string value) => Encoding.UTF8.GetBytes(value);

    public static byte[] B(params byte[] values) => values;

    public static byte[] Concat(params byte[][] messages) => messages.SelectMany(m => m).ToArray();

    // Frontend messages.
    public static byte[] Query(string sql) => Message('Q', Str(sql));

    public static byte[] Parse(string name, string sql, params int[] types) =>
        Message('P', [Str(name), Str(sql), I16((short)types.Length), .. types.Select(I32)]);

    public static byte[] Bind(string portal, string statement, params byte[]?[] values) =>
        Message('B', [Str(portal), Str(statement), I16(1), I16(0), I16((short)values.Length),
            .. values.SelectMany(v => v is null ? new[] { I32(-1) } : new[] { I32(v.Length), v }), I16(1), I16(1)]);

    public static byte[] Describe(char kind, string name) => Message('D', B((byte)kind), Str(name));

    public static byte[] Execute(string portal, int maxRows) => Message('E', Str(portal), I32(maxRows));

    public static byte[] Close(char kind, string name) => Message('C', B((byte)kind), Str(name));

    public static byte[] Sync() => Message('S');

    public static byte[] Flush() => Message('H');

    public static byte[] Terminate() => Message('X');

    public static byte[] CopyData(string data) => Message('d', Bytes(data));

    public static byte[] CopyDone() => Message('c');

    public static byte[] CopyFail(string reason) => Message('f', Str(reason));

    public static byte[] FunctionCall(int oid, params byte[][] args) =>
        Message('F', [I32(oid), I16(0), I16((short)args.Length), .. args.SelectMany(a => new[] { I32(a.Length), a }), I16(0)]);

    // Backend messages.
    public static byte[] RowDescription(params string[] names) =>
        Message('T', [I16((short)names.Length), .. names.SelectMany(n => new[] { Str(n), I32(16384), I16(1), I32(23), I16(4), I32(-1), I16(0) })]);

    public static byte[] DataRow(params string?[] values) =>
        Message('D', [I16((short)values.Length), .. values.SelectMany(v => v is null ? new[] { I32(-1) } : new[] { I32(Encoding.UTF8.GetByteCount(v)), Bytes(v) })]);

    public static byte[] CommandComplete(string tag) => Message('C', Str(tag));

    public static byte[] ReadyForQuery(char status) => Message('Z', B((byte)status));

    public static byte[] Error(string severity, string code, string text) =>
        Message('E', B((byte)'S'), Str(severity), B((byte)'V'), Str(severity), B((byte)'C'), Str(code), B((byte)'M'), Str(text), B(0));

    public static byte[] Notice(string text) => Message('N', B((byte)'S'), Str("NOTICE"), B((byte)'M'), Str(text), B(0));

    public static byte[] ParameterStatus(string name, string value) => Message('S', Str(name), Str(value));

    public static byte[] Notification(int pid, string channel, string payload) => Message('A', I32(pid), Str(channel), Str(payload));

    public static byte[] ParameterDescription(params int[] types) => Message('t', [I16((short)types.Length), .. types.Select(I32)]);

    public static byte[] CopyInResponse(short columns) => Message('G', [B(0), I16(columns), .. Enumerable.Repeat(I16(0), columns)]);

    public static byte[] CopyOutResponse(short columns) => Message('H', [B(0), I16(columns), .. Enumerable.Repeat(I16(0), columns)]);

    public static byte[] FunctionCallResponse(string? value) => Message('V', value is null ? I32(-1) : Concat(I32(value.Length), Bytes(value)));
}
